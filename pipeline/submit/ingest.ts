/**
 * Web side, the first step: store the upload in the input bucket (through the store, under a key we
 * build), retrying through an outage for `retryBudgetMs`. A plain async function: one value, no
 * stream.
 */
import { isTransientAwsError } from '../../lib/aws/errors.js';
import { retry } from '../../lib/retry.js';
import { PipelineError } from '../contract/errors.js';
import type { Protocol, Timings } from '../contract/messages.js';
import { roundMs } from '../contract/messages.js';
import type { Store } from '../store.js';

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

export async function ingest(store: Store, upload: Upload, retryBudgetMs: number): Promise<Ingested> {
  const started = performance.now();
  try {
    const { bucket, key } = await retry(() => store.putInput(upload), { budgetMs: retryBudgetMs });
    return { ...upload, bucket, key, timings: { ...upload.timings, s3Put: roundMs(performance.now() - started) } };
  } catch (err) {
    throw new PipelineError(
      'STORAGE_UNAVAILABLE',
      `could not store the upload: ${(err as Error).message}`,
      {
        stage: 'ingest',
        retryable: isTransientAwsError(err),
        requestId: upload.requestId,
        bucket: store.buckets.input,
      },
      { cause: err },
    );
  }
}
