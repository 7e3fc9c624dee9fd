/**
 * The whole service on one machine, as `npm start` runs it: the embedded endpoint (unless an
 * external one is configured), the buckets and queues, the worker pool with its autoscaler, the
 * dead-letter watcher, and the web tier in front. The web tier's process is where these meet, so
 * they are assembled here; tests start exactly this. Stopping goes the other way round: no new
 * work, the web tier drains, workers finish what they hold, the endpoint goes last.
 */
import { Producer } from 'sqs-producer';
import { fetchModel, resolveModel } from '../models/index.js';
import { createAwsClients, type AwsClients } from '../pipeline/aws/clients.js';
import { ensureResources, type Resources } from '../pipeline/aws/resources.js';
import { childEnv, loadConfig, type Config } from '../pipeline/config.js';
import { startDeadLetterWatcher } from '../pipeline/deadletters.js';
import { EndpointProcess } from '../pipeline/local/endpoint-process.js';
import { WorkerPool } from '../pipeline/local/pool.js';
import type { Logger } from '../pipeline/log.js';
import { serializeMessage } from '../pipeline/messages.js';
import { EnqueueBatcher } from '../pipeline/stages/enqueue.js';
import { Store } from '../pipeline/store.js';
import { Submitter } from '../pipeline/submitter.js';
import { depthWithActivity, LOCAL_POLICY, loadPolicy, LocalAutoscaler, queueDepth, type ScalingPolicy, type ServiceStatus } from '../scaling/index.js';
import { startWebServer, type WebServer } from './server.js';

export interface Service {
  readonly config: Config;
  readonly clients: AwsClients;
  readonly resources: Resources;
  readonly store: Store;
  readonly submitter: Submitter;
  readonly pool: WorkerPool;
  readonly web: WebServer;
  /** The embedded endpoint's process id, now (undefined with an external endpoint). */
  readonly endpointPid: number | undefined;
  status(): Promise<ServiceStatus>;
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
  const clients = createAwsClients(config);
  // What has been started, so a failed start stops it again and a stop knows the order.
  let web: WebServer | undefined;
  let submitter: Submitter | undefined;
  let pool: WorkerPool | undefined;
  let autoscaler: LocalAutoscaler | undefined;
  let deadLetters: { stop(): void } | undefined;
  const stopAll = async () => {
    autoscaler?.stop();
    deadLetters?.stop();
    if (web) await web.stop();
    else await submitter?.stop();
    await pool?.stop();
    clients.destroy();
    await endpoint?.stop(10_000);
  };
  try {
    const resources = await ensureResources(clients, config);
    const store = new Store(clients.s3, { input: config.names.inputBucket, output: config.names.outputBucket });
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
    const status = async (): Promise<ServiceStatus> => ({
      ...(scaler ? scaler.status() : { queue: await depth(), workers: { desired: workers.desired, running: workers.running }, decisions: [] }),
      runtime: { node: process.version, workers: workers.nodeVersions },
    });
    const door = await Submitter.start(config, clients, resources, store, log.child('web'));
    submitter = door;
    const server = await startWebServer(config, door, status, log.child('web'));
    web = server;
    deadLetters = startDeadLetterWatcher({
      sqs: clients.sqs,
      store,
      queueUrl: resources.deadLetterQueueUrl,
      maxReceives: config.names.maxReceives,
      waitTimeSeconds: config.worker.receiveWaitSeconds,
      log: log.child('dead-letters'),
    });
    // The embedded queues outlive a restart; only inputs imported from an earlier version's data
    // directory (whose queues lived in memory and are gone) may have lost their requests.
    if (migrated > 0) await requeueUnfinished(store, clients, resources, log);
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
      store,
      submitter: door,
      pool: workers,
      web: server,
      get endpointPid() {
        return endpoint?.pid;
      },
      status,
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

async function requeueUnfinished(store: Store, clients: AwsClients, resources: Resources, log: Logger): Promise<void> {
  const inventory = await store.inventory();
  const unfinished = inventory.inputs.filter((r) => !inventory.finished.has(r.requestId) && !inventory.deadLetters.has(r.requestId));
  if (unfinished.length === 0) return;
  const batcher = new EnqueueBatcher(Producer.create({ queueUrl: resources.requestQueueUrl, sqs: clients.sqs }));
  await Promise.all(unfinished.map((request) => batcher.send(request.requestId, serializeMessage({ ...request, enqueuedAt: Date.now() }))));
  log.warn('imported requests without a result queued again (the earlier version\'s queue did not outlive its restarts)', { count: unfinished.length });
}
