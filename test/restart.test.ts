/**
 * Stop the whole service cleanly and start it again on the same data directory: inputs and
 * results are still in the buckets, the response queue of the stopped web tier is gone, and the
 * new service answers.
 */
import { ListQueuesCommand } from '@aws-sdk/client-sqs';
import test from 'ava';
import { listKeys } from '../pipeline/inventory.js';
import type { Service } from '../scripts/lib/service.js';
import { readGroundTruth } from './helpers/model-fixtures.js';
import { postClassic, postForm, startTestService, tempDataDir, waitFor } from './helpers/service.js';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';

const orphan = randomUUID();
import { readFile } from 'node:fs/promises';

const keys = async (service: Service, bucket: string) => {
  const all: string[] = [];
  for await (const key of listKeys(service.clients.s3, bucket, undefined)) all.push(key);
  return all.sort();
};

test('a clean stop removes the response queue; objects survive a restart; requests the queue forgot are queued again', async (t) => {
  const dataDir = await tempDataDir('restart');
  const photos = (await readGroundTruth()).slice(200, 203);
  const first = await startTestService(dataDir);
  let inputs: string[];
  let outputs: string[];
  try {
    for (const photo of photos) t.is((await postClassic(first.web.url, photo.path, photo.file)).status, 200);
    const { status } = await postForm(first.web.url, '/api/v1/classify', [{ field: 'f', name: 'x.jpg', bytes: await readFile(photos[0]!.path) }]);
    t.is(status, 200);
    // An accepted upload whose request message was still queued when the service stopped: the
    // embedded SQS forgets it, the input stays.
    await first.clients.s3.send(new PutObjectCommand({ Bucket: first.config.names.inputBucket, Key: `${orphan}/orphan.jpg`, Body: await readFile(photos[2]!.path), ContentType: 'image/jpeg' }));
    inputs = await keys(first, first.config.names.inputBucket);
    outputs = await keys(first, first.config.names.outputBucket);
    // A clean stop of the web tier removes its own response queue.
    await first.web.stop();
    const left = await first.clients.sqs.send(new ListQueuesCommand({ QueueNamePrefix: first.config.names.responseQueuePrefix }));
    t.deepEqual(left.QueueUrls ?? [], []);
  } finally {
    await first.stop();
  }
  t.is(inputs.length, 5);
  t.is(outputs.length, 7); // `results/<id>.json` for each of the 4 uploads, plus `<name>` for the 3 classic ones

  const second = await startTestService(dataDir);
  try {
    t.deepEqual(await keys(second, second.config.names.inputBucket), inputs);
    t.deepEqual((await keys(second, second.config.names.outputBucket)).filter((k) => !k.includes(orphan) && k !== 'orphan'), outputs);
    // The orphan was queued again at start and is classified without anyone asking.
    let job: { status?: string; result?: { file: string } } = {};
    await waitFor(async () => (job = (await (await fetch(`${second.web.url}/api/v1/jobs/${orphan}`)).json()) as typeof job).status === "done", 60_000);
    t.is(job.result?.file, 'orphan.jpg');
    const again = await postClassic(second.web.url, photos[1]!.path, photos[1]!.file);
    t.is(again.status, 200);
  } finally {
    await second.stop();
  }
});
