/**
 * Worker side: classify. Decoded images are gathered into batches (up to `maxBatch`, or whatever
 * arrived `maxWaitMs` after the first) and run through the model one batch at a time.
 */
import { concatMap, from, mergeMap, type OperatorFunction, pipe, type SchedulerLike } from 'rxjs';
import type { Classifier } from '../../../models/types.js';
import { PipelineError } from '../../contract/errors.js';
import { roundMs } from '../../contract/messages.js';
import type { Job } from '../job.js';
import { batchUntil } from './batch-until.js';

export interface BatchOptions {
  readonly maxBatch: number;
  readonly maxWaitMs: number;
  readonly scheduler?: SchedulerLike;
  /** Called with the size of each batch the model runs (metrics). */
  readonly onBatch?: (size: number) => void;
}

export function classify(classifier: Classifier, options: BatchOptions): OperatorFunction<Job, Job> {
  return pipe(
    batchUntil<Job>(options.maxBatch, options.maxWaitMs, options.scheduler),
    concatMap(async (batch) => {
      const ready = batch.filter((job) => !job.failure && job.image);
      if (ready.length === 0) return batch;
      const started = performance.now();
      options.onBatch?.(ready.length);
      try {
        const predictions = await classifier.classify(ready.map((job) => job.image!));
        const infer = roundMs(performance.now() - started);
        const byJob = new Map(ready.map((job, i) => [job, predictions[i]!]));
        return batch.map((job) => {
          const prediction = byJob.get(job);
          return prediction
            ? { ...job, prediction, image: undefined, batch: ready.length, timings: { ...job.timings, infer } }
            : job;
        });
      } catch (err) {
        // Retryable: the message comes back (alone or in another batch), and a request that keeps
        // failing ends in the dead-letter queue instead of failing its batch-mates for good.
        const failure = (job: Job) =>
          new PipelineError(
            'MODEL_FAILED',
            `the model failed on a batch of ${ready.length}: ${(err as Error).message}`,
            { stage: 'classify', retryable: true, requestId: job.request.requestId, model: classifier.manifest.id },
            { cause: err },
          );
        return batch.map((job) => (ready.includes(job) ? { ...job, failure: failure(job) } : job));
      }
    }),
    mergeMap((batch) => from(batch)),
  );
}
