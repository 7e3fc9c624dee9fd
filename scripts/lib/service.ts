/**
 * The whole service on one machine, as `npm start` runs it: the embedded endpoint (unless an
 * external one is configured), the buckets and queues, the worker pool and the web tier.
 * Tests start exactly this.
 */
import { createAwsClients, type AwsClients } from '../../pipeline/aws/clients.js';
import { ensureResources, type Resources } from '../../pipeline/aws/resources.js';
import { childEnv, loadConfig, type Config } from '../../pipeline/config.js';
import type { Logger } from '../../pipeline/log.js';
import { Producer } from 'sqs-producer';
import { fetchModel, resolveModel } from '../../models/index.js';
import { startDeadLetterWatcher } from '../../pipeline/deadletters.js';
import { takeInventory } from '../../pipeline/inventory.js';
import { EnqueueBatcher } from '../../pipeline/stages/enqueue.js';
import { WorkerPool } from '../../pipeline/pool.js';
import { EndpointProcess } from '../../pipeline/endpoint-process.js';
import { serializeMessage } from '../../pipeline/messages.js';
import { startWebTier, type WebTier } from '../../web/server.js';
import { LOCAL_POLICY, loadPolicy, type ScalingPolicy } from '../../scaling/index.js';
import { LocalAutoscaler } from '../../scaling/local-autoscaler.js';
import { depthWithActivity, queueDepth } from '../../scaling/queue-depth.js';

export interface Service {
  readonly config: Config;
  readonly clients: AwsClients;
  readonly resources: Resources;
  readonly pool: WorkerPool;
  readonly web: WebTier;
  /** The embedded endpoint's process id, now (undefined with an external endpoint). */
  readonly endpointPid: number | undefined;
  stop(): Promise<void>;
}

async function localPolicy(config: Config): Promise<ScalingPolicy> {
  const base: ScalingPolicy = { ...LOCAL_POLICY, minCapacity: config.worker.min, maxCapacity: config.worker.max };
  return config.worker.policyFile ? loadPolicy(config.worker.policyFile, base) : base;
}

export async function startService(initial: Config, log: Logger): Promise<Service> {
  let config = initial;
  let endpoint: EndpointProcess | undefined;
  let migrated = 0;
  if (config.aws.mode === 'embedded') {
    const started = await EndpointProcess.start(childEnv(config), log.child('endpoint'));
    endpoint = started.endpoint;
    migrated = started.ready.migrated;
    // The port may have been 0 (pick any): from here on everyone uses the real one.
    config = loadConfig(childEnv(config, { EMBEDDED_PORT: String(started.ready.port) }));
  }
  const stopEndpoint = async () => endpoint?.stop(10_000);
  const clients = createAwsClients(config);
  // What has been started, so a failed start stops it again and a stop knows the order.
  let web: WebTier | undefined;
  let pool: WorkerPool | undefined;
  let autoscaler: LocalAutoscaler | undefined;
  let deadLetters: { stop(): void } | undefined;
  const stopAll = async () => {
    autoscaler?.stop();
    deadLetters?.stop();
    await web?.stop();
    await pool?.stop();
    clients.destroy();
    await stopEndpoint();
  };
  try {
    const resources = await ensureResources(clients, config);
    log.info('resources ready', { inputBucket: config.names.inputBucket, outputBucket: config.names.outputBucket, requestQueue: resources.requestQueueUrl, endpoint: config.aws.sqsEndpoint ?? 'AWS' });
    // Download the model once here (if it must be downloaded), not in every worker at once.
    await prefetchModel(config, clients);
    const workers = new WorkerPool({
      env: childEnv(config),
      log: log.child('pool'),
      stopGraceMs: (config.worker.visibilityTimeoutSeconds + config.worker.receiveWaitSeconds) * 1000,
    });
    pool = workers;
    // WORKERS fixes the pool; otherwise the local autoscaler moves it between WORKERS_MIN and
    // WORKERS_MAX with the same policy the AWS setup configures (1 s periods instead of 60 s).
    const depth = depthWithActivity(() => queueDepth(clients.sqs, resources.requestQueueUrl), () => workers.lastActivityAt);
    autoscaler =
      config.worker.count === undefined
        ? new LocalAutoscaler({ policy: await localPolicy(config), pool: workers, depth, log: log.child('autoscaler') })
        : undefined;
    const scaler = autoscaler;
    const status = async () => ({
      ...(scaler ? scaler.status() : { queue: await depth(), workers: { desired: workers.desired, running: workers.running }, decisions: [] }),
      runtime: { node: process.version, workers: workers.nodeVersions },
    });
    web = await startWebTier(config, clients, resources, log.child('web'), status);
    deadLetters = startDeadLetterWatcher({
      sqs: clients.sqs,
      s3: clients.s3,
      queueUrl: resources.deadLetterQueueUrl,
      outputBucket: config.names.outputBucket,
      maxReceives: config.names.maxReceives,
      waitTimeSeconds: config.worker.receiveWaitSeconds,
      log: log.child('dead-letters'),
    });
    // The embedded queues outlive a restart now; only inputs imported from an earlier version's
    // data directory (whose queues lived in memory and are gone) may have lost their requests.
    if (migrated > 0) await requeueUnfinished(config, clients, resources, log);
    // Uploads are accepted from here on; they wait in the queue until a worker is ready.
    if (scaler) {
      await workers.resize(config.worker.min);
      scaler.start();
    } else {
      await workers.resize(config.worker.count!);
    }
    let stopping: Promise<void> | undefined;
    return {
      config,
      clients,
      resources,
      pool: workers,
      web,
      get endpointPid() {
        return endpoint?.pid;
      },
      stop() {
        stopping ??= stopAll();
        return stopping;
      },
    };
  } catch (err) {
    await stopAll().catch((stopErr: unknown) => log.error('cleanup after a failed start failed', { error: stopErr }));
    throw err;
  }
}

async function prefetchModel(config: Config, clients: AwsClients): Promise<void> {
  const manifest = await resolveModel(config.model.source, { modelsDir: config.model.modelsDir });
  await fetchModel(manifest, { cacheDir: config.model.cacheDir, s3: clients.s3 });
}

async function requeueUnfinished(config: Config, clients: AwsClients, resources: Resources, log: Logger): Promise<void> {
  const inventory = await takeInventory(clients.s3, { input: config.names.inputBucket, output: config.names.outputBucket });
  const unfinished = inventory.inputs.filter((r) => !inventory.finished.has(r.requestId) && !inventory.deadLetters.has(r.requestId));
  if (unfinished.length === 0) return;
  const batcher = new EnqueueBatcher(Producer.create({ queueUrl: resources.requestQueueUrl, sqs: clients.sqs }));
  await Promise.all(unfinished.map((request) => batcher.send(request.requestId, serializeMessage({ ...request, enqueuedAt: Date.now() }))));
  log.warn('imported requests without a result queued again (the earlier version\'s queue did not outlive its restarts)', { count: unfinished.length });
}
