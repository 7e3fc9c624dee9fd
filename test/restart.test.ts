/**
 * Stop the whole service and start it again on the same data directory: inputs, results and the
 * requests still queued are all there, the response queue of the stopped web tier is gone, and the
 * queued requests are answered after the next start. A data directory of an earlier version (s3rver
 * layout, queues that lived in memory) is imported on the first start.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ListQueuesCommand } from '@aws-sdk/client-sqs';
import test from 'ava';
import type { Service } from '../service/service.js';
import { readGroundTruth } from './helpers/model-fixtures.js';
import { postClassic, postForm, shortLabel, startTestService, tempDataDir, waitFor } from './helpers/service.js';

const keys = async (service: Service, bucket: 'input' | 'output') => {
  const all: string[] = [];
  for await (const key of service.store.keys(bucket)) all.push(key);
  return all.sort();
};

type JobBody = { status?: string; result?: { file: string; label: string } };
const job = async (service: Service, id: string) =>
  (await (await fetch(`${service.web.url}/api/v1/jobs/${id}`)).json()) as JobBody;

test('requests still queued when the service stops are answered after the next start; objects survive; the response queue goes', async (t) => {
  const dataDir = await tempDataDir('restart');
  const photos = (await readGroundTruth()).slice(200, 203);
  // No workers: whatever is uploaded stays queued.
  const first = await startTestService(dataDir, { WORKERS: '0', ANSWER_WAIT_MS: '300' });
  const queued: { id: string }[] = [];
  let inputs: string[];
  try {
    for (const photo of photos.slice(0, 3)) {
      const { status, json } = await postForm(first.web.url, '/api/v1/classify', [
        { field: 'f', name: photo.file, bytes: await readFile(photo.path) },
      ]);
      t.is(status, 202, JSON.stringify(json));
      queued.push({ id: json.results[0].id });
    }
    inputs = await keys(first, 'input');
    // A clean stop of the web tier and its door (in the order the service stops them) removes its
    // own response queue.
    await first.web.stop();
    await first.submitter.stop();
    const left = await first.clients.sqs.send(
      new ListQueuesCommand({ QueueNamePrefix: first.config.names.responseQueuePrefix }),
    );
    t.deepEqual(left.QueueUrls ?? [], []);
  } finally {
    await first.stop();
  }
  t.is(inputs.length, 3);

  const second = await startTestService(dataDir, { WORKERS: '1' });
  try {
    t.deepEqual(await keys(second, 'input'), inputs);
    for (const [i, { id }] of queued.entries()) {
      let body: JobBody = {};
      await waitFor(async () => (body = await job(second, id)).status === 'done', 60_000);
      // The model is deterministic: the queued request got the label the same photo gets now.
      const now = await postClassic(second.web.url, photos[i]!.path, photos[i]!.file);
      t.is(`${photos[i]!.file.replace('.JPEG', '')},${body.result?.label}`, now.body, id);
    }
  } finally {
    await second.stop();
  }
});

test('a data directory of the previous version (s3rver files, no queue) is imported and its unfinished inputs are classified', async (t) => {
  const dataDir = await tempDataDir('migrate');
  const [done, unfinished] = (await readGroundTruth()).slice(210, 212);
  const doneId = randomUUID();
  const unfinishedId = randomUUID();
  // The layout s3rver 3 wrote: <bucket>/<key>._S3rver_object and its metadata beside it.
  const put = async (bucket: string, key: string, body: Buffer | string, meta: Record<string, string>) => {
    const file = join(dataDir, 's3', bucket, ...key.split('/'));
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(`${file}._S3rver_object`, body);
    await writeFile(`${file}._S3rver_metadata.json`, JSON.stringify(meta));
  };
  const input = 'image-recognition-input';
  const output = 'image-recognition-output';
  await put(input, `${doneId}/${done!.file}`, await readFile(done!.path), {
    'content-type': 'image/jpeg',
    'x-amz-meta-request-id': doneId,
    'x-amz-meta-protocol': 'classic',
  });
  await put(
    output,
    `results/${doneId}.json`,
    JSON.stringify({ id: doneId, file: done!.file, label: shortLabel(done!.label) }),
    { 'content-type': 'application/json' },
  );
  await put(input, `${unfinishedId}/${unfinished!.file}`, await readFile(unfinished!.path), {
    'content-type': 'image/jpeg',
    'x-amz-meta-request-id': unfinishedId,
    'x-amz-meta-protocol': 'classic',
  });

  const service = await startTestService(dataDir, { WORKERS: '1' });
  try {
    t.deepEqual(
      await keys(service, 'input'),
      [`${doneId}/${done!.file}`, `${unfinishedId}/${unfinished!.file}`].sort(),
    );
    let body: JobBody = {};
    await waitFor(async () => (body = await job(service, unfinishedId)).status === 'done', 60_000);
    const now = await postClassic(service.web.url, unfinished!.path, 'again.jpg');
    t.is(`again,${body.result?.label}`, now.body);
    // The classic output of the imported classic input, keyed by its name.
    const stemName = unfinished!.file.replace('.JPEG', '');
    t.true((await keys(service, 'output')).includes(stemName));
    t.is((await job(service, doneId)).status, 'done');
  } finally {
    await service.stop();
  }
  const left = await readdir(dataDir);
  t.true(left.includes('s3rver-imported'), left.join(', '));
  t.false(left.includes('s3'));
});
