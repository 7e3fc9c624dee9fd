/**
 * The embedded endpoint as `npm start` runs it (its own process): SQS and S3 on one loopback port,
 * and nothing acknowledged is lost when the process is killed with SIGKILL and started again —
 * queued messages, messages in flight (which come back when their visibility deadline passes),
 * objects with their metadata.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from '@aws-sdk/client-sqs';
import test from 'ava';
import { EndpointError, startEmbeddedEndpoint } from '../endpoint/embedded.js';
import { createAwsClients } from '../lib/aws/clients.js';
import { loadConfig } from '../lib/config.js';
import { ENDPOINT_MAIN, forkMain, terminate, waitUntilReady } from '../lib/processes.js';
import { ensureBucket } from '../pipeline/resources.js';
import { tempDataDir, testEnv } from './helpers/service.js';

async function startEndpointProcess(dataDir: string, port = 0) {
  const child = forkMain(ENDPOINT_MAIN, testEnv(dataDir, { EMBEDDED_PORT: String(port) }));
  const ready = await waitUntilReady(child, 'embedded endpoint', 30_000);
  return { child, port: Number(ready.port) };
}

/** Listening TCP sockets on `port`, as `address:port` in hex from /proc (Linux). */
async function listeners(port: number): Promise<string[]> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const rows: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state === '0A' && local?.endsWith(`:${hexPort}`)) rows.push(local);
    }
  }
  return rows;
}

test('SQS and S3 on one port, listening on loopback only', async (t) => {
  const dataDir = await tempDataDir('endpoint-loopback');
  const { child, port } = await startEndpointProcess(dataDir);
  t.teardown(() => terminate(child, 5_000));
  // 127.0.0.1 is 0100007F in /proc's byte order; nothing on 0.0.0.0 or ::.
  t.deepEqual(await listeners(port), [`0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`]);
  const clients = createAwsClients(loadConfig(testEnv(dataDir, { EMBEDDED_PORT: String(port) })));
  t.teardown(() => clients.destroy());
  await ensureBucket(clients, 'one-port', 'us-east-1');
  const { QueueUrl } = await clients.sqs.send(new CreateQueueCommand({ QueueName: 'one-port' }));
  t.truthy(QueueUrl);
  // A second endpoint on the same data would overwrite what the first writes: refused, naming the owner.
  const error = await t.throwsAsync(startEmbeddedEndpoint({ host: '127.0.0.1', port: 0, dataDir }), {
    instanceOf: EndpointError,
  });
  t.regex(error!.message, new RegExp(`another embedded endpoint \\(pid ${child.pid}\\) is using`));
});

test('kill -9 of the endpoint loses nothing: queued and in-flight messages, objects and their metadata', async (t) => {
  const dataDir = await tempDataDir('endpoint-kill');
  let { child, port } = await startEndpointProcess(dataDir);
  t.teardown(() => terminate(child, 5_000));
  const clients = createAwsClients(loadConfig(testEnv(dataDir, { EMBEDDED_PORT: String(port) })));
  t.teardown(() => clients.destroy());

  const { QueueUrl } = await clients.sqs.send(
    new CreateQueueCommand({ QueueName: 'durable', Attributes: { VisibilityTimeout: '30' } }),
  );
  const queueUrl = QueueUrl!;
  const bodies = Array.from({ length: 20 }, (_, i) => `message ${i}`);
  for (let i = 0; i < bodies.length; i += 10) {
    await clients.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: bodies.slice(i, i + 10).map((body, j) => ({ Id: String(j), MessageBody: body })),
      }),
    );
  }
  // Five messages in flight for 2 s when the endpoint dies.
  const held = await clients.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 5, VisibilityTimeout: 2 }),
  );
  t.is(held.Messages?.length, 5);

  await ensureBucket(clients, 'durable', 'us-east-1');
  const objects = Array.from({ length: 10 }, (_, i) => ({
    key: `dir/object ${i} ü.bin`,
    body: Buffer.alloc(1000 + i, i),
  }));
  for (const o of objects) {
    await clients.s3.send(
      new PutObjectCommand({
        Bucket: 'durable',
        Key: o.key,
        Body: o.body,
        ContentType: 'application/x-test',
        Metadata: { 'file-name': encodeURIComponent(`n°${o.key}`) },
      }),
    );
  }
  await clients.s3.send(new DeleteObjectCommand({ Bucket: 'durable', Key: objects[9]!.key }));

  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  ({ child, port } = await startEndpointProcess(dataDir, port));

  const { Attributes } = await clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  t.is(Number(Attributes?.ApproximateNumberOfMessages) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible), 20);
  const seen = new Set<string>();
  const deadline = Date.now() + 15_000;
  while (seen.size < 20 && Date.now() < deadline) {
    const got = await clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        VisibilityTimeout: 60,
      }),
    );
    for (const m of got.Messages ?? []) seen.add(m.Body!);
  }
  t.deepEqual([...seen].sort(), [...bodies].sort(), 'every message, the in-flight ones once their deadline passed');

  for (const o of objects.slice(0, 9)) {
    const got = await clients.s3.send(new GetObjectCommand({ Bucket: 'durable', Key: o.key }));
    t.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), o.body, o.key);
    t.is(got.ContentType, 'application/x-test');
    t.is(decodeURIComponent(got.Metadata?.['file-name'] ?? ''), `n°${o.key}`);
  }
  await t.throwsAsync(clients.s3.send(new GetObjectCommand({ Bucket: 'durable', Key: objects[9]!.key })), {
    name: 'NoSuchKey',
  });
});

test('objects half written when the endpoint was killed are set aside at the next start; everything else loads', async (t) => {
  const dataDir = await tempDataDir('endpoint-half-written');
  let { child, port } = await startEndpointProcess(dataDir);
  t.teardown(() => terminate(child, 5_000));
  const clients = createAwsClients(loadConfig(testEnv(dataDir, { EMBEDDED_PORT: String(port) })));
  t.teardown(() => clients.destroy());
  await ensureBucket(clients, 'half', 'us-east-1');
  const put = (key: string, body: string) =>
    clients.s3.send(new PutObjectCommand({ Bucket: 'half', Key: key, Body: body }));
  for (const key of ['kept/a.txt', 'kept/b.txt', 'torn/meta.txt', 'torn/body.txt'])
    await put(key, `the body of ${key}`);
  // Written whole (staged, then renamed): nothing is left in the staging directory.
  t.deepEqual(await readdir(join(dataDir, 'objects', '.staging', 'buckets')), []);
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));

  // What a kill during a write can leave: metadata cut short, a body of another size than its
  // metadata says, a body whose metadata was never written.
  const objects = join(dataDir, 'objects', 'buckets', 'half', 'objects');
  await writeFile(join(objects, 'torn', 'meta.txt.meta.json'), '{"key":"torn/me');
  await writeFile(join(objects, 'torn', 'body.txt.data'), 'the bo');
  await writeFile(join(objects, 'torn', 'orphan.txt.data'), 'a body without metadata');

  ({ child, port } = await startEndpointProcess(dataDir, port));
  for (const key of ['kept/a.txt', 'kept/b.txt']) {
    const got = await clients.s3.send(new GetObjectCommand({ Bucket: 'half', Key: key }));
    t.is(await got.Body!.transformToString(), `the body of ${key}`);
  }
  for (const key of ['torn/meta.txt', 'torn/body.txt', 'torn/orphan.txt']) {
    await t.throwsAsync(
      clients.s3.send(new GetObjectCommand({ Bucket: 'half', Key: key })),
      { name: 'NoSuchKey' },
      key,
    );
  }
  // Moved, not deleted: a person can look at them.
  const [aside] = await readdir(join(dataDir, 'objects-set-aside'));
  const moved = (
    await readdir(join(dataDir, 'objects-set-aside', aside!, 'buckets', 'half', 'objects', 'torn'))
  ).sort();
  t.deepEqual(moved, ['body.txt.data', 'body.txt.meta.json', 'meta.txt.data', 'meta.txt.meta.json', 'orphan.txt.data']);

  // Without a kill on record (the lock file removed by hand), a load that fails is repaired the same way.
  await terminate(child, 5_000);
  await writeFile(join(objects, 'kept', 'b.txt.meta.json'), '');
  ({ child, port } = await startEndpointProcess(dataDir, port));
  const got = await clients.s3.send(new GetObjectCommand({ Bucket: 'half', Key: 'kept/a.txt' }));
  t.is(await got.Body!.transformToString(), 'the body of kept/a.txt');
  await t.throwsAsync(clients.s3.send(new GetObjectCommand({ Bucket: 'half', Key: 'kept/b.txt' })), {
    name: 'NoSuchKey',
  });
});
