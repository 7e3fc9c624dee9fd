/**
 * Answers that take longer than the wait become jobs; requests whose deliveries keep failing end in
 * the dead-letter queue with a clear error for the client, and `replay --dlq` re-drives them.
 * The service runs with no workers, so the test decides when work is done (or crashes).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import test from 'ava';
import { childEnv, projectRoot } from '../lib/config.js';
import { deadLetterKey } from '../pipeline/contract/keys.js';
import type { Service } from '../service/service.js';
import { type GroundTruth, readGroundTruth } from './helpers/model-fixtures.js';
import {
  poolOf,
  postClassic,
  postForm,
  shortLabel,
  startTestService,
  tempDataDir,
  waitFor,
} from './helpers/service.js';

const run = promisify(execFile);
let service: Service;
let photos: GroundTruth[];

test.before(async () => {
  photos = await readGroundTruth();
  service = await startTestService(await tempDataDir('deadletter'), {
    WORKERS: '0',
    ANSWER_WAIT_MS: '1500',
    MAX_RECEIVES: '2',
    VISIBILITY_TIMEOUT_SECONDS: '5',
  });
});

test.after.always(async () => {
  await service?.stop();
});

const job = async (location: string) => (await fetch(`${service.web.url}${location}`)).json() as Promise<any>;

test.serial('an answer slower than ANSWER_WAIT_MS: 202 + Location, the job is pending, then done', async (t) => {
  const photo = photos[12]!;
  const { status, json } = await postForm(service.web.url, '/api/v1/classify', [
    { field: 'image', name: photo.file, bytes: await readFile(photo.path) },
  ]);
  t.is(status, 202);
  const location: string = json.results[0].location;
  t.regex(location, /^\/api\/v1\/jobs\/[0-9a-f-]{36}$/);
  t.is((await job(location)).status, 'pending');
  await poolOf(service).resize(1);
  try {
    let last: any;
    await waitFor(async () => (last = await job(location)).status === 'done', 60_000);
    t.is(last.result.label, shortLabel(photo.label));
    t.is(last.result.file, photo.file);
  } finally {
    await poolOf(service).resize(0);
    await waitFor(() => poolOf(service).alive === 0, 30_000);
  }
  t.is((await fetch(`${service.web.url}/api/v1/jobs/00000000-0000-0000-0000-000000000000`)).status, 404);
  t.is((await fetch(`${service.web.url}/api/v1/jobs/not-a-job`)).status, 400);
});

test.serial('a request whose deliveries keep failing: dead letter, a clear error, then replay --dlq', async (t) => {
  const photo = photos[34]!;
  const answer = postClassic(service.web.url, photo.path, photo.file);
  // A worker that crashes on every delivery: receives the message and never deletes it.
  let receives = 0;
  let requestId = '';
  await waitFor(async () => {
    const { Messages } = await service.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: service.resources.requestQueueUrl,
        VisibilityTimeout: 1,
        WaitTimeSeconds: 1,
      }),
    );
    if (Messages?.length) {
      receives++;
      requestId = JSON.parse(Messages[0]!.Body!).requestId;
    }
    return receives >= 2 && !Messages?.length;
  }, 60_000);
  const response = await answer;
  t.is(response.status, 500);
  const body = JSON.parse(response.body);
  t.is(body.error.code, 'DEAD_LETTER');
  t.regex(body.error.message, /failed 2 times/);
  await service.clients.s3.send(
    new HeadObjectCommand({ Bucket: service.config.names.outputBucket, Key: deadLetterKey(requestId) }),
  );
  t.is((await job(`/api/v1/jobs/${requestId}`)).error.code, 'DEAD_LETTER');

  const { stdout } = await run(
    process.execPath,
    ['--import', './scripts/lib/preload.mjs', 'scripts/replay.ts', '--dlq'],
    {
      cwd: projectRoot,
      env: childEnv(service.config, { LOG_LEVEL: 'warn' }),
    },
  );
  t.regex(stdout, /replaying 1\b/);
  const after = await job(`/api/v1/jobs/${requestId}`);
  t.is(after.status, 'done');
  t.is(after.result.label, shortLabel(photo.label));
  await t.throwsAsync(
    service.clients.s3.send(
      new HeadObjectCommand({ Bucket: service.config.names.outputBucket, Key: deadLetterKey(requestId) }),
    ),
  );
});
