/**
 * The local autoscaler against the real thing: the embedded SQS + S3 endpoint in this process, a
 * real WorkerPool forking real workers (tfjs model, ~3 s to start), real photos. 40 requests go
 * onto the queue: the pool goes 0 → 2, every message is processed, and once the queue has been
 * empty for a few periods the pool drains back to 0.
 */

import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import test from 'ava';
import { type EmbeddedEndpoint, startEmbeddedEndpoint } from '../endpoint/embedded.js';
import { type AwsClients, createAwsClients } from '../lib/aws/clients.js';
import { type Config, childEnv, loadConfig } from '../lib/config.js';
import { createLogger } from '../lib/log.js';
import { inputKey, RESULTS_PREFIX, resultKey, sanitizeFileName } from '../pipeline/contract/keys.js';
import type { ImageRequest } from '../pipeline/contract/messages.js';
import { ensureResources, type Resources } from '../pipeline/resources.js';
import { Store } from '../pipeline/store.js';
import {
  type AutoscalerStatus,
  depthWithActivity,
  LOCAL_POLICY,
  queueDepth,
  resolvePolicy,
  ScalingController,
  ScalingError,
} from '../scaling/index.js';
import { WorkerPool } from '../service/pool.js';
import { readGroundTruth } from './helpers/model-fixtures.js';
import { tempDataDir, testEnv } from './helpers/service.js';

const log = createLogger('test-scaling-local');

interface Stack {
  readonly dir: string;
  readonly endpoint: EmbeddedEndpoint;
  readonly config: Config;
  readonly clients: AwsClients;
  readonly resources: Resources;
  readonly pool: WorkerPool;
  close(): Promise<void>;
}

/** Endpoint in-process on free ports, buckets and queue, and an empty real worker pool. */
async function startStack(name: string): Promise<Stack> {
  const dir = await tempDataDir(name);
  const endpoint = await startEmbeddedEndpoint({ host: '127.0.0.1', port: 0, dataDir: dir });
  const config = loadConfig(testEnv(dir, { EMBEDDED_PORT: String(endpoint.port) }));
  const clients = createAwsClients(config);
  const resources = await ensureResources(clients, config);
  const pool = new WorkerPool({
    env: childEnv(config),
    log: log.child('pool'),
    stopGraceMs: (config.worker.visibilityTimeoutSeconds + config.worker.receiveWaitSeconds) * 1000,
  });
  return {
    dir,
    endpoint,
    config,
    clients,
    resources,
    pool,
    async close() {
      await pool.stop();
      clients.destroy();
      await endpoint.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** min 0, max 2, 1 s periods, back to zero after 3 empty periods. */
const FAST_POLICY = resolvePolicy(
  {
    minCapacity: 0,
    maxCapacity: 2,
    periodSeconds: 1,
    scaleToZero: { enabled: true, emptyPeriods: 3 },
    warmupSeconds: 1,
    scaleOutCooldownSeconds: 1,
    scaleInCooldownSeconds: 1,
  },
  LOCAL_POLICY,
);

/** Polls `check` every `everyMs` until it returns true; fails with `what` after `timeoutMs`. */
async function until(
  what: string,
  timeoutMs: number,
  check: () => boolean | Promise<boolean>,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Stores each photo in the input bucket and sends one request message per photo, 10 per batch. */
async function enqueuePhotos(stack: Stack, photos: readonly { file: string; path: string }[]): Promise<string[]> {
  const requests: ImageRequest[] = await Promise.all(
    photos.map(async (photo) => {
      const requestId = randomUUID();
      const file = sanitizeFileName(photo.file);
      const key = inputKey(requestId, file);
      await stack.clients.s3.send(
        new PutObjectCommand({
          Bucket: stack.config.names.inputBucket,
          Key: key,
          Body: await readFile(photo.path),
          ContentType: 'image/jpeg',
        }),
      );
      return {
        v: 1,
        requestId,
        bucket: stack.config.names.inputBucket,
        key,
        file,
        enqueuedAt: Date.now(),
        timings: {},
      } satisfies ImageRequest;
    }),
  );
  for (let i = 0; i < requests.length; i += 10) {
    const entries = requests.slice(i, i + 10).map((r, j) => ({ Id: String(j), MessageBody: JSON.stringify(r) }));
    const out = await stack.clients.sqs.send(
      new SendMessageBatchCommand({ QueueUrl: stack.resources.requestQueueUrl, Entries: entries }),
    );
    if ((out.Failed ?? []).length > 0) throw new Error(`SendMessageBatch failed for ${JSON.stringify(out.Failed)}`);
  }
  return requests.map((r) => r.requestId);
}

async function resultKeys(stack: Stack): Promise<Set<string>> {
  const keys = new Set<string>();
  const store = Store.of(stack.clients.s3, stack.config);
  for await (const key of store.keys('output', RESULTS_PREFIX)) keys.add(key);
  return keys;
}

test('queueDepth counts visible messages and names a missing queue', async (t) => {
  const stack = await startStack('scaling-depth');
  try {
    const url = stack.resources.requestQueueUrl;
    t.deepEqual(await queueDepth(stack.clients.sqs, url), { visible: 0, inFlight: 0 });
    await stack.clients.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: [0, 1, 2].map((i) => ({ Id: String(i), MessageBody: `m${i}` })),
      }),
    );
    t.deepEqual(await queueDepth(stack.clients.sqs, url), { visible: 3, inFlight: 0 });

    const missing = url.replace(/[^/]+$/, 'no-such-queue');
    const error = await t.throwsAsync(queueDepth(stack.clients.sqs, missing), { instanceOf: ScalingError });
    t.is(error?.code, 'QUEUE_NOT_FOUND');
    t.is(error?.context.queueUrl, missing);
    t.is(error?.context.command, 'GetQueueAttributesCommand');
  } finally {
    await stack.close();
  }
});

test('options are validated once, at construction', async (t) => {
  const stack = await startStack('scaling-options');
  try {
    const depth = () => queueDepth(stack.clients.sqs, stack.resources.requestQueueUrl);
    const base = { policy: LOCAL_POLICY, actuator: stack.pool, depth, log };
    const bad = t.throws(() => new ScalingController({ ...base, historySize: 0 }), { instanceOf: ScalingError });
    t.is(bad?.code, 'INVALID_OPTIONS');
    t.is(bad?.context.option, 'historySize');
    const policy = t.throws(() => new ScalingController({ ...base, policy: { ...LOCAL_POLICY, maxCapacity: 0 } }), {
      instanceOf: ScalingError,
    });
    t.is(policy?.code, 'INVALID_POLICY');
    const status = new ScalingController(base).status();
    t.deepEqual(status.workers, { desired: 0, running: 0 });
    t.deepEqual(status.decisions, []);
    t.is(status.queue.sampledAt, null);
  } finally {
    await stack.close();
  }
});

test('a backlog scales the real pool 0 → 2, every message is processed, then it drains back to 0', async (t) => {
  const stack = await startStack('scaling-local');
  const autoscaler = new ScalingController({
    policy: FAST_POLICY,
    actuator: stack.pool,
    depth: depthWithActivity(
      () => queueDepth(stack.clients.sqs, stack.resources.requestQueueUrl),
      () => stack.pool.lastActivityAt,
    ),
    log: log.child('autoscaler'),
  });
  const seen = { desired: 0, running: 0 };
  const sampler = setInterval(() => {
    seen.desired = Math.max(seen.desired, stack.pool.desired);
    seen.running = Math.max(seen.running, stack.pool.running);
  }, 50);
  try {
    autoscaler.start();
    // An empty queue: a few periods go by and nothing starts.
    await until('two depth samples', 10_000, () => autoscaler.status().queue.sampledAt !== null);
    await sleep(1_500);
    t.deepEqual(autoscaler.status().workers, { desired: 0, running: 0 });
    t.deepEqual(autoscaler.status().decisions, []);
    t.is(stack.pool.alive, 0);

    const photos = (await readGroundTruth()).slice(0, 40);
    const ids = await enqueuePhotos(stack, photos);
    t.is(ids.length, 40);

    await until('desired = 2', 20_000, () => stack.pool.desired === 2);
    await until('2 workers running', 120_000, () => seen.running === 2);
    await until('40 results in the output bucket', 180_000, async () => (await resultKeys(stack)).size >= 40, 500);
    const results = await resultKeys(stack);
    t.deepEqual(
      ids.filter((id) => !results.has(resultKey(id))),
      [],
      'every request has its results/<id>.json',
    );

    // Empty for 3 periods → back to minCapacity 0, by draining (SIGTERM), so the processes exit.
    await until('desired = 0', 60_000, () => stack.pool.desired === 0);
    await until('no worker running', 60_000, () => stack.pool.running === 0);
    await until('every worker process exited', 120_000, () => stack.pool.alive === 0);
    t.deepEqual(
      await queueDepth(stack.clients.sqs, stack.resources.requestQueueUrl),
      { visible: 0, inFlight: 0 },
      'nothing left in the queue',
    );
    t.is(seen.desired, 2);
    t.is(seen.running, 2);

    const status: AutoscalerStatus = autoscaler.status();
    t.deepEqual(status.workers, { desired: 0, running: 0 });
    const decisions = status.decisions;
    t.log(
      decisions
        .map(
          (d) =>
            `${d.from} → ${d.to} ${d.rule} (${d.resize.state}${'ms' in d.resize ? ` ${d.resize.ms} ms` : ''}): ${d.reason}`,
        )
        .join('\n'),
    );
    const first = decisions[0];
    const last = decisions[decisions.length - 1];
    t.truthy(first);
    t.truthy(last);
    t.like(first, { action: 'scale-out', from: 0, rule: 'scale-from-zero', inputs: { running: 0, desired: 0 } });
    t.true((first?.inputs.visible ?? 0) > 0, 'the scale-out saw the backlog');
    t.regex(first?.reason ?? '', /visible and no instance in service/);
    t.like(last, { action: 'scale-in', to: 0, rule: 'scale-to-zero', inputs: { visible: 0, inFlight: 0 } });
    t.regex(last?.reason ?? '', /queue empty/);
    t.true(decisions.indexOf(first!) < decisions.indexOf(last!));
    t.is(Math.max(...decisions.map((d) => d.to)), 2, 'never above maxCapacity');
    for (const d of decisions) {
      t.true(d.reason.length > 0);
      t.is(d.resize.state, 'done', `resize ${d.from} → ${d.to} settled`);
    }
    // A scale-out's resize settles once the new workers are ready (the model is loaded).
    const out = decisions.find((d) => d.action === 'scale-out' && d.to === 2);
    t.true(out !== undefined && out.resize.state === 'done' && out.resize.ms > 0);
  } finally {
    clearInterval(sampler);
    autoscaler.stop();
    await stack.close();
  }
});

test('a light steady trickle keeps one worker: sampled depth plus worker activity never reads it as idle', async (t) => {
  // One request every 0.5 s is in the queue for a few tens of ms each: depth readings alone miss
  // most of them and would scale to zero between requests; the pool hears of every finished image.
  const stack = await startStack('scaling-trickle');
  const autoscaler = new ScalingController({
    policy: FAST_POLICY,
    actuator: stack.pool,
    depth: depthWithActivity(
      () => queueDepth(stack.clients.sqs, stack.resources.requestQueueUrl),
      () => stack.pool.lastActivityAt,
    ),
    log: log.child('autoscaler'),
  });
  try {
    autoscaler.start();
    const photos = (await readGroundTruth()).slice(40, 90);
    // The first request starts a worker; the trickle goes on once it is ready (however long its
    // model takes to load on a busy machine, which would otherwise pile up a backlog that rightly
    // asks for a second worker) and lasts 10 s: more than three times the 3 s in which an idle
    // reading would scale it to zero.
    const ids = await enqueuePhotos(stack, [photos[0]!]);
    await until('a worker ready', 120_000, () => stack.pool.running > 0, 100);
    const servingSince = Date.now();
    for (const photo of photos.slice(1)) {
      if (Date.now() - servingSince > 10_000) break;
      await sleep(500);
      ids.push(...(await enqueuePhotos(stack, [photo])));
    }
    const lastSent = Date.now() / 1000;
    await until(`${ids.length} results`, 120_000, async () => (await resultKeys(stack)).size >= ids.length, 500);
    await until('back to 0 workers', 60_000, () => stack.pool.desired === 0 && stack.pool.running === 0);

    const decisions = autoscaler.status().decisions;
    t.log(
      decisions
        .map(
          (d) =>
            `${(d.t - lastSent).toFixed(1)} s: ${d.from} → ${d.to} ${d.rule} (visible ${d.inputs.visible}, in flight ${d.inputs.inFlight})`,
        )
        .join('\n'),
    );
    const during = decisions.filter((d) => d.t < lastSent);
    t.deepEqual(
      during.map((d) => [d.from, d.to, d.rule]),
      [[0, 1, 'scale-from-zero']],
      'one scale-out, no scale-in while requests kept coming',
    );
    const last = decisions[decisions.length - 1];
    t.like(last, { to: 0, rule: 'scale-to-zero' });
    t.true((last?.t ?? 0) >= lastSent, 'scaled to zero only after the trickle ended');
  } finally {
    autoscaler.stop();
    await stack.close();
  }
});
