/**
 * A worker in an Auto Scaling group, with a stand-in for the instance metadata service (IMDSv2) and
 * the Auto Scaling client mocked (no emulator exists): told to terminate mid-batch it finishes its
 * batch, deletes its messages, and only then completes the termination action; warming in a warm
 * pool it takes no message until it is put in service; off EC2 it just runs. Everything else is
 * real: the embedded endpoint, the default model, real photos.
 */
import { readFile } from 'node:fs/promises';
import { AutoScalingClient, CompleteLifecycleActionCommand } from '@aws-sdk/client-auto-scaling';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import test from 'ava';
import { mockClient } from 'aws-sdk-client-mock';
import { type EmbeddedEndpoint, startEmbeddedEndpoint } from '../endpoint/embedded.js';
import { type AwsClients, createAwsClients } from '../lib/aws/clients.js';
import { type Config, loadConfig } from '../lib/config.js';
import { createLogger } from '../lib/log.js';
import { type Classifier, loadClassifier } from '../models/index.js';
import { type ImageRequest, serializeMessage } from '../pipeline/contract/messages.js';
import { ensureResources, type Resources } from '../pipeline/resources.js';
import { Store } from '../pipeline/store.js';
import { detectLifecycle } from '../pipeline/worker/lifecycle.js';
import { serveQueue } from '../pipeline/worker/worker.js';
import { queueDepth } from '../scaling/index.js';
import { startImds } from './helpers/imds.js';
import { type GroundTruth, readGroundTruth } from './helpers/model-fixtures.js';
import { tempDataDir, testEnv, waitFor } from './helpers/service.js';

const log = createLogger('lifecycle-test');
const GROUP = 'app-tier';
const autoscaling = mockClient(AutoScalingClient);

let endpoint: EmbeddedEndpoint;
let dataDir: string;
let classifier: Classifier;
let photos: GroundTruth[];

test.before(async () => {
  dataDir = await tempDataDir('lifecycle');
  endpoint = await startEmbeddedEndpoint({ host: '127.0.0.1', port: 0, dataDir });
  photos = await readGroundTruth();
  classifier = await loadClassifier(loadConfig(testEnv(dataDir)).model.source, {
    modelsDir: loadConfig(testEnv(dataDir)).model.modelsDir,
  });
});

test.after.always(async () => {
  await classifier?.dispose();
  await endpoint?.stop();
  autoscaling.restore();
});

interface Rig {
  readonly config: Config;
  readonly clients: AwsClients;
  readonly resources: Resources;
  readonly store: Store;
}

/** A request queue of its own for each test (tests run at once), with `count` photos queued. */
async function rig(name: string, imds: string, count: number): Promise<Rig> {
  const config = loadConfig(
    testEnv(dataDir, {
      EMBEDDED_PORT: String(endpoint.port),
      REQUEST_QUEUE: `lifecycle-${name}`,
      INPUT_BUCKET: `lifecycle-${name}-in`,
      OUTPUT_BUCKET: `lifecycle-${name}-out`,
      AUTO_SCALING_GROUP: GROUP,
      LIFECYCLE_HOOK_TERMINATE: 'drain',
      LIFECYCLE_HOOK_LAUNCH: 'warm',
      IMDS_ENDPOINT: imds,
      MAX_BATCH: '4',
    }),
  );
  const clients = createAwsClients(config);
  const resources = await ensureResources(clients, config);
  const store = Store.of(clients.s3, config);
  const requests: ImageRequest[] = [];
  for (const [i, photo] of photos.slice(0, count).entries()) {
    const requestId = `00000000-0000-4000-8000-${name.padEnd(6, '0').slice(0, 6)}${String(i).padStart(6, '0')}`;
    const { bucket, key } = await store.putInput({
      requestId,
      file: photo.file,
      bytes: await readFile(photo.path),
      contentType: 'image/jpeg',
      protocol: 'api',
    });
    requests.push({ v: 1, requestId, bucket, key, file: photo.file, enqueuedAt: Date.now(), timings: {} });
  }
  for (let i = 0; i < requests.length; i += 10) {
    await clients.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: resources.requestQueueUrl,
        Entries: requests.slice(i, i + 10).map((r, j) => ({ Id: String(j), MessageBody: serializeMessage(r) })),
      }),
    );
  }
  return { config, clients, resources, store };
}

async function resultsStored(r: Rig): Promise<number> {
  let n = 0;
  for await (const _ of r.store.keys('output', 'results/')) n++;
  return n;
}

const completions = () => autoscaling.commandCalls(CompleteLifecycleActionCommand).map((c) => c.args[0].input);

test.serial(
  'terminated mid-batch: the worker finishes and deletes what it holds, then completes the termination action',
  async (t) => {
    autoscaling.reset();
    const imds = await startImds();
    t.teardown(() => imds.close());
    const r = await rig('term', imds.url, 24);
    t.teardown(() => r.clients.destroy());
    // When the action is completed, nothing the worker took may still be in flight.
    const atCompletion: { inFlight: number; stored: number }[] = [];
    autoscaling.on(CompleteLifecycleActionCommand, { LifecycleHookName: 'drain' }).callsFake(async () => {
      const depth = await queueDepth(r.clients.sqs, r.resources.requestQueueUrl);
      atCompletion.push({ inFlight: depth.inFlight, stored: await resultsStored(r) });
      return {};
    });
    // The launch hook is not waiting for anything here: AWS answers that with a ValidationError.
    autoscaling.on(CompleteLifecycleActionCommand, { LifecycleHookName: 'warm' }).rejects(
      Object.assign(new Error('No active Lifecycle Action found with instance ID i-0123456789abcdef0'), {
        name: 'ValidationError',
      }),
    );

    const lifecycle = await detectLifecycle({
      config: r.config,
      log,
      autoscaling: () => new AutoScalingClient({ region: 'us-east-1' }),
      pollMs: 100,
    });
    const stop = new AbortController();
    const serving = serveQueue(
      { config: r.config, clients: r.clients, classifier, log },
      r.resources.requestQueueUrl,
      lifecycle,
      stop,
    );
    // Mid-batch: some messages taken, not all of them done.
    await waitFor(async () => (await queueDepth(r.clients.sqs, r.resources.requestQueueUrl)).inFlight > 0, 20_000);
    imds.state = 'Terminated';
    const counts = await serving;

    t.true(stop.signal.aborted, 'the worker stopped itself');
    t.true(counts.processed > 0 && counts.processed < 24, `processed ${counts.processed} of 24`);
    t.is(counts.failed, 0);
    t.deepEqual(
      completions().filter((c) => c.LifecycleHookName === 'drain'),
      [
        {
          AutoScalingGroupName: GROUP,
          LifecycleHookName: 'drain',
          InstanceId: imds.instanceId,
          LifecycleActionResult: 'CONTINUE',
        },
      ],
    );
    t.deepEqual(atCompletion, [{ inFlight: 0, stored: counts.processed }]);
    const after = await queueDepth(r.clients.sqs, r.resources.requestQueueUrl);
    t.is(after.visible, 24 - counts.processed, 'what the worker did not take is still queued, for other workers');
    t.true(
      imds.requests.every((line) => !line.endsWith(' 401')),
      'every read carried its token',
    );
  },
);

test.serial(
  'warming in a warm pool: the worker completes the warm-up and takes nothing until it is put in service',
  async (t) => {
    autoscaling.reset();
    autoscaling.on(CompleteLifecycleActionCommand).resolves({});
    const imds = await startImds('i-0feedfacecafe0001', 'Warmed:Stopped');
    t.teardown(() => imds.close());
    const r = await rig('warm', imds.url, 6);
    t.teardown(() => r.clients.destroy());
    const lifecycle = await detectLifecycle({
      config: r.config,
      log,
      autoscaling: () => new AutoScalingClient({ region: 'us-east-1' }),
      pollMs: 100,
    });
    const stop = new AbortController();
    const serving = serveQueue(
      { config: r.config, clients: r.clients, classifier, log },
      r.resources.requestQueueUrl,
      lifecycle,
      stop,
    );

    await waitFor(() => completions().length === 1, 10_000);
    t.deepEqual(completions()[0], {
      AutoScalingGroupName: GROUP,
      LifecycleHookName: 'warm',
      InstanceId: imds.instanceId,
      LifecycleActionResult: 'CONTINUE',
    });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    t.deepEqual(
      await queueDepth(r.clients.sqs, r.resources.requestQueueUrl),
      { visible: 6, inFlight: 0 },
      'nothing taken while warming',
    );
    t.is(await resultsStored(r), 0);

    imds.state = 'InService';
    await waitFor(async () => (await resultsStored(r)) === 6, 30_000);
    t.is(completions().length, 2, 'the launch action is completed again on the way into service');
    stop.abort();
    t.deepEqual(await serving, { processed: 6, failed: 0 });
  },
);

test.serial('off EC2 (nothing answers at the metadata address) the worker just runs', async (t) => {
  autoscaling.reset();
  const r = await rig('noec2', 'http://127.0.0.1:9', 4);
  t.teardown(() => r.clients.destroy());
  const lifecycle = await detectLifecycle({
    config: r.config,
    log,
    autoscaling: () => new AutoScalingClient({ region: 'us-east-1' }),
  });
  t.deepEqual(lifecycle.describe, { lifecycle: 'none: not on EC2' });
  const stop = new AbortController();
  const serving = serveQueue(
    { config: r.config, clients: r.clients, classifier, log },
    r.resources.requestQueueUrl,
    lifecycle,
    stop,
  );
  await waitFor(async () => (await resultsStored(r)) === 4, 30_000);
  stop.abort();
  t.deepEqual(await serving, { processed: 4, failed: 0 });
  t.is(completions().length, 0);
});

for (const state of ['InService', 'Terminated']) {
  test.serial(
    `close() while a read of the state is on its way (${state}): no read after it, nothing stopped`,
    async (t) => {
      const imds = await startImds();
      t.teardown(() => imds.close());
      const r = await rig(`close${state.slice(0, 2).toLowerCase()}`, imds.url, 0);
      t.teardown(() => r.clients.destroy());
      const lifecycle = await detectLifecycle({
        config: r.config,
        log,
        autoscaling: () => new AutoScalingClient({ region: 'us-east-1' }),
        pollMs: 50,
      });
      // The worker has stopped (SIGTERM) while the watcher waits for an answer: the answer, whatever
      // it says, must neither stop anything nor schedule another read (which would keep the process alive).
      imds.delayMs = 300;
      let stopped = false;
      const before = imds.stateReads;
      lifecycle.watch(() => {
        stopped = true;
      });
      await waitFor(() => imds.stateReads > before, 5_000);
      imds.state = state;
      lifecycle.close();
      const atClose = imds.stateReads;
      await new Promise((resolve) => setTimeout(resolve, 800));
      t.is(imds.stateReads, atClose, 'no read after close()');
      t.false(stopped);
    },
  );
}
