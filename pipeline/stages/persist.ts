/**
 * Worker side, stage 6: write the result to the output bucket — `results/<requestId>.json` (the full
 * result) and, for inputs of the classic protocol, `<name>` → `<name>,<label>`. A job that failed for good
 * (an undecodable image...) gets `results/<requestId>.json` with its error, so a client holding a
 * job id learns the outcome too. Writing the same result twice gives the same objects: a duplicate
 * delivery is harmless.
 */
import { hostname } from 'node:os';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { mergeMap, type OperatorFunction } from 'rxjs';
import type { Classifier } from '../../models/types.js';
import { asPipelineError, round, type Job } from '../job.js';
import { resultKey, stem } from '../keys.js';
import { retry } from '../retry.js';
import type { AnswerError, ClassificationResult } from '../messages.js';

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

/** What `results/<id>.json` holds for a request that failed for good. */
export interface FailureRecord {
  readonly id: string;
  readonly file: string;
  readonly error: AnswerError;
  readonly completedAt: string;
}

export function persist(
  s3: S3Client,
  bucket: string,
  classifier: Pick<Classifier, 'manifest' | 'backend'>,
  concurrency: number,
  retryBudgetMs: number,
): OperatorFunction<Job, Job> {
  const put = (Key: string, Body: string, ContentType: string) =>
    retry(() => s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body, ContentType })), { budgetMs: retryBudgetMs });
  return mergeMap(async (job: Job): Promise<Job> => {
    // Transient failures are not final: the message comes back and the job is tried again.
    if (job.failure?.retryable || job.failure?.code === 'BAD_MESSAGE') return job;
    const started = performance.now();
    try {
      if (job.failure) {
        const record: FailureRecord = { id: job.request.requestId, file: job.request.file, error: job.failure.toJSON(), completedAt: new Date().toISOString() };
        await put(resultKey(job.request.requestId), JSON.stringify(record), 'application/json');
        return job;
      }
      const result = toResult(job, classifier);
      const name = stem(job.request.file);
      await Promise.all([
        put(resultKey(job.request.requestId), JSON.stringify(result), 'application/json'),
        job.protocol === 'api' ? undefined : put(name, `${name},${result.label}`, 'text/plain; charset=utf-8'),
      ]);
      return { ...job, result, timings: { ...job.timings, persist: round(performance.now() - started) } };
    } catch (err) {
      return { ...job, failure: asPipelineError(err, 'persist', job, 'STORAGE_UNAVAILABLE') };
    }
  }, concurrency);
}
