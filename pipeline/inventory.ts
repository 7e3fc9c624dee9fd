/**
 * What is stored: the inputs in the input bucket and which of them already have a result.
 * Used by the replay script to find work that was never finished (or to redo all of it).
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { DEAD_LETTERS_PREFIX, parseInputKey, requestIdOfResultKey, RESULTS_PREFIX } from './keys.js';
import type { ImageRequest } from './messages.js';

export async function* listKeys(s3: S3Client, bucket: string, prefix: string | undefined, pageSize = 1000): AsyncGenerator<string> {
  let ContinuationToken: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken, MaxKeys: pageSize }));
    for (const object of page.Contents ?? []) if (object.Key) yield object.Key;
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
}

export interface Inventory {
  /** Inputs (ours: `<requestId>/<file>`), as requests nobody waits for. */
  readonly inputs: readonly ImageRequest[];
  /** Request ids that have a `results/<id>.json`. */
  readonly finished: ReadonlySet<string>;
  /** Request ids recorded as dead letters (`dead-letters/<id>.json`). */
  readonly deadLetters: ReadonlySet<string>;
  /** Keys in the input bucket that are not ours, skipped. */
  readonly foreign: readonly string[];
}

export async function takeInventory(s3: S3Client, buckets: { input: string; output: string }, prefix?: string): Promise<Inventory> {
  const inputs: ImageRequest[] = [];
  const foreign: string[] = [];
  for await (const key of listKeys(s3, buckets.input, prefix)) {
    const parsed = parseInputKey(key);
    if (!parsed) {
      foreign.push(key);
      continue;
    }
    inputs.push({ v: 1, requestId: parsed.requestId, bucket: buckets.input, key, file: parsed.fileName, enqueuedAt: Date.now(), timings: {} });
  }
  const finished = new Set<string>();
  for await (const key of listKeys(s3, buckets.output, RESULTS_PREFIX)) {
    const id = requestIdOfResultKey(key);
    if (id) finished.add(id);
  }
  const deadLetters = new Set<string>();
  for await (const key of listKeys(s3, buckets.output, DEAD_LETTERS_PREFIX)) {
    const id = requestIdOfResultKey(key, DEAD_LETTERS_PREFIX);
    if (id) deadLetters.add(id);
  }
  return { inputs, finished, foreign, deadLetters };
}
