/**
 * The pipeline's pieces one by one, against the real embedded endpoint (in this process) and the
 * real default model: keys, messages, config, the batching operator, decode, and each stage.
 */
import { readFile } from 'node:fs/promises';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import test from 'ava';
import { TestScheduler } from 'rxjs/testing';
import sharp from 'sharp';
import { Producer } from 'sqs-producer';
import { type EmbeddedEndpoint, startEmbeddedEndpoint } from '../endpoint/embedded.js';
import { type AwsClients, createAwsClients } from '../lib/aws/clients.js';
import { type Config, ConfigError, loadConfig } from '../lib/config.js';
import { createLogger } from '../lib/log.js';
import { type Classifier, loadClassifier } from '../models/index.js';
import { BatchStore } from '../pipeline/batch-store.js';
import { parseInputKey, resultKey, sanitizeFileName, stem } from '../pipeline/contract/keys.js';
import { MessageFormatError, type Protocol, parseAnswer, parseImageRequest } from '../pipeline/contract/messages.js';
import { decodeImage, sniffImageType } from '../pipeline/images.js';
import { createResponseQueue, ensureQueue, ensureResources, type Resources } from '../pipeline/resources.js';
import { Store } from '../pipeline/store.js';
import { AnswerInbox } from '../pipeline/submit/answer.js';
import { EnqueueBatcher, enqueue } from '../pipeline/submit/enqueue.js';
import { ingest } from '../pipeline/submit/ingest.js';
import type { Job } from '../pipeline/worker/job.js';
import { batchUntil } from '../pipeline/worker/stages/batch-until.js';
import { classify } from '../pipeline/worker/stages/classify.js';
import { consume } from '../pipeline/worker/stages/consume.js';
import { decode } from '../pipeline/worker/stages/decode.js';
import { fetchInput } from '../pipeline/worker/stages/fetch.js';
import { persist } from '../pipeline/worker/stages/persist.js';
import { respond } from '../pipeline/worker/stages/respond.js';
import { type GroundTruth, readGroundTruth } from './helpers/model-fixtures.js';
import { tempDataDir, testEnv } from './helpers/service.js';

let endpoint: EmbeddedEndpoint;
let config: Config;
let clients: AwsClients;
let resources: Resources;
let classifier: Classifier;
let photos: GroundTruth[];
const log = createLogger('stages-test');

test.before(async () => {
  const dataDir = await tempDataDir('stages');
  endpoint = await startEmbeddedEndpoint({ host: '127.0.0.1', port: 0, dataDir });
  config = loadConfig(testEnv(dataDir, { EMBEDDED_PORT: String(endpoint.port) }));
  clients = createAwsClients(config);
  resources = await ensureResources(clients, config);
  classifier = await loadClassifier(config.model.source, { modelsDir: config.model.modelsDir });
  photos = await readGroundTruth();
});

test.after.always(async () => {
  await classifier?.dispose();
  clients?.destroy();
  await endpoint?.stop();
});

// ---- pure pieces -------------------------------------------------------------------------------

test('file names are sanitized: no paths, no NULs, no hidden files, bounded length', (t) => {
  t.is(sanitizeFileName('n01443537_goldfish.JPEG'), 'n01443537_goldfish.JPEG');
  t.is(sanitizeFileName('../../etc/passwd'), 'passwd');
  t.is(sanitizeFileName('C:\\Users\\me\\cat.jpg'), 'cat.jpg');
  t.is(sanitizeFileName('/abs/path/.hidden.png'), 'hidden.png');
  t.is(sanitizeFileName('a\u0000b.jpg'), 'a_b.jpg');
  t.is(sanitizeFileName('café crème.jpg'), 'cafe_creme.jpg');
  t.is(sanitizeFileName('日本.jpg'), 'jpg'); // nothing left of the name but its extension
  t.is(sanitizeFileName(''), 'upload');
  t.is(sanitizeFileName('..'), 'upload');
  const long = sanitizeFileName(`${'x'.repeat(500)}.jpeg`);
  t.is(long.length, 100);
  t.true(long.endsWith('.jpeg'));
  t.is(stem('a.b.jpg'), 'a.b');
  t.deepEqual(parseInputKey('0b0c2f0e-1111-2222-3333-444455556666/cat.jpg'), {
    requestId: '0b0c2f0e-1111-2222-3333-444455556666',
    fileName: 'cat.jpg',
  });
  t.is(parseInputKey('somebody-elses-file.jpg'), undefined);
});

test('config: defaults, endpoint mode from the environment, errors that name the variable', (t) => {
  const embedded = loadConfig({});
  t.is(embedded.aws.mode, 'embedded');
  t.is(embedded.http.port, 3000);
  t.is(embedded.aws.sqsEndpoint, 'http://127.0.0.1:9324');
  t.is(embedded.aws.s3Endpoint, 'http://127.0.0.1:9324', 'one embedded port serves SQS and S3');
  t.is(embedded.worker.visibilityTimeoutSeconds, 10);
  const moved = t.throws(() => loadConfig({ EMBEDDED_SQS_PORT: '9000' }), { instanceOf: ConfigError });
  t.regex(moved!.message, /EMBEDDED_SQS_PORT must be unset: one port serves SQS and S3 now, set EMBEDDED_PORT instead/);
  const huge = t.throws(() => loadConfig({ MAX_UPLOAD_BYTES: String(64 * 1024 * 1024) }), { instanceOf: ConfigError });
  t.regex(huge!.message, /MAX_UPLOAD_BYTES must be at most 11534336 with the embedded endpoint/);
  t.is(
    loadConfig({ ENDPOINT_MODE: 'aws', MAX_UPLOAD_BYTES: String(64 * 1024 * 1024) }).limits.maxUploadBytes,
    64 * 1024 * 1024,
  );
  const localstack = loadConfig({ AWS_ENDPOINT_URL: 'http://localhost:4566', AWS_REGION: 'eu-west-1' });
  t.is(localstack.aws.mode, 'external');
  t.is(localstack.aws.s3Endpoint, 'http://localhost:4566');
  t.true(localstack.aws.s3ForcePathStyle);
  const split = loadConfig({ AWS_ENDPOINT_URL_SQS: 'http://q:1', AWS_ENDPOINT_URL_S3: 'http://s:2' });
  t.deepEqual([split.aws.sqsEndpoint, split.aws.s3Endpoint], ['http://q:1', 'http://s:2']);
  const aws = loadConfig({ ENDPOINT_MODE: 'aws' });
  t.is(aws.aws.sqsEndpoint, undefined);
  t.false(aws.aws.s3ForcePathStyle);
  t.deepEqual(embedded.classic, { field: 'myfile', separator: ',' });
  t.deepEqual(loadConfig({ CLASSIC_FIELD: 'inputFile', CLASSIC_SEPARATOR: ':' }).classic, {
    field: 'inputFile',
    separator: ':',
  });
  t.is(loadConfig({ CLASSIC_SEPARATOR: ' -> ' }).classic.separator, ' -> ', 'a separator keeps its spaces');
  t.is(loadConfig({ CLASSIC_SEPARATOR: '\t' }).classic.separator, '\t');
  const cases = [
    ['PORT', 'eighty'],
    ['WORKERS', '-1'],
    ['INPUT_BUCKET', 'Bad_Bucket'],
    ['AWS_ENDPOINT_URL', 'ftp://x'],
    ['LOG_LEVEL', 'loud'],
    ['AWS_REGION', 'mars'],
    ['CLASSIC_FIELD', 'my file'],
    ['CLASSIC_SEPARATOR', ',\n'],
    ['CLASSIC_SEPARATOR', '123456789'],
  ] as const;
  for (const [variable, value] of cases) {
    const err = t.throws(() => loadConfig({ [variable]: value }), { instanceOf: ConfigError });
    t.is(err?.variable, variable);
    t.true(err!.message.startsWith(`${variable} must be`), err?.message);
  }
});

test('messages: requests and answers round-trip; junk is a typed error', (t) => {
  const request = {
    v: 1,
    requestId: 'r1',
    bucket: 'b',
    key: 'r1/x.jpg',
    file: 'x.jpg',
    replyTo: 'http://q',
    enqueuedAt: 5,
    timings: { s3Put: 1 },
  };
  t.deepEqual(parseImageRequest(JSON.stringify(request)), request);
  t.throws(() => parseImageRequest('{not json'), { instanceOf: MessageFormatError });
  t.throws(() => parseImageRequest(JSON.stringify({ ...request, v: 2 })), { instanceOf: MessageFormatError });
  t.throws(() => parseImageRequest(JSON.stringify({ ...request, key: '' })), { message: /lacks key/ });
  t.throws(() => parseAnswer(JSON.stringify({ v: 1, requestId: 'r', ok: true })), { instanceOf: MessageFormatError });
});

test('content type is judged from the bytes', async (t) => {
  const jpeg = await readFile(photos[0]!.path);
  t.is(sniffImageType(jpeg)?.mime, 'image/jpeg');
  t.is(sniffImageType(await sharp(jpeg).png().toBuffer())?.mime, 'image/png');
  t.is(sniffImageType(await sharp(jpeg).webp().toBuffer())?.mime, 'image/webp');
  t.is(sniffImageType(await sharp(jpeg).gif().toBuffer())?.mime, 'image/gif');
  t.is(sniffImageType(await sharp(jpeg).tiff().toBuffer())?.mime, 'image/tiff');
  t.is(sniffImageType(Buffer.from('<html><body>hi</body></html>')), undefined);
  t.false(sniffImageType(Buffer.from('<?xml version="1.0"?><svg></svg>'))!.supported);
});

test('batchUntil: a full batch goes at once, a partial one after the wait, the rest on completion', (t) => {
  // Virtual time: each frame is 1 ms; the wait is 40 ms.
  const scheduler = new TestScheduler((actual, expected) => t.deepEqual(actual, expected));
  scheduler.run(({ cold, expectObservable }) => {
    const source = cold('(abcd) 79ms e|', { a: 1, b: 2, c: 3, d: 4, e: 5 });
    // 1, 2, 3 at once; 4 alone 40 ms later; 5 when the source completes, without waiting.
    expectObservable(source.pipe(batchUntil<number>(3, 40, scheduler))).toBe('x 39ms y 45ms (z|)', {
      x: [1, 2, 3],
      y: [4],
      z: [5],
    });
  });
});

test('decode: EXIF rotation, alpha, grey, CMYK and 16-bit all become 224x224 RGB', async (t) => {
  const target = classifier.manifest.input;
  const jpeg = await readFile(photos[3]!.path);
  const variants: Record<string, Buffer> = {
    rotated: await sharp(jpeg).jpeg().withMetadata({ orientation: 6 }).toBuffer(),
    alpha: await sharp(jpeg).ensureAlpha(0.5).png().toBuffer(),
    grey: await sharp(jpeg).greyscale().jpeg().toBuffer(),
    cmyk: await sharp(jpeg).toColourspace('cmyk').jpeg().toBuffer(),
    sixteen: await sharp(jpeg).toColourspace('rgb16').png().toBuffer(),
  };
  for (const [name, bytes] of Object.entries(variants)) {
    const image = await decodeImage(bytes, target);
    t.is(image.data.length, 224 * 224 * 3, name);
  }
  await t.throwsAsync(decodeImage(jpeg.subarray(0, 500), target));
  // A tiny file claiming huge dimensions is refused before any pixel is decoded.
  const bomb = await sharp({ create: { width: 10_000, height: 10_000, channels: 3, background: '#000' } })
    .png()
    .toBuffer();
  await t.throwsAsync(decodeImage(bomb, target), { message: /pixel limit/i });
});

// ---- stages against the real endpoint ------------------------------------------------------------

const storeOf = () => Store.of(clients.s3, config);

/** Runs the worker stages over `queueUrl` until `expected` jobs came out, handing each back. */
function runWorkerStages(queueUrl: string, expected: number): Promise<Job[]> {
  const controller = new AbortController();
  const finals: Job[] = [];
  const store = storeOf();
  return new Promise<Job[]>((resolve, reject) => {
    const source = consume(clients.sqs, {
      queueUrl,
      batchSize: 10,
      visibilityTimeoutSeconds: 30,
      waitTimeSeconds: 1,
      batchDeadlineMs: 60_000,
      pollers: 1,
      signal: controller.signal,
      log,
    });
    source.jobs
      .pipe(
        fetchInput(store, { concurrency: 4, retryBudgetMs: 1000, maxBytes: config.limits.maxUploadBytes }),
        decode(classifier.manifest.input, 2),
        classify(classifier, { maxBatch: 4, maxWaitMs: 20 }),
        persist(store, new BatchStore(store), classifier, 4, 1000),
        respond(clients.sqs, 4, 1000),
      )
      .subscribe({
        next(job) {
          finals.push(job);
          source.done(job);
          if (finals.length === expected) controller.abort();
        },
        error: reject,
        // Completes once the consumer has stopped and deleted what was finished.
        complete: () => resolve(finals),
      });
  });
}

test.serial(
  'every stage in order: ingest → enqueue → consume → fetch → decode → classify → persist → respond',
  async (t) => {
    const reply = await createResponseQueue(clients, config);
    const inbox = new AnswerInbox(clients.sqs, reply.url, log, 1);
    inbox.start();
    const producer = Producer.create({ queueUrl: resources.requestQueueUrl, sqs: clients.sqs });
    const sample = photos.slice(100, 106);
    const uploads = await Promise.all(
      // Both protocols: only classic inputs get the seed's `<name>` output object.
      sample.map(async (photo, i) => ({
        requestId: `00000000-0000-0000-0000-00000000000${i}`,
        file: photo.file,
        bytes: await readFile(photo.path),
        contentType: 'image/jpeg',
        protocol: (i % 2 === 0 ? 'classic' : 'api') as Protocol,
        timings: {},
      })),
    );
    const expectations = uploads.map((u) => inbox.expect(u.requestId, 30_000));

    // Web side.
    const store = storeOf();
    const batcher = new EnqueueBatcher(producer);
    const requests = await Promise.all(
      uploads.map(async (upload) => enqueue(batcher, await ingest(store, upload, 1000), reply.url, 1000)),
    );
    t.is(requests.length, 6);
    for (const request of requests) {
      const head = await clients.s3.send(new HeadObjectCommand({ Bucket: request.bucket, Key: request.key }));
      t.is(head.ContentType, 'image/jpeg');
      t.is(head.Metadata?.protocol, uploads.find((u) => u.requestId === request.requestId)!.protocol);
      t.is(typeof request.timings.s3Put, 'number');
      t.is(typeof request.timings.enqueue, 'number');
    }

    // Worker side.
    const finals = await runWorkerStages(resources.requestQueueUrl, sample.length);
    t.is(finals.length, 6);
    t.true(finals.every((job) => !job.failure));
    t.true(
      finals.some((job) => (job.batch ?? 0) > 1),
      'images were batched',
    );

    // Answers arrive on the reply queue, each for its own request, and the results are stored.
    const answers = await Promise.all(expectations.map((e) => e.answer));
    // Each answer is the model's verdict on its own photo, computed here independently.
    const reference = await classifier.classify(
      await Promise.all(uploads.map((u) => decodeImage(u.bytes, classifier.manifest.input))),
    );
    for (const [i, answer] of answers.entries()) {
      t.true(answer.ok);
      if (!answer.ok) continue;
      t.is(answer.requestId, uploads[i]!.requestId);
      t.is(answer.result.label, reference[i]!.label);
      const seedKey = { Bucket: config.names.outputBucket, Key: stem(sample[i]!.file) };
      if (uploads[i]!.protocol === 'classic') {
        const seed = await clients.s3.send(new GetObjectCommand(seedKey));
        t.is(await seed.Body!.transformToString(), `${stem(sample[i]!.file)},${answer.result.label}`);
      } else {
        await t.throwsAsync(
          clients.s3.send(new HeadObjectCommand(seedKey)),
          { name: 'NotFound' },
          'an API upload writes no classic output',
        );
      }
      const full = await clients.s3.send(
        new GetObjectCommand({ Bucket: config.names.outputBucket, Key: resultKey(answer.requestId) }),
      );
      t.is(JSON.parse(await full.Body!.transformToString()).label, answer.result.label);
    }
    // Finished messages were deleted: nothing is left to receive.
    const left = await clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: resources.requestQueueUrl, WaitTimeSeconds: 0 }),
    );
    t.is(left.Messages?.length ?? 0, 0);
    inbox.stop();
  },
);

test.serial(
  'a missing input or an undecodable image fails for good and is answered; the message is deleted',
  async (t) => {
    const queueUrl = await ensureQueue(clients, 'stages-failures', { VisibilityTimeout: '30' });
    const reply = await createResponseQueue(clients, config);
    const inbox = new AnswerInbox(clients.sqs, reply.url, log, 1);
    inbox.start();
    await clients.s3.send(
      new PutObjectCommand({
        Bucket: config.names.inputBucket,
        Key: 'bad-1/garbage.jpg',
        Body: Buffer.from([0xff, 0xd8, 0xff, 1, 2, 3]),
      }),
    );
    const producer = Producer.create({ queueUrl, sqs: clients.sqs });
    const requests = [
      {
        v: 1,
        requestId: 'missing-1',
        bucket: config.names.inputBucket,
        key: 'missing-1/none.jpg',
        file: 'none.jpg',
        replyTo: reply.url,
        enqueuedAt: Date.now(),
        timings: {},
      },
      {
        v: 1,
        requestId: 'bad-1',
        bucket: config.names.inputBucket,
        key: 'bad-1/garbage.jpg',
        file: 'garbage.jpg',
        replyTo: reply.url,
        enqueuedAt: Date.now(),
        timings: {},
      },
    ];
    const waits = requests.map((r) => inbox.expect(r.requestId, 30_000).answer);
    await producer.send([
      ...requests.map((r) => ({ id: r.requestId, body: JSON.stringify(r) })),
      { id: 'junk', body: 'not json at all' },
    ]);

    const finals = await runWorkerStages(queueUrl, 2);
    const codes = finals.map((job) => job.failure?.code).sort();
    t.deepEqual(codes, ['INPUT_MISSING', 'UNDECODABLE_IMAGE']);
    const answers = await Promise.all(waits);
    t.deepEqual(
      answers.map((a) => (a.ok ? 'ok' : a.error.code)),
      ['INPUT_MISSING', 'UNDECODABLE_IMAGE'],
    );
    const left = await clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 0, VisibilityTimeout: 0 }),
    );
    t.is(left.Messages?.length ?? 0, 0, 'failed-for-good and unreadable messages are deleted');
    inbox.stop();
  },
);

test('listing pages through continuation tokens', async (t) => {
  const bucket = config.names.inputBucket;
  await Promise.all(
    Array.from({ length: 25 }, (_, i) =>
      clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `paging/${String(i).padStart(2, '0')}`, Body: 'x' })),
    ),
  );
  const keys: string[] = [];
  for await (const key of storeOf().keys('input', 'paging/', 10)) keys.push(key);
  t.is(keys.length, 25);
  t.is(new Set(keys).size, 25);
});

test('resources are created idempotently', async (t) => {
  const again = await ensureResources(clients, config);
  t.is(again.requestQueueUrl, resources.requestQueueUrl);
});
