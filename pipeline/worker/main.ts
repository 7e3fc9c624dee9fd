/**
 * A worker process's main module: one app-tier worker, as an EC2 instance of the Auto Scaling group
 * runs it (`npm run worker` imports this) and as the pool forks it under `npm start`. Loads the
 * model, finds the queue and buckets, consumes until SIGTERM/SIGINT, then finishes the messages in
 * flight and exits 0. As a child it reports `ready` (or `fatal`) over IPC.
 */

import { type ControlClients, createAwsClients, createControlClients } from '../../lib/aws/clients.js';
import { loadConfig } from '../../lib/config.js';
import { serializeError } from '../../lib/errors.js';
import { createLogger, setLogLevel } from '../../lib/log.js';
import { retry } from '../../lib/retry.js';
import { WorkerMetrics } from '../metrics.js';
import { findResources } from '../resources.js';
import { detectLifecycle } from './lifecycle.js';
import { loadConfiguredClassifier, serveQueue } from './worker.js';

const log = createLogger('worker');

async function main(): Promise<void> {
  const config = loadConfig();
  setLogLevel(config.logLevel);
  const clients = createAwsClients(config);
  const started = performance.now();
  const classifier = await loadConfiguredClassifier(config, clients);
  const loadMs = Math.round(performance.now() - started);
  // The endpoint may still be coming up (a standalone worker started first): keep asking for a while.
  const resources = await retry(() => findResources(clients, config), {
    budgetMs: 30_000,
    retryIf: () => true,
    log,
    what: 'finding the request queue and buckets',
  });

  const controller = new AbortController();
  const stop = (signal: string) => {
    if (controller.signal.aborted) return;
    log.info('stopping: finishing in-flight messages', { signal });
    controller.abort();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  // Ctrl-C reaches the whole process group; under `npm start` the parent decides when we stop.
  if (!process.connected) process.on('SIGINT', () => stop('SIGINT'));
  else process.on('SIGINT', () => undefined);
  // Under `npm start`, the parent going away means we should go too.
  process.on('disconnect', () => stop('parent disconnected'));

  // On EC2: the Auto Scaling group's lifecycle (warm pool, scale-in); elsewhere nothing to follow.
  let control: ControlClients | undefined;
  const lifecycle = await detectLifecycle({
    config,
    log,
    autoscaling: () => (control ??= createControlClients(config.aws.region)).autoscaling,
  });

  // Under `npm start` the web tier gathers every worker's metrics for its GET /metrics.
  const metrics = new WorkerMetrics();
  process.on('message', (message: { type?: string; id?: number }) => {
    if (message?.type !== 'metrics') return;
    void metrics.registry
      .getMetricsAsJSON()
      .then((json) => process.send?.({ type: 'metrics', id: message.id, metrics: json }));
  });

  log.info('worker ready', {
    model: classifier.manifest.id,
    backend: classifier.backend,
    loadMs,
    queue: resources.requestQueueUrl,
    node: process.version,
    ...lifecycle.describe,
  });
  process.send?.({ type: 'ready', model: classifier.manifest.id, backend: classifier.backend, node: process.version });
  const counts = await serveQueue(
    { config, clients, classifier, log, metrics },
    resources.requestQueueUrl,
    lifecycle,
    controller,
  );
  await classifier.dispose();
  clients.destroy();
  control?.destroy();
  log.info('worker stopped', counts);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log.error('worker failed', { error: err });
    process.send?.({ type: 'fatal', error: serializeError(err) });
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 100);
  },
);
