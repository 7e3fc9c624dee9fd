/**
 * A `Job` is one image travelling through the worker-side stages. Failures are data: a stage that
 * fails marks the job (`failure`) and passes it on; later stages skip failed jobs, and
 * `settlementOf(job.failure)` (errors.ts) decides at the end what happens to its message, its record
 * and its client.
 */

import type { Message } from '@aws-sdk/client-sqs';
import { mergeMap, type OperatorFunction } from 'rxjs';
import type { Prediction, RgbImage } from '../../models/types.js';
import { asPipelineError, type ErrorCode, type PipelineError, type Stage } from '../contract/errors.js';
import {
  type ClassificationResult,
  type ImageRequest,
  type Protocol,
  roundMs,
  type Timings,
} from '../contract/messages.js';

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
      const timings = timer ? { ...job.timings, [timer]: roundMs(performance.now() - started) } : job.timings;
      return { ...job, ...patch, timings };
    } catch (err) {
      return {
        ...job,
        failure: asPipelineError(err, name, { requestId: job.request.requestId, key: job.request.key }, fallback),
      };
    }
  }, concurrency);
}
