/**
 * The composition root: the whole service on one machine, as `npm start` runs it (and, with
 * SCALER=aws, as a web-tier instance runs it on AWS). The service is its parts, started in this
 * order and stopped in the reverse one by one loop (composition.ts):
 *
 *   endpoint      the embedded SQS + S3 endpoint (unless an external one is configured)
 *   clients       S3 and SQS clients (lib/aws/clients.ts)
 *   fleet         the app tier: this machine's worker processes, or the Auto Scaling group (fleet.ts)
 *   submitter     the one door into the pipeline: this process's response queue, cache, admission
 *   web tier      the Koa app on its port
 *   dead letters  the watcher that records requests which failed every delivery
 *   scaling       the initial size and the controller
 *
 * Stopping therefore goes: no more scaling decisions, the web tier drains (answers arriving within
 * 5 s are still delivered), the response queue goes, workers finish what they hold, the endpoint
 * goes last. Tests start exactly this.
 */
import { Producer } from 'sqs-producer';
import { EndpointProcess } from '../endpoint/process.js';
import { type AwsClients, createAwsClients } from '../lib/aws/clients.js';
import { type Config, childEnv, loadConfig } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import { BatchStore } from '../pipeline/batch-store.js';
import { serializeMessage } from '../pipeline/contract/messages.js';
import { startDeadLetterWatcher } from '../pipeline/deadletters.js';
import { WebMetrics } from '../pipeline/metrics.js';
import { ensureResources, findResources, type Resources } from '../pipeline/resources.js';
import { Store } from '../pipeline/store.js';
import { Batches } from '../pipeline/submit/batches/batches.js';
import { ownerName } from '../pipeline/submit/batches/coordinator.js';
import { BatchRunner } from '../pipeline/submit/batches/runner.js';
import { EnqueueBatcher } from '../pipeline/submit/enqueue.js';
import { Notifier } from '../pipeline/submit/notify.js';
import { Submitter } from '../pipeline/submit/submitter.js';
import type { ServiceStatus } from '../scaling/index.js';
import { startWebServer, type WebServer } from '../web/server.js';
import { Composition, NOTHING_TO_STOP } from './composition.js';
import { createFleet, type Fleet } from './fleet.js';

export interface Service {
  readonly config: Config;
  readonly clients: AwsClients;
  readonly resources: Resources;
  readonly store: Store;
  readonly submitter: Submitter;
  readonly batches: Batches;
  readonly fleet: Fleet;
  readonly web: WebServer;
  /** The embedded endpoint's process id, now (undefined with an external endpoint). */
  readonly endpointPid: number | undefined;
  status(): Promise<ServiceStatus>;
  /** Prometheus text: this process's metrics merged with its worker processes'. */
  metrics(): Promise<{ contentType: string; body: string }>;
  stop(): Promise<void>;
}

export async function startService(initial: Config, log: Logger): Promise<Service> {
  const parts = new Composition(log);
  try {
    let config = initial;
    let endpoint: EndpointProcess | undefined;
    let migrated = 0;
    if (config.aws.mode === 'embedded') {
      const started = await parts.start('endpoint', async () => {
        const running = await EndpointProcess.start(childEnv(config), log.child('endpoint'));
        return { ...running, stop: () => running.endpoint.stop(10_000) };
      });
      endpoint = started.endpoint;
      migrated = started.ready.migrated;
      // The port may have been 0 (pick any): from here on everyone uses the real one.
      config = loadConfig(childEnv(config, { EMBEDDED_PORT: String(started.ready.port) }));
    }
    const clients = await parts.start('clients', () => {
      const created = createAwsClients(config);
      return { ...created, stop: () => created.destroy() };
    });
    // Deployed (AUTO_SCALING_GROUP set), the stack made the buckets and queues and this tier's role may
    // only use them; everywhere else they are made here, idempotently.
    const resources =
      config.ec2.autoScalingGroup === undefined
        ? await ensureResources(clients, config)
        : await findResources(clients, config);
    const store = Store.of(clients.s3, config);
    log.info('resources ready', {
      inputBucket: config.names.inputBucket,
      outputBucket: config.names.outputBucket,
      requestQueue: resources.requestQueueUrl,
      endpoint: config.aws.sqsEndpoint ?? 'AWS',
    });

    const fleet = await parts.start('fleet', () => createFleet({ config, clients, resources, log }));
    const notifier = new Notifier({ sns: clients.sns, webhooks: config.webhooks, log: log.child('notify') });
    const metrics = new WebMetrics({
      queue: async () => fleet.depth() ?? (await fleet.status()).queue,
      workers: () => fleet.workers(),
      decisions: () => fleet.decisions(),
    });
    const submitter = await parts.start('submitter', () =>
      Submitter.start({ config, clients, resources, store, log: log.child('web'), metrics, load: fleet, notifier }),
    );
    // Batches run in whichever web instance holds each one's lease; this one takes its share.
    const batchStore = new BatchStore(store);
    const runner = await parts.start('batches', () => {
      const enqueuer = new EnqueueBatcher(Producer.create({ queueUrl: resources.requestQueueUrl, sqs: clients.sqs }));
      const coordinators = {
        config,
        clients,
        resources,
        store,
        batches: batchStore,
        enqueuer,
        notifier,
        log: log.child('batches'),
        owner: ownerName(),
        leaseMs: config.batches.leaseSeconds * 1000,
      };
      const started = new BatchRunner(coordinators, log.child('batches'));
      started.start();
      return started;
    });
    const batches = new Batches({ config, batches: batchStore, notifier, runner });
    const status = async (): Promise<ServiceStatus> => ({
      ...(await fleet.status()),
      runtime: { node: process.version, workers: [...fleet.nodeVersions] },
    });
    const render = async () => metrics.render(await fleet.workerMetrics());
    const web = await parts.start('web tier', () =>
      startWebServer(
        config,
        { submitter, store, status, batches, metrics: { render, httpError: (code) => metrics.errors.inc({ code }) } },
        log.child('web'),
      ),
    );
    await parts.start('dead-letter watcher', () =>
      startDeadLetterWatcher({
        sqs: clients.sqs,
        store,
        queueUrl: resources.deadLetterQueueUrl,
        maxReceives: config.names.maxReceives,
        waitTimeSeconds: config.worker.receiveWaitSeconds,
        log: log.child('dead-letters'),
      }),
    );
    // The embedded queues outlive a restart; only inputs imported from an earlier version's data
    // directory (whose queues lived in memory and are gone) may have lost their requests.
    if (migrated > 0) {
      await parts.start('requeue', async () => {
        await requeueUnfinished(store, clients, resources, log);
        return NOTHING_TO_STOP;
      });
    }
    // Uploads are accepted from here on; they wait in the queue until a worker is ready.
    await parts.start('scaling', () => fleet.startScaling(submitter));

    return {
      config,
      clients,
      resources,
      store,
      submitter,
      batches,
      fleet,
      web,
      get endpointPid() {
        return endpoint?.pid;
      },
      status,
      metrics: render,
      stop: () => parts.stop(),
    };
  } catch (err) {
    await parts.stop();
    throw err;
  }
}

async function requeueUnfinished(store: Store, clients: AwsClients, resources: Resources, log: Logger): Promise<void> {
  const inventory = await store.inventory();
  const unfinished = inventory.inputs.filter(
    (r) => !inventory.finished.has(r.requestId) && !inventory.deadLetters.has(r.requestId),
  );
  if (unfinished.length === 0) return;
  const batcher = new EnqueueBatcher(Producer.create({ queueUrl: resources.requestQueueUrl, sqs: clients.sqs }));
  await Promise.all(
    unfinished.map((request) =>
      batcher.send(request.requestId, serializeMessage({ ...request, enqueuedAt: Date.now() })),
    ),
  );
  log.warn(
    "imported requests without a result queued again (the earlier version's queue did not outlive its restarts)",
    { count: unfinished.length },
  );
}
