/**
 * Worker side, stage 6: write the result to the output bucket — `<name>` → `<name>,<label>` (the
 * classic protocol) and `results/<requestId>.json` (the full result). Writing the same result twice
 * gives the same objects, so a duplicate delivery is harmless.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { OperatorFunction } from 'rxjs';
import type { Classifier } from '../../models/types.js';
import { stage, type Job } from '../job.js';
import { resultKey, stem } from '../keys.js';
import type { ClassificationResult } from '../messages.js';

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
    timings: job.timings,
    completedAt: new Date().toISOString(),
  };
}

export function persist(s3: S3Client, bucket: string, classifier: Pick<Classifier, 'manifest' | 'backend'>, concurrency: number): OperatorFunction<Job, Job> {
  return stage('persist', 'persist', 'STORAGE_UNAVAILABLE', concurrency, async (job) => {
    const result = toResult(job, classifier);
    const name = stem(job.request.file);
    await Promise.all([
      s3.send(new PutObjectCommand({ Bucket: bucket, Key: name, Body: `${name},${result.label}`, ContentType: 'text/plain; charset=utf-8' })),
      s3.send(new PutObjectCommand({ Bucket: bucket, Key: resultKey(job.request.requestId), Body: JSON.stringify(result), ContentType: 'application/json' })),
    ]);
    return { result };
  });
}
