/**
 * Batches over an S3 prefix, against the real service, endpoint, workers and photos: every object
 * answered exactly once (done or failed with its code), counts exact, each key once in the results
 * and the manifest, the summary to a webhook (signed) or an SNS topic — and all of it through what
 * the rest of the service survives: a worker killed with SIGKILL, the web tier stopped and started
 * again mid-batch, a coordinator that died holding the lease, several web instances, a cancel.
 */
import { randomUUID } from 'node:crypto';
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import test, { type ExecutionContext } from 'ava';
import { startEmbeddedEndpoint } from '../endpoint/embedded.js';
import { loadConfig } from '../lib/config.js';
import { createLogger } from '../lib/log.js';
import { BatchStore } from '../pipeline/batch-store.js';
import type { BatchRecord } from '../pipeline/contract/batch.js';
import { type Service, startService } from '../service/service.js';
import { type GroundTruth, readGroundTruth } from './helpers/model-fixtures.js';
import { poolOf, startTestService, tempDataDir, testEnv, waitFor } from './helpers/service.js';
import { putObject, putPhotos, startWebhookReceiver } from './helpers/sources.js';

const SECRET = 'batch-webhook-secret-0123456789';
let photos: GroundTruth[];
let hooks: Awaited<ReturnType<typeof startWebhookReceiver>>;

test.before(async () => {
  photos = await readGroundTruth();
  hooks = await startWebhookReceiver(SECRET);
});

test.after.always(() => hooks?.close());

/** A service for batches: small pages and a short lease, so a test sees many pages and a quick takeover. */
const batchEnv = (bucket: string, overrides: Record<string, string> = {}) => ({
  WORKERS: '2',
  SOURCE_BUCKETS: bucket,
  BATCH_PAGE_SIZE: '10',
  BATCH_LEASE_SECONDS: '3',
  WEBHOOK_ALLOWED_HOSTS: hooks.host,
  WEBHOOK_SECRET: SECRET,
  // Same photos under other keys: each must be classified, not answered from a cache (batches never use it).
  ...overrides,
});

async function api(
  service: Service,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: any }> {
  const response = await fetch(`${service.web.url}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return { status: response.status, json: response.status === 204 ? undefined : await response.json() };
}

async function lines(service: Service, id: string): Promise<any[]> {
  const response = await fetch(`${service.web.url}/api/v1/batches/${id}/results`);
  if (response.status !== 200) throw new Error(`results: ${response.status}`);
  return (await response.text())
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

const batchOf = async (service: Service, id: string) => (await api(service, 'GET', `/api/v1/batches/${id}`)).json;

/** Every key answered exactly once, in listing order, with exact counts that match the lines. */
async function checkComplete(
  t: ExecutionContext,
  service: Service,
  id: string,
  bucket: string,
  keys: readonly string[],
  failures: Record<string, string>,
) {
  const batch = await batchOf(service, id);
  t.is(batch.status, 'done');
  t.is(batch.total, keys.length);
  t.is(batch.done + batch.failed, keys.length);
  t.is(batch.failed, Object.keys(failures).length);
  const results = await lines(service, id);
  t.deepEqual(
    results.map((r) => r.seq),
    keys.map((_, i) => i),
    'one line per object, in listing order',
  );
  t.deepEqual(
    results.map((r) => r.source),
    keys.map((k) => `s3://${bucket}/${k}`),
  );
  for (const r of results) {
    const key = r.source.slice(`s3://${bucket}/`.length);
    if (failures[key]) t.is(r.error?.code, failures[key], key);
    else t.truthy(r.label, `${key}: ${JSON.stringify(r.error)}`);
  }
  t.regex(batch.manifest, new RegExp(`^s3://${service.config.names.outputBucket}/batches/${id}/results.jsonl$`));
  return results;
}

test.serial(
  'a prefix of photos and bad objects: each answered once, exact counts, the manifest, a signed summary to the webhook',
  async (t) => {
    const bucket = 'batch-happy';
    const service = await startTestService(await tempDataDir('batch-happy'), batchEnv(bucket));
    t.teardown(() => service.stop());
    const keys = await putPhotos(service.clients.s3, bucket, 'album/', photos.slice(0, 36));
    await putObject(service.clients.s3, bucket, 'album/zz-notes.txt', 'plain text, not an image');
    await putObject(service.clients.s3, bucket, 'album/zz-empty.jpg', '');
    await putObject(service.clients.s3, bucket, 'album/sub/', ''); // a console "folder": not an object
    await putObject(service.clients.s3, bucket, 'elsewhere/not-in-prefix.jpg', 'x');
    const all = [...keys, 'album/zz-empty.jpg', 'album/zz-notes.txt'].sort();

    const created = await api(service, 'POST', '/api/v1/batches', {
      source: `s3://${bucket}/album/`,
      notify: hooks.url,
    });
    t.is(created.status, 202, JSON.stringify(created.json));
    const { id } = created.json;
    t.like(created.json, {
      status: 'listing',
      location: `/api/v1/batches/${id}`,
      results: `/api/v1/batches/${id}/results`,
    });
    await waitFor(async () => (await batchOf(service, id)).status === 'done', 90_000);
    await checkComplete(t, service, id, bucket, all, {
      'album/zz-notes.txt': 'NOT_AN_IMAGE',
      'album/zz-empty.jpg': 'NOT_AN_IMAGE',
    });

    await waitFor(() => hooks.calls.some((c) => c.body.batch?.id === id), 20_000);
    const summary = hooks.calls.filter((c) => c.body.batch?.id === id);
    t.is(summary.length, 1, 'one summary');
    t.true(summary[0]!.verified, 'its signature verifies');
    t.is(summary[0]!.event, 'batch.finished');
    t.like(summary[0]!.body.batch, { status: 'done', total: all.length, failed: 2 });
    const listed = await api(service, 'GET', '/api/v1/batches?limit=5');
    t.is(listed.json.batches[0].id, id, 'the newest first');
  },
);

test.serial(
  'through a worker killed with SIGKILL and the web tier restarted mid-batch: exact counts, each key once',
  async (t) => {
    const bucket = 'batch-restart';
    const dataDir = await tempDataDir('batch-restart');
    const env = batchEnv(bucket, { WORKERS: '1', VISIBILITY_TIMEOUT_SECONDS: '3' });
    let service = await startTestService(dataDir, env);
    t.teardown(() => service.stop());
    const keys = await putPhotos(service.clients.s3, bucket, 'r/', photos.slice(40, 160));
    const { id } = (await api(service, 'POST', '/api/v1/batches', { source: `s3://${bucket}/r/` })).json;

    await waitFor(async () => (await batchOf(service, id)).done >= 15, 60_000);
    process.kill(poolOf(service).pids[0]!, 'SIGKILL');
    await waitFor(async () => (await batchOf(service, id)).done >= 40, 90_000);
    const before = await batchOf(service, id);
    t.not(before.status, 'done', 'still running when the web tier stops');
    await service.stop();
    service = await startTestService(dataDir, env);
    await waitFor(async () => (await batchOf(service, id)).status === 'done', 120_000);
    await checkComplete(t, service, id, bucket, keys, {});
  },
);

test.serial(
  'a coordinator that died holding the lease is taken over when the lease runs out; duplicated answers count once',
  async (t) => {
    const bucket = 'batch-takeover';
    const service = await startTestService(await tempDataDir('batch-takeover'), batchEnv(bucket));
    t.teardown(() => service.stop());
    const keys = await putPhotos(service.clients.s3, bucket, 't/', photos.slice(160, 190));
    // A batch as a coordinator on another instance left it: leased for 3 s more, one page listed and
    // queued, its answers queue made — and then nothing.
    const batches = new BatchStore(service.store);
    const id = randomUUID();
    const answers = (
      await service.clients.sqs.send(
        new CreateQueueCommand({ QueueName: `${service.config.names.batchQueuePrefix}${id}` }),
      )
    ).QueueUrl!;
    const record: BatchRecord = {
      v: 1,
      id,
      source: { bucket, key: 't/' },
      createdAt: new Date().toISOString(),
      status: 'listing',
      listing: { pages: 0, listed: 0, complete: false },
      counts: { done: 0, failed: 0 },
      lease: { owner: 'an-instance-that-died', until: Date.now() + 3_000 },
      answers,
    };
    t.true(await batches.create(record));
    const started = Date.now();
    await waitFor(async () => (await batchOf(service, id)).status === 'done', 90_000);
    t.true(Date.now() - started >= 2_500, 'not taken before the lease ran out');
    await checkComplete(t, service, id, bucket, keys, {});
  },
);

test.serial(
  'cancel: the status says so at once, the objects still queued are dropped unclassified, a second cancel is 409',
  async (t) => {
    const bucket = 'batch-cancel';
    const service = await startTestService(await tempDataDir('batch-cancel'), batchEnv(bucket, { WORKERS: '1' }));
    t.teardown(() => service.stop());
    const keys = await putPhotos(service.clients.s3, bucket, 'c/', photos.slice(0, 200));
    const { id } = (await api(service, 'POST', '/api/v1/batches', { source: `s3://${bucket}/c/` })).json;
    await waitFor(async () => (await batchOf(service, id)).done >= 5, 60_000);
    const cancelled = await api(service, 'DELETE', `/api/v1/batches/${id}`);
    t.is(cancelled.status, 200);
    t.is(cancelled.json.status, 'cancelled');
    t.is((await api(service, 'DELETE', `/api/v1/batches/${id}`)).json.error.code, 'BATCH_FINISHED');
    // The request queue drains without the rest being classified.
    await waitFor(async () => {
      const q = await service.clients.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: service.resources.requestQueueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      return (
        q.Attributes?.ApproximateNumberOfMessages === '0' && q.Attributes?.ApproximateNumberOfMessagesNotVisible === '0'
      );
    }, 60_000);
    await waitFor(async () => (await batchOf(service, id)).manifest !== undefined, 30_000);
    const results = await lines(service, id);
    const batch = await batchOf(service, id);
    t.is(batch.status, 'cancelled');
    // What was in a worker's hands when the cancel came is finished; the rest is dropped, unclassified.
    t.true(results.length < keys.length, `${results.length} of ${keys.length} classified before the cancel took`);
    t.log(`${results.length} of ${keys.length} objects classified before the cancel reached the worker`);
    t.true(results.length >= batch.done + batch.failed, 'every counted object has its line');
  },
);

test.serial(
  'several web instances on one endpoint: one runs the batch, each reports its progress, the other finishes it when the first stops; SNS is told',
  async (t) => {
    // The endpoint stands apart, as SQS and S3 do on AWS: whichever instance ends up holding the
    // batch (the one that was asked, or the other, faster to its lease) can stop without taking the
    // queues and buckets with it. Both have a worker: whichever stays must have one to finish.
    const bucket = 'batch-shared';
    const endpoint = await startEmbeddedEndpoint({
      host: '127.0.0.1',
      port: 0,
      dataDir: await tempDataDir('batch-ep'),
    });
    t.teardown(() => endpoint.stop());
    const instance = async (name: string) => {
      const env = testEnv(await tempDataDir(`batch-${name}`), {
        ...batchEnv(bucket, { WORKERS: '1' }),
        ENDPOINT_MODE: 'aws',
        AWS_ENDPOINT_URL: endpoint.url,
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        AWS_REGION: 'us-east-1',
      });
      const service = await startService(loadConfig(env), createLogger(`test-${name}`));
      t.teardown(() => service.stop());
      return service;
    };
    const a = await instance('a');
    const b = await instance('b');
    const keys = await putPhotos(a.clients.s3, bucket, 's/', photos.slice(0, 100));
    const topic = (await a.clients.sns.send(new CreateTopicCommand({ Name: 'batch-summaries' }))).TopicArn!;
    const inbox = (await a.clients.sqs.send(new CreateQueueCommand({ QueueName: 'batch-summaries-inbox' }))).QueueUrl!;
    const inboxArn = (
      await a.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: inbox, AttributeNames: ['QueueArn'] }))
    ).Attributes!.QueueArn!;
    await a.clients.sns.send(
      new SubscribeCommand({
        TopicArn: topic,
        Protocol: 'sqs',
        Endpoint: inboxArn,
        Attributes: { RawMessageDelivery: 'true' },
      }),
    );

    const { id } = (await api(b, 'POST', '/api/v1/batches', { source: `s3://${bucket}/s/`, notify: topic })).json;
    await waitFor(async () => (await batchOf(a, id)).done >= 5, 60_000);
    const [fromA, fromB] = [await batchOf(a, id), await batchOf(b, id)];
    t.is(fromA.id, fromB.id);
    t.true(fromB.done >= 5, 'the instance that does not run it reports it too');
    // Exactly one runs it; it stops, and the other takes it over and finishes it.
    t.not(fromA.status, 'done', 'still running when its instance stops');
    const holders = [a, b].filter((s) => s.batches.running().includes(id));
    t.is(holders.length, 1, 'one instance runs the batch');
    const [holder] = holders;
    const other = holder === a ? b : a;
    await holder!.stop();
    await waitFor(async () => (await batchOf(other, id)).status === 'done', 120_000);
    // Its coordinator lets go after the record says done: once the summary is sent and its queue is gone.
    await waitFor(() => other.batches.running().length === 0, 30_000);
    await checkComplete(t, other, id, bucket, keys, {});
    const got = await other.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: inbox, WaitTimeSeconds: 5, MaxNumberOfMessages: 1 }),
    );
    const message = JSON.parse(got.Messages?.[0]?.Body ?? '{}');
    t.like(message, { event: 'batch.finished', batch: { id, status: 'done', total: keys.length } });
  },
);

test('batches refuse what they may not read, with a clear error and nothing started', async (t) => {
  const service = await startTestService(await tempDataDir('batch-refuse'), {
    WORKERS: '0',
    SOURCE_BUCKETS: 'allowed-but-absent',
    WEBHOOK_ALLOWED_HOSTS: hooks.host,
    WEBHOOK_SECRET: SECRET,
  });
  t.teardown(() => service.stop());
  const cases: [unknown, number, string][] = [
    [{ source: 's3://some-other-bucket/x/' }, 403, 'SOURCE_NOT_ALLOWED'],
    [{ source: 's3://allowed-but-absent/x/' }, 404, 'SOURCE_NOT_FOUND'],
    [{ source: 'not-a-url' }, 400, 'BAD_SOURCE'],
    [{ source: 's3://allowed-but-absent/', notify: 'https://internal.example/hook' }, 403, 'NOTIFY_NOT_ALLOWED'],
    [{ prefix: 's3://allowed-but-absent/' }, 400, 'BAD_REQUEST'],
  ];
  for (const [body, status, code] of cases) {
    const answer = await api(service, 'POST', '/api/v1/batches', body);
    t.is(answer.status, status, JSON.stringify(answer.json));
    t.is(answer.json.error.code, code);
  }
  t.deepEqual((await api(service, 'GET', '/api/v1/batches')).json, { batches: [] });
  t.is((await api(service, 'GET', `/api/v1/batches/${randomUUID()}`)).json.error.code, 'NO_SUCH_BATCH');
  t.is((await api(service, 'GET', '/api/v1/batches/nope')).json.error.code, 'BAD_BATCH_ID');
});
