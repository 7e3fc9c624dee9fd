/**
 * Worker side: write each outcome the rule says to record (`settlementOf`) — the full result (and
 * the classic `<name>` output for uploads of the classic protocol), or the failure that ended the
 * job for good, so a client holding a job id learns it too. Writing the same result twice gives
 * the same objects: a duplicate delivery is harmless.
 */
import { hostname } from 'node:os';
import { mergeMap, type OperatorFunction } from 'rxjs';
import { retry } from '../../../lib/retry.js';
import type { Classifier } from '../../../models/types.js';
import type { BatchStore } from '../../batch-store.js';
import { asPipelineError, settlementOf } from '../../contract/errors.js';
import type { ClassificationResult } from '../../contract/messages.js';
import { roundMs } from '../../contract/messages.js';
import { s3Url } from '../../contract/sources.js';
import type { Store } from '../../store.js';
import type { Job } from '../job.js';

const WORKER_ID = `${hostname()}:${process.pid}`;

export function toResult(job: Job, classifier: Pick<Classifier, 'manifest' | 'backend'>): ClassificationResult {
  const prediction = job.prediction!;
  return {
    id: job.request.requestId,
    file: job.request.file,
    label: prediction.label,
    score: prediction.score,
    top5: prediction.top5,
    model: classifier.manifest.id,
    backend: classifier.backend,
    batch: job.batch ?? 1,
    worker: WORKER_ID,
    timings: job.timings,
    completedAt: new Date().toISOString(),
  };
}

export function persist(
  store: Store,
  batches: BatchStore,
  classifier: Pick<Classifier, 'manifest' | 'backend'>,
  concurrency: number,
  retryBudgetMs: number,
): OperatorFunction<Job, Job> {
  return mergeMap(async (job: Job): Promise<Job> => {
    if (!settlementOf(job.failure).record) return job;
    const started = performance.now();
    const attempt = <T>(write: () => Promise<T>) => retry(write, { budgetMs: retryBudgetMs });
    try {
      const batch = job.request.batch;
      if (batch) {
        // An object of a batch: its line of the batch's results (the batch's coordinator counts it).
        const source = s3Url(job.request);
        const line = job.failure
          ? {
              seq: batch.seq,
              source,
              id: job.request.requestId,
              file: job.request.file,
              error: job.failure.toAnswerError(),
              completedAt: new Date().toISOString(),
            }
          : { seq: batch.seq, source, ...toResult(job, classifier) };
        await attempt(() => batches.putItem(batch.id, line));
        if (job.failure || !('label' in line)) return job;
        const timings = { ...job.timings, persist: roundMs(performance.now() - started) };
        return { ...job, result: { ...line, timings }, timings };
      }
      if (job.failure) {
        await attempt(() =>
          store.putFailure({
            id: job.request.requestId,
            file: job.request.file,
            error: job.failure!.toAnswerError(),
            completedAt: new Date().toISOString(),
          }),
        );
        return job;
      }
      const result = toResult(job, classifier);
      await attempt(() => store.putResult(result, job.protocol ?? 'classic'));
      // The stored record cannot know how long storing it took; the answer can.
      const timings = { ...job.timings, persist: roundMs(performance.now() - started) };
      return { ...job, result: { ...result, timings }, timings };
    } catch (err) {
      return {
        ...job,
        failure: asPipelineError(
          err,
          'persist',
          { requestId: job.request.requestId, key: job.request.key },
          'STORAGE_UNAVAILABLE',
        ),
      };
    }
  }, concurrency);
}
