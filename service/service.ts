/**
 * The whole service on one machine, as `npm start` runs it: the embedded endpoint (unless an
 * external one is configured), the buckets and queues, the worker pool with its autoscaler, the
 * dead-letter watcher, and the web tier in front. The web tier's process is where these meet, so
 * they are assembled here; tests start exactly this. Stopping goes the other way round: no new
 * work, the web tier drains, workers finish what they hold, the endpoint goes last.
 */
import { Producer } from 'sqs-producer';
import { convertedOnnxModel, fetchModel, resolveModel } from '../models/index.js';
import { createAwsClients, createControlClients, type AwsClients, type ControlClients } from '../pipeline/aws/clients.js';
import { InstanceMetadata } from '../pipeline/aws/imds.js';
import { ensureResources, findResources, type Resources } from '../pipeline/aws/resources.js';
import { childEnv, loadConfig, type Config } from '../pipeline/config.js';
import { startDeadLetterWatcher } from '../pipeline/deadletters.js';
import { EndpointProcess } from '../pipeline/local/endpoint-process.js';
import { WorkerPool } from '../pipeline/local/pool.js';
import type { Logger } from '../pipeline/log.js';
import { serializeMessage } from '../pipeline/messages.js';
import { WebMetrics } from '../pipeline/metrics.js';
import { EnqueueBatcher } from '../pipeline/stages/enqueue.js';
import { Store } from '../pipeline/store.js';
import { Submitter } from '../pipeline/submitter.js';
import { AsgActuator } from '../scaling/aws/asg-actuator.js';
import { smallestInstanceLeads } from '../scaling/aws/leadership.js';
import { CONTROLLER_POLICY, depthWithActivity, LOCAL_POLICY, loadPolicy, queueDepth, ScalingController, type QueueDepth, type ScalingPolicy, type ServiceStatus } from '../scaling/index.js';
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
  /** Prometheus text: this process's metrics merged with its worker processes'. */
  metrics(): Promise<{ contentType: string; body: string }>;
  stop(): Promise<void>;
}

export async function startService(initial: Config, log: Logger): Promise<Service> {
  let metricsOf: () => Promise<{ contentType: string; body: string }> = async () => ({ contentType: 'text/plain', body: '' });
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
  let autoscaler: ScalingController | undefined;
  let deadLetters: { stop(): void } | undefined;
  let control: ControlClients | undefined;
  let depthPoller: NodeJS.Timeout | undefined;
  const stopAll = async () => {
    clearInterval(depthPoller);
    autoscaler?.stop();
    control?.destroy();
    deadLetters?.stop();
    if (web) await web.stop();
    else await submitter?.stop();
    await pool?.stop();
    clients.destroy();
    await endpoint?.stop(10_000);
  };
  try {
    // Deployed (AUTO_SCALING_GROUP set) the stack made the buckets and queues and this tier's role may
    // only use them; everywhere else they are made here, idempotently.
    const resources = config.ec2.autoScalingGroup === undefined ? await ensureResources(clients, config) : await findResources(clients, config);
    const store = Store.of(clients.s3, config);
    log.info('resources ready', { inputBucket: config.names.inputBucket, outputBucket: config.names.outputBucket, requestQueue: resources.requestQueueUrl, endpoint: config.aws.sqsEndpoint ?? 'AWS' });
    // Only where local workers may run: a web tier on AWS (WORKERS=0, SCALER=aws) never loads the model.
    if (config.scaler.mode === 'local' && config.worker.count !== 0) await prefetchModel(config, clients);
    const workers = new WorkerPool({
      env: childEnv(config),
      log: log.child('pool'),
      stopGraceMs: (config.worker.visibilityTimeoutSeconds + config.worker.receiveWaitSeconds) * 1000,
    });
    pool = workers;
    const sqsDepth = () => queueDepth(clients.sqs, resources.requestQueueUrl);
    // Local workers report each image they finish; on AWS the web tier knows what it still waits for.
    // Either way a queue that reads empty while work is under way is not taken for idle.
    const depth =
      config.scaler.mode === 'aws'
        ? async (): Promise<QueueDepth> => {
            const d = await sqsDepth();
            return { ...d, inFlight: Math.max(d.inFlight, submitter?.waiting ?? 0) };
          }
        : depthWithActivity(sqsDepth, () => workers.lastActivityAt);
    control = config.scaler.mode === 'aws' ? createControlClients(config.aws.region) : undefined;
    autoscaler = await scalingController(config, workers, depth, control, log.child('autoscaler'));
    const scaler = autoscaler;
    const status = async (): Promise<ServiceStatus> => ({
      ...(scaler ? scaler.status() : { queue: await depth(), workers: { desired: workers.desired, running: workers.running }, decisions: [] }),
      runtime: { node: process.version, workers: workers.nodeVersions },
    });
    // The queue depth as last read: the controller samples it; with no controller, a reading a second.
    let lastDepth: QueueDepth | undefined;
    if (!scaler) {
      depthPoller = setInterval(() => void depth().then((d) => (lastDepth = d), () => undefined), 1_000);
      depthPoller.unref();
    }
    const counts = () => (scaler ? scaler.status().workers : { desired: workers.desired, running: workers.running });
    const metrics = new WebMetrics({
      queue: async () => (scaler ? scaler.status().queue : (lastDepth ?? (await depth()))),
      workers: counts,
      decisions: () => scaler?.status().decisions ?? [],
    });
    const door = await Submitter.start(config, clients, resources, store, log.child('web'), {
      metrics,
      load: { depth: () => (scaler ? scaler.status().queue : lastDepth), workers: counts },
    });
    submitter = door;
    metricsOf = async () => metrics.render(await workers.collectMetrics());
    const server = await startWebServer(config, { submitter: door, store, status, metrics: { render: metricsOf, httpError: (code) => metrics.errors.inc({ code }) } }, log.child('web'));
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
    const localScaling = scaler !== undefined && config.scaler.mode === 'local';
    await workers.resize(localScaling ? config.worker.min : (config.worker.count ?? 0));
    scaler?.start();
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
      metrics: async () => metricsOf(),
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

/**
 * The scaling controller of this process, if it runs one: `local` (WORKERS unset) moves this
 * machine's worker processes between WORKERS_MIN and WORKERS_MAX with the local policy (1 s
 * periods); `aws` moves the app tier's Auto Scaling group (AUTO_SCALING_GROUP) within its own
 * bounds every SCALER_PERIOD_SECONDS, one copy acting per web tier (WEB_AUTO_SCALING_GROUP); `off`,
 * or a fixed pool, none.
 */
async function scalingController(config: Config, workers: WorkerPool, depth: () => Promise<QueueDepth>, control: ControlClients | undefined, log: Logger): Promise<ScalingController | undefined> {
  const policyFrom = (base: ScalingPolicy) => (config.worker.policyFile ? loadPolicy(config.worker.policyFile, base) : base);
  if (config.scaler.mode === 'local') {
    if (config.worker.count !== undefined) return undefined;
    return new ScalingController({ policy: await policyFrom({ ...LOCAL_POLICY, minCapacity: config.worker.min, maxCapacity: config.worker.max }), actuator: workers, depth, log });
  }
  if (config.scaler.mode === 'off' || control === undefined) return undefined;
  const actuator = new AsgActuator(control.autoscaling, config.ec2.autoScalingGroup!);
  await actuator.refresh();
  // The simulator's controller preset (scaling/README.md): the same decide(), 2 s periods, back to the
  // minimum 3 empty periods after the work — within the group's own bounds.
  const policy = await policyFrom({ ...CONTROLLER_POLICY, periodSeconds: config.scaler.periodSeconds, minCapacity: actuator.bounds.min, maxCapacity: actuator.bounds.max });
  let leadership: (() => Promise<boolean>) | undefined;
  if (config.ec2.webAutoScalingGroup !== undefined) {
    const instanceId = await new InstanceMetadata(config.ec2.imdsEndpoint).instanceId();
    leadership = smallestInstanceLeads(control.autoscaling, config.ec2.webAutoScalingGroup, instanceId);
  }
  // Several times a second on AWS costs money for nothing: a few samples per period are enough there.
  return new ScalingController({ policy, actuator, depth, log, sampleEveryMs: Math.min(500, policy.periodSeconds * 1000), ...(leadership ? { leadership } : {}) });
}

/** Downloads (and, for a converted model, converts) the model once here, not in every worker at once. */
async function prefetchModel(config: Config, clients: AwsClients): Promise<void> {
  const manifest = await resolveModel(config.model.source, { modelsDir: config.model.modelsDir });
  const local = await fetchModel(manifest, { cacheDir: config.model.cacheDir, s3: clients.s3 });
  if (manifest.format === 'tfjs-layers' && manifest.runtime === 'onnxruntime') await convertedOnnxModel(manifest, local.path, { cacheDir: config.model.cacheDir });
}

async function requeueUnfinished(store: Store, clients: AwsClients, resources: Resources, log: Logger): Promise<void> {
  const inventory = await store.inventory();
  const unfinished = inventory.inputs.filter((r) => !inventory.finished.has(r.requestId) && !inventory.deadLetters.has(r.requestId));
  if (unfinished.length === 0) return;
  const batcher = new EnqueueBatcher(Producer.create({ queueUrl: resources.requestQueueUrl, sqs: clients.sqs }));
  await Promise.all(unfinished.map((request) => batcher.send(request.requestId, serializeMessage({ ...request, enqueuedAt: Date.now() }))));
  log.warn('imported requests without a result queued again (the earlier version\'s queue did not outlive its restarts)', { count: unfinished.length });
}
