/**
 * One image by reference: `POST /api/v1/classify` with `{"source": "s3://bucket/key"}` classifies a
 * photo where it is — no copy in the input bucket — and answers as for an upload; the bucket must be
 * one of SOURCE_BUCKETS, the object must exist, not be too large, and be an image, each refused with
 * its own 4xx before anything is queued; a webhook hears the result, signed. And Idempotency-Key on
 * both POSTs that start work: the same key and body answer the same, no second classification; the
 * same key with another body is 422. Real service, real photos, a real webhook receiver.
 */
import { readFile } from 'node:fs/promises';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import test from 'ava';
import type { Service } from '../service/service.js';
import { type GroundTruth, readGroundTruth } from './helpers/model-fixtures.js';
import { postForm, startTestService, tempDataDir, waitFor } from './helpers/service.js';
import { putObject, putPhotos, startWebhookReceiver } from './helpers/sources.js';

const SECRET = 'a-webhook-secret-of-32-characters!';
const BUCKET = 'reference-photos';
let service: Service;
let photos: GroundTruth[];
let hooks: Awaited<ReturnType<typeof startWebhookReceiver>>;

test.before(async () => {
  photos = (await readGroundTruth()).slice(0, 12);
  hooks = await startWebhookReceiver(SECRET);
  service = await startTestService(await tempDataDir('reference'), {
    WORKERS: '1',
    MAX_UPLOAD_BYTES: String(1024 * 1024),
    SOURCE_BUCKETS: `${BUCKET},empty-allowed-bucket`,
    WEBHOOK_ALLOWED_HOSTS: hooks.host,
    WEBHOOK_SECRET: SECRET,
  });
  await putPhotos(service.clients.s3, BUCKET, 'photos/', photos);
  await putObject(service.clients.s3, BUCKET, 'notes/readme.txt', 'not an image at all');
  await putObject(
    service.clients.s3,
    BUCKET,
    'big/huge.jpg',
    Buffer.concat([await readFile(photos[0]!.path), Buffer.alloc(1024 * 1024)]),
  );
  await putObject(service.clients.s3, BUCKET, 'empty.jpg', '');
});

test.after.always(async () => {
  await service?.stop();
  await hooks?.close();
});

const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
  const response = await fetch(`${service.web.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    location: response.headers.get('location'),
    replayed: response.headers.get('idempotent-replayed'),
    json: (await response.json()) as any,
  };
};

/** The label an upload of the same photo gets (the reference must agree). */
async function uploadedLabel(p: GroundTruth): Promise<string> {
  const { json } = await postForm(service.web.url, '/api/v1/classify', [
    { field: 'image', name: p.file, bytes: await readFile(p.path) },
  ]);
  return json.results[0].label;
}

async function inputObjects(): Promise<number> {
  const listed = await service.clients.s3.send(new ListObjectsV2Command({ Bucket: service.config.names.inputBucket }));
  return listed.KeyCount ?? 0;
}

test.serial(
  'an object by reference is classified where it is: the answer of an upload, its source named, nothing copied',
  async (t) => {
    const p = photos[0]!;
    const before = await inputObjects();
    const { status, json } = await post('/api/v1/classify', { source: `s3://${BUCKET}/photos/${p.file}` });
    t.is(status, 200, JSON.stringify(json));
    const [entry] = json.results;
    t.like(entry, { file: p.file, source: `s3://${BUCKET}/photos/${p.file}`, label: await uploadedLabel(p) });
    t.is(await inputObjects(), before + 1, 'only the comparison upload was stored in the input bucket');
    const job = (await (await fetch(`${service.web.url}/api/v1/jobs/${entry.id}`)).json()) as any;
    t.like(job, { id: entry.id, status: 'done', result: { label: entry.label } });
    const thumbnail = await fetch(`${service.web.url}/api/v1/jobs/${entry.id}/thumbnail`);
    t.is(thumbnail.status, 200);
    t.is(thumbnail.headers.get('content-type'), 'image/jpeg');
  },
);

test.serial('several objects in one request: each answered in order', async (t) => {
  const chosen = photos.slice(1, 4);
  const { status, json } = await post('/api/v1/classify', {
    sources: chosen.map((p) => `s3://${BUCKET}/photos/${p.file}`),
  });
  t.is(status, 200);
  t.deepEqual(
    json.results.map((r: { file: string }) => r.file),
    chosen.map((p) => p.file),
  );
  for (const r of json.results) t.truthy(r.label);
});

test.serial('each bad reference gets its own 4xx and nothing is queued for it', async (t) => {
  const cases: [unknown, number, string][] = [
    [{ source: 's3://not-allowed-bucket/x.jpg' }, 403, 'SOURCE_NOT_ALLOWED'],
    [{ source: `s3://${BUCKET}/photos/missing.jpg` }, 404, 'SOURCE_NOT_FOUND'],
    [{ source: `s3://${BUCKET}/notes/readme.txt` }, 415, 'NOT_AN_IMAGE'],
    [{ source: `s3://${BUCKET}/big/huge.jpg` }, 413, 'TOO_LARGE'],
    [{ source: `s3://${BUCKET}/empty.jpg` }, 400, 'EMPTY_FILE'],
    [{ source: 'http://example.com/x.jpg' }, 400, 'BAD_SOURCE'],
    [{ source: `s3://${BUCKET}/photos/` }, 400, 'BAD_SOURCE'],
    [{ sources: [] }, 400, 'BAD_SOURCE'],
    [{ source: `s3://${BUCKET}/photos/${photos[0]!.file}`, colour: 'red' }, 400, 'BAD_REQUEST'],
    [
      { source: `s3://${BUCKET}/photos/${photos[0]!.file}`, notify: 'http://169.254.169.254/latest/meta-data' },
      403,
      'NOTIFY_NOT_ALLOWED',
    ],
    [{ source: `s3://${BUCKET}/photos/${photos[0]!.file}`, notify: 'ftp://x' }, 400, 'BAD_NOTIFY'],
  ];
  const depth = await service.fleet.status();
  for (const [body, status, code] of cases) {
    const answer = await post('/api/v1/classify', body);
    t.is(answer.status, status, `${JSON.stringify(body)}: ${JSON.stringify(answer.json)}`);
    t.is(answer.json.error.code, code);
    t.true(answer.json.error.message.length > 10);
  }
  t.is((await service.fleet.status()).queue.visible, depth.queue.visible, 'nothing was queued');
});

test.serial('notify: the result goes to the webhook, signed with WEBHOOK_SECRET', async (t) => {
  const p = photos[5]!;
  const { json } = await post('/api/v1/classify', { source: `s3://${BUCKET}/photos/${p.file}`, notify: hooks.url });
  const id = json.results[0].id;
  await waitFor(() => hooks.calls.some((c) => c.body.id === id), 20_000);
  const call = hooks.calls.find((c) => c.body.id === id)!;
  t.true(call.verified, 'the signature verifies');
  t.is(call.event, 'image.classified');
  t.is(call.body.result.label, json.results[0].label);
});

test.serial(
  'Idempotency-Key: the same key and body answer the same ids; another body under the key is 422',
  async (t) => {
    const p = photos[6]!;
    const body = { source: `s3://${BUCKET}/photos/${p.file}` };
    const key = { 'idempotency-key': `reference-${Date.now()}` };
    const first = await post('/api/v1/classify', body, key);
    const again = await post('/api/v1/classify', body, key);
    t.is(first.status, 200);
    t.deepEqual(again.json, first.json);
    t.is(again.replayed, 'true');
    const other = await post('/api/v1/classify', { source: `s3://${BUCKET}/photos/${photos[7]!.file}` }, key);
    t.is(other.status, 422);
    t.is(other.json.error.code, 'IDEMPOTENCY_KEY_REUSED');
    t.is(
      (await post('/api/v1/classify', body, { 'idempotency-key': 'bad key with spaces' })).json.error.code,
      'BAD_IDEMPOTENCY_KEY',
    );

    // An upload too: the same key and bytes are one classification.
    const form = async () => {
      const data = new FormData();
      data.append('image', new Blob([await readFile(photos[8]!.path)]), photos[8]!.file);
      return data;
    };
    const uploadKey = `upload-${Date.now()}`;
    const send = async () =>
      (
        await fetch(`${service.web.url}/api/v1/classify`, {
          method: 'POST',
          headers: { 'idempotency-key': uploadKey },
          body: await form(),
        })
      ).json() as Promise<any>;
    const [one, two] = [await send(), await send()];
    t.is(two.results[0].id, one.results[0].id);
    // An error answer is kept too: asked again, the same error.
    const missing = { source: `s3://${BUCKET}/photos/none.jpg` };
    const errorKey = { 'idempotency-key': `missing-${Date.now()}` };
    t.deepEqual(
      (await post('/api/v1/classify', missing, errorKey)).json,
      (await post('/api/v1/classify', missing, errorKey)).json,
    );
  },
);

test.serial('Idempotency-Key on a batch: the same batch for the same body', async (t) => {
  const key = { 'idempotency-key': `batch-${Date.now()}` };
  const body = { source: 's3://empty-allowed-bucket/' };
  await service.clients.s3.send(
    new (await import('@aws-sdk/client-s3')).CreateBucketCommand({ Bucket: 'empty-allowed-bucket' }),
  );
  const first = await post('/api/v1/batches', body, key);
  const again = await post('/api/v1/batches', body, key);
  t.is(first.status, 202);
  t.is(again.status, 202);
  t.is(again.json.id, first.json.id);
  t.is(again.location, first.location);
  t.is((await post('/api/v1/batches', { source: `s3://${BUCKET}/` }, key)).status, 422);
});
