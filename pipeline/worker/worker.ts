/**
 * The app tier: one worker = one model session fed by the request queue.
 *
 *   consume → skipCancelled → fetch → decode → classify (batched) → persist → respond → done
 *
 * The same stages without `consume`/`respond` serve replay (see `classifyStored`).
 */

import { type Observable, type OperatorFunction, pipe } from 'rxjs';
import sharp from 'sharp';
import type { AwsClients } from '../../lib/aws/clients.js';
import type { Config } from '../../lib/config.js';
import type { Logger } from '../../lib/log.js';
import { loadClassifier } from '../../models/index.js';
import type { Classifier } from '../../models/types.js';
import { BatchStore } from '../batch-store.js';
import type { WorkerMetrics } from '../metrics.js';
import { Store } from '../store.js';
import type { Job } from './job.js';
import type { Lifecycle } from './lifecycle.js';
import { classify } from './stages/classify.js';
import { type Consumed, consume } from './stages/consume.js';
import { decode } from './stages/decode.js';
import { fetchInput } from './stages/fetch.js';
import { skipCancelled } from './stages/gate.js';
import { persist } from './stages/persist.js';
import { respond } from './stages/respond.js';

/** The model the configuration names, from wherever it lives (a local copy, its public URL, S3). */
export function loadConfiguredClassifier(config: Config, clients: AwsClients): Promise<Classifier> {
  return loadClassifier(config.model.source, {
    modelsDir: config.model.modelsDir,
    cacheDir: config.model.cacheDir,
    s3: clients.s3,
    threads: config.model.threads,
    device: config.model.device,
  });
}

export interface WorkerDeps {
  readonly config: Config;
  readonly clients: AwsClients;
  readonly classifier: Classifier;
  readonly log: Logger;
  /** Counted when given (the worker process's registry). */
  readonly metrics?: WorkerMetrics;
}

/** skipCancelled → fetch → decode → classify → persist: what every image goes through, whoever asked for it. */
export function classifyStored(deps: WorkerDeps): OperatorFunction<Job, Job> {
  const { config, clients, classifier } = deps;
  const store = Store.of(clients.s3, config);
  const batches = new BatchStore(store);
  // Enough S3 and decode work in flight to keep the model fed while the next batch is prepared.
  const io = Math.max(4, config.worker.maxBatch * 2);
  const budget = config.limits.outageRetryMs;
  return pipe(
    skipCancelled(batches, io),
    fetchInput(store, { concurrency: io, retryBudgetMs: budget, maxBytes: config.limits.maxUploadBytes }),
    decode(classifier.manifest.input, Math.max(2, config.worker.maxBatch)),
    classify(classifier, {
      maxBatch: config.worker.maxBatch,
      maxWaitMs: config.worker.maxBatchWaitMs,
      onBatch: (size) => deps.metrics?.batchSize.observe(size),
    }),
    persist(store, batches, classifier, io, budget),
  );
}

/** The whole worker pipeline over the request queue: jobs out, and `done` to hand each back. */
export function workerPipeline(deps: WorkerDeps, queueUrl: string, signal: AbortSignal): Consumed {
  const { config, clients, log } = deps;
  const source = consume(clients.sqs, {
    queueUrl,
    batchSize: config.worker.receiveBatch,
    visibilityTimeoutSeconds: config.worker.visibilityTimeoutSeconds,
    waitTimeSeconds: config.worker.receiveWaitSeconds,
    batchDeadlineMs: Math.max(120_000, 4 * config.limits.outageRetryMs),
    pollers: config.worker.pollers,
    signal,
    log,
  });
  const jobs: Observable<Job> = source.jobs.pipe(
    classifyStored(deps),
    respond(clients.sqs, 16, config.limits.outageRetryMs),
  );
  return { jobs, done: source.done };
}

/** Runs the worker until `signal` aborts; resolves when the last in-flight message is finished. */
export function runWorker(
  deps: WorkerDeps,
  queueUrl: string,
  signal: AbortSignal,
): Promise<{ processed: number; failed: number }> {
  // One libvips thread per worker process: the pool runs one process per core.
  sharp.concurrency(1);
  sharp.cache(false);
  const counts = { processed: 0, failed: 0 };
  // Tells a supervising pool that this worker is busy (at most every 100 ms): a message that lives
  // in the queue for a few tens of ms is easy to miss by sampling the queue, a finished image is not.
  let reportedAt = 0;
  const reportActivity = () => {
    if (!process.send || Date.now() - reportedAt < 100) return;
    reportedAt = Date.now();
    process.send({ type: 'activity' });
  };
  const { jobs, done } = workerPipeline(deps, queueUrl, signal);
  return new Promise((resolve, reject) => {
    jobs.subscribe({
      next(job) {
        reportActivity();
        const model = deps.classifier.manifest.id;
        deps.metrics?.images.inc({
          outcome: job.failure ? (job.failure.retryable ? 'retried' : 'failed') : 'classified',
          model,
        });
        if (job.failure) {
          counts.failed++;
          // A cancelled batch's objects are dropped as asked: worth a line, not an alarm.
          const level = job.failure.code === 'CANCELLED' ? 'info' : job.failure.retryable ? 'warn' : 'error';
          deps.log[level](job.failure.code === 'CANCELLED' ? 'image dropped' : 'image failed', {
            requestId: job.request.requestId,
            key: job.request.key,
            error: job.failure,
            willRetry: job.failure.retryable,
          });
        } else {
          counts.processed++;
          deps.log.debug('image classified', {
            requestId: job.request.requestId,
            label: job.result?.label,
            timings: job.timings,
          });
        }
        done(job);
      },
      error: reject,
      complete: () => resolve(counts),
    });
  });
}

/**
 * A worker's whole life on its queue: waits until it may take messages (on EC2: warmed and in
 * service), consumes until `stop` aborts or the group terminates the instance, drains, then tells
 * the group (the termination hook) that it is done.
 */
export async function serveQueue(
  deps: WorkerDeps,
  queueUrl: string,
  lifecycle: Lifecycle,
  stop: AbortController,
): Promise<{ processed: number; failed: number }> {
  try {
    await lifecycle.ready(stop.signal);
    if (stop.signal.aborted) return { processed: 0, failed: 0 };
    lifecycle.watch(() => stop.abort());
    const counts = await runWorker(deps, queueUrl, stop.signal);
    await lifecycle.drained();
    return counts;
  } finally {
    lifecycle.close();
  }
}
