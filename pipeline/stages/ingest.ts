/** Web side, stage 1: store the upload in the input bucket under a key we build. */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { mergeMap, type OperatorFunction } from 'rxjs';
import { PipelineError, isTransientAwsError } from '../errors.js';
import { round } from '../job.js';
import { retry } from '../retry.js';
import { encodeNameForMetadata, inputKey, sanitizeFileName } from '../keys.js';
import type { Protocol, Timings } from '../messages.js';

export interface Upload {
  readonly requestId: string;
  /** The client's file name, exactly as sent; the storage key uses a sanitized copy. */
  readonly file: string;
  readonly bytes: Buffer;
  /** Decided from the bytes, not from the client's claim. */
  readonly contentType: string;
  readonly protocol: Protocol;
  readonly timings: Timings;
}

export interface Ingested extends Upload {
  readonly bucket: string;
  readonly key: string;
}

export function ingest(s3: S3Client, bucket: string, retryBudgetMs: number): OperatorFunction<Upload, Ingested> {
  return mergeMap(async (upload) => {
    const key = inputKey(upload.requestId, sanitizeFileName(upload.file));
    const started = performance.now();
    try {
      const put = new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: upload.bytes,
        ContentType: upload.contentType,
        Metadata: { 'request-id': upload.requestId, protocol: upload.protocol, 'file-name': encodeNameForMetadata(upload.file) },
      });
      await retry(() => s3.send(put), { budgetMs: retryBudgetMs });
    } catch (err) {
      throw new PipelineError('STORAGE_UNAVAILABLE', `could not store the upload: ${(err as Error).message}`, 'ingest',
        isTransientAwsError(err), { requestId: upload.requestId, bucket, key }, { cause: err });
    }
    return { ...upload, bucket, key, timings: { ...upload.timings, s3Put: round(performance.now() - started) } };
  });
}
