/**
 * A `Job` is one image travelling through the worker-side stages. Failures are data: a stage that
 * fails marks the job (`failure`) and passes it on; later stages skip failed jobs, and the end of
 * the pipeline decides per job whether its message is deleted (done, or failed for good and the
 * client told) or left for SQS to deliver again (a transient failure).
 */
import { Observable, mergeMap, type OperatorFunction } from 'rxjs';
import type { Message } from '@aws-sdk/client-sqs';
import type { Prediction, RgbImage } from '../models/types.js';
import { PipelineError, isTransientAwsError, type ErrorCode, type Stage } from './errors.js';
import type { ClassificationResult, ImageRequest, Protocol, Timings } from './messages.js';

export interface Job {
  readonly request: ImageRequest;
  /** The SQS message this job came from (absent for replayed inputs). */
  readonly message?: Message;
  readonly timings: Timings;
  readonly bytes?: Buffer;
  /** Read with the input: decides whether the classic `<name>` output is written. */
  readonly protocol?: Protocol;
  readonly image?: RgbImage;
  readonly prediction?: Prediction;
  readonly batch?: number;
  readonly result?: ClassificationResult;
  readonly failure?: PipelineError;
}

export type TimedStage = keyof Timings;

/** Turns anything thrown inside a stage into a PipelineError with the job's context. */
export function asPipelineError(err: unknown, stage: Stage, job: Job, fallback: ErrorCode): PipelineError {
  if (err instanceof PipelineError) return err;
  const transient = isTransientAwsError(err);
  const code: ErrorCode = transient ? (stage === 'enqueue' || stage === 'respond' ? 'QUEUE_UNAVAILABLE' : 'STORAGE_UNAVAILABLE') : fallback;
  const message = err instanceof Error ? err.message : String(err);
  return new PipelineError(code, `${stage} failed: ${message}`, stage, transient, { requestId: job.request.requestId, key: job.request.key }, { cause: err });
}

/**
 * A stage that works on one job at a time (up to `concurrency` at once): skips failed jobs, times
 * itself into `timings[timer]`, and turns a throw into `failure`.
 */
export function stage(
  name: Stage,
  timer: TimedStage | undefined,
  fallback: ErrorCode,
  concurrency: number,
  work: (job: Job) => Promise<Partial<Job>>,
): OperatorFunction<Job, Job> {
  return mergeMap(async (job: Job): Promise<Job> => {
    if (job.failure) return job;
    const started = performance.now();
    try {
      const patch = await work(job);
      const timings = timer ? { ...job.timings, [timer]: round(performance.now() - started) } : job.timings;
      return { ...job, ...patch, timings };
    } catch (err) {
      return { ...job, failure: asPipelineError(err, name, job, fallback) };
    }
  }, concurrency);
}

export const round = (ms: number): number => Math.round(ms * 100) / 100;

/**
 * Collects items into batches of at most `maxSize`, emitting a batch when it is full or `maxWaitMs`
 * after its first item arrived (whichever comes first), and whatever is left when the source ends.
 * Unlike `bufferTime`, no timer runs while nothing is waiting.
 */
export function batchUntil<T>(maxSize: number, maxWaitMs: number): OperatorFunction<T, T[]> {
  return (source) =>
    new Observable<T[]>((subscriber) => {
      let batch: T[] = [];
      let timer: NodeJS.Timeout | undefined;
      const flush = () => {
        if (timer) clearTimeout(timer);
        timer = undefined;
        if (batch.length === 0) return;
        const full = batch;
        batch = [];
        subscriber.next(full);
      };
      const subscription = source.subscribe({
        next(item) {
          batch.push(item);
          if (batch.length >= maxSize) flush();
          else if (!timer) timer = setTimeout(flush, maxWaitMs);
        },
        error(err) {
          if (timer) clearTimeout(timer);
          subscriber.error(err);
        },
        complete() {
          flush();
          subscriber.complete();
        },
      });
      return () => {
        if (timer) clearTimeout(timer);
        subscription.unsubscribe();
      };
    });
}
