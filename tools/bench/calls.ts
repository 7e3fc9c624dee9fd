/**
 * The floor under the pipeline's overhead: the S3 and SQS calls one image needs, each measured on
 * its own against the running service's embedded endpoint, through the same SDK clients the service
 * builds. CPU is split between this process (the client side: SDK serialization, SigV4 signing,
 * HTTP) and the endpoint process. Whatever else the service does per image comes on top.
 *
 * Traffic goes to a scratch queue and a `bench-calls/` prefix, never to the service's request queue.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from '@aws-sdk/client-sqs';
import { createAwsClients } from '../../lib/aws/clients.js';
import type { Config } from '../../lib/config.js';
import { cpuMs } from './proc.js';

export interface CallCost {
  readonly call: string;
  /** Which side of the pipeline makes it. */
  readonly by: 'web' | 'worker' | 'web + worker';
  /** Calls per image (a batch of 10 messages counts 0.1 — full batches, so a lower bound). */
  readonly perImage: number;
  /** CPU per call, ms. */
  readonly clientMs: number;
  readonly endpointMs: number;
}

/** Runs `fn(i)` for i in 0..n−1, `concurrency` at a time. */
async function run(n: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

/** CPU per call of `fn` in this process and in the endpoint process, after a warm-up. */
async function cost(
  endpointPid: number,
  n: number,
  fn: (i: number) => Promise<unknown>,
): Promise<{ clientMs: number; endpointMs: number }> {
  await run(Math.min(20, n), 4, fn);
  const client = process.cpuUsage();
  const endpoint = cpuMs(endpointPid);
  await run(n, 4, fn);
  const used = process.cpuUsage(client);
  return { clientMs: (used.user + used.system) / 1000 / n, endpointMs: (cpuMs(endpointPid) - endpoint) / n };
}

export async function measureCalls(config: Config, endpointPid: number, photo: Buffer, n = 200): Promise<CallCost[]> {
  const clients = createAwsClients(config);
  const { s3, sqs } = clients;
  const input = config.names.inputBucket;
  const output = config.names.outputBucket;
  const prefix = 'bench-calls/';
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `bench-calls-${process.pid}` }));
  const queueUrl = QueueUrl!;
  // Messages the size of the real ones: a request (~300 B) and an answer with its result (~1 KB).
  const result = JSON.stringify({
    id: '7d0c5d0e-9d1b-4b53-a1a4-0c6f4bb0e4f1',
    file: 'n01443537_goldfish.JPEG',
    label: 'goldfish',
    score: 0.93,
    top5: ['goldfish, Carassius auratus', 'tench, Tinca tinca', 'rock beauty', 'anemone fish', 'axolotl'].map(
      (label, index) => ({ label, score: 0.1 / (index + 1), index }),
    ),
    model: config.model.source,
    backend: 'onnxruntime-node',
    batch: 8,
    timings: {
      upload: 2.1,
      s3Put: 5.2,
      enqueue: 3.3,
      queueWait: 12.5,
      s3Get: 3.1,
      decode: 7.9,
      infer: 55.2,
      persist: 4.4,
    },
    completedAt: new Date().toISOString(),
  });
  const request = JSON.stringify({
    v: 1,
    requestId: '7d0c5d0e-9d1b-4b53-a1a4-0c6f4bb0e4f1',
    bucket: input,
    key: '7d0c5d0e-9d1b-4b53-a1a4-0c6f4bb0e4f1/n01443537_goldfish.JPEG',
    file: 'n01443537_goldfish.JPEG',
    replyTo: queueUrl,
    enqueuedAt: Date.now(),
    timings: { upload: 2.1, s3Put: 5.2 },
  });
  const tenOf = (body: string) => Array.from({ length: 10 }, (_, j) => ({ Id: String(j), MessageBody: body }));
  const batches = Math.max(10, Math.round(n / 10));
  const rows: CallCost[] = [];
  const add = async (
    call: string,
    by: CallCost['by'],
    perImage: number,
    count: number,
    fn: (i: number) => Promise<unknown>,
  ) => rows.push({ call, by, perImage, ...(await cost(endpointPid, count, fn)) });
  let cleanupFailure: PromiseRejectedResult | undefined;
  try {
    await add(`PutObject, the upload (${Math.round(photo.length / 1024)} KiB)`, 'web', 1, n, (i) =>
      s3.send(
        new PutObjectCommand({
          Bucket: input,
          Key: `${prefix}${i}.jpg`,
          Body: photo,
          ContentType: 'image/jpeg',
          Metadata: { 'request-id': String(i), protocol: 'api' },
        }),
      ),
    );
    // The result cache's question about an upload never seen: one GetObject of its entry's key, a 404
    // (what replaced listing the cache's entries every minute).
    await add('GetObject, a result cache miss (404)', 'web', 1, n, async (i) => {
      await s3
        .send(new GetObjectCommand({ Bucket: output, Key: `${prefix}cache-miss-${i}.json` }))
        .catch((err: unknown) => {
          if ((err as { name?: string }).name !== 'NoSuchKey') throw err;
        });
    });
    await add('GetObject, the upload', 'worker', 1, n, async (i) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: input, Key: `${prefix}${i}.jpg` }));
      await object.Body!.transformToByteArray();
    });
    await add(`PutObject, the result (${result.length} B)`, 'worker', 1, n, (i) =>
      s3.send(
        new PutObjectCommand({
          Bucket: output,
          Key: `${prefix}${i}.json`,
          Body: result,
          ContentType: 'application/json',
        }),
      ),
    );
    // Beside the result, its summary in the time-ordered index of recent results.
    const summary = JSON.stringify({
      id: '7d0c5d0e-9d1b-4b53-a1a4-0c6f4bb0e4f1',
      file: 'n01443537_goldfish.JPEG',
      completedAt: new Date().toISOString(),
      status: 'done',
      label: 'goldfish',
      score: 0.93,
      model: config.model.source,
    });
    await add(`PutObject, the recent-results entry (${summary.length} B)`, 'worker', 1, n, (i) =>
      s3.send(
        new PutObjectCommand({
          Bucket: output,
          Key: `${prefix}recent-${i}.json`,
          Body: summary,
          ContentType: 'application/json',
        }),
      ),
    );
    // Requests one way, answers the other: each message is sent, received and deleted once.
    await add('SendMessageBatch ×10 (requests, answers)', 'web + worker', 0.2, batches, (i) =>
      sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: tenOf(i % 2 ? result : request) })),
    );
    // Each message is received twice per image (the request by a worker, the answer by the web
    // tier); calls per image follow from how many messages a receive actually returned.
    let receives = 0;
    let received = 0;
    const receiveRow = await cost(endpointPid, batches, async () => {
      const { Messages: messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      );
      receives++;
      received += messages.length;
      if (messages.length)
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: messages.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle! })),
          }),
        );
    });
    const perMessage = received > 0 ? receives / received : 1;
    rows.push({
      call: `ReceiveMessage + DeleteMessageBatch (${(received / receives).toFixed(1)} messages each)`,
      by: 'web + worker',
      perImage: Number((2 * perMessage).toFixed(3)),
      ...receiveRow,
    });
  } finally {
    // Clean up everything we can, then report the first failure (the measurement's own error wins).
    const cleanup = await Promise.allSettled([
      sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })),
      run(n, 8, (i) =>
        Promise.all([
          s3.send(new DeleteObjectCommand({ Bucket: input, Key: `${prefix}${i}.jpg` })),
          s3.send(new DeleteObjectCommand({ Bucket: output, Key: `${prefix}${i}.json` })),
          s3.send(new DeleteObjectCommand({ Bucket: output, Key: `${prefix}recent-${i}.json` })),
        ]),
      ),
    ]);
    clients.destroy();
    cleanupFailure = cleanup.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  }
  // Reached only when the measurement itself succeeded: its own error wins over the cleanup's.
  if (cleanupFailure)
    throw new Error(`bench: cleaning up the call measurements failed: ${String(cleanupFailure.reason)}`, {
      cause: cleanupFailure.reason,
    });
  return rows;
}
