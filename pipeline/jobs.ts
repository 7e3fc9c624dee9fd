/**
 * Where a request stands, read from the buckets alone (so it survives a web-tier restart):
 * done or failed (`results/<id>.json`), dead-lettered (`dead-letters/<id>.json`), pending (its input
 * is stored but has no result yet), or unknown.
 */
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, NoSuchKey, type S3Client } from '@aws-sdk/client-s3';
import type { DeadLetterRecord } from './deadletters.js';
import { deadLetterAnswer } from './deadletters.js';
import { deadLetterKey, decodeNameFromMetadata, resultKey } from './keys.js';
import type { AnswerError, ClassificationResult } from './messages.js';
import type { FailureRecord } from './stages/persist.js';

export type JobStatus =
  | { readonly id: string; readonly status: 'done'; readonly result: ClassificationResult }
  | { readonly id: string; readonly status: 'failed'; readonly file: string; readonly error: AnswerError }
  | { readonly id: string; readonly status: 'pending'; readonly file: string };

async function readJson<T>(s3: S3Client, bucket: string, key: string): Promise<T | undefined> {
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return JSON.parse(await object.Body!.transformToString()) as T;
  } catch (err) {
    if (err instanceof NoSuchKey || (err as Error).name === 'NoSuchKey') return undefined;
    throw err;
  }
}

export async function jobStatus(s3: S3Client, buckets: { input: string; output: string }, id: string, maxReceives: number): Promise<JobStatus | undefined> {
  const record = await readJson<ClassificationResult | FailureRecord>(s3, buckets.output, resultKey(id));
  if (record && 'error' in record) return { id, status: 'failed', file: record.file, error: record.error };
  if (record) return { id, status: 'done', result: record };
  const dead = await readJson<DeadLetterRecord>(s3, buckets.output, deadLetterKey(id));
  if (dead) {
    const answer = deadLetterAnswer(dead.request, maxReceives);
    return { id, status: 'failed', file: dead.request.file, error: (answer as { error: AnswerError }).error };
  }
  const inputs = await s3.send(new ListObjectsV2Command({ Bucket: buckets.input, Prefix: `${id}/`, MaxKeys: 1 }));
  const key = inputs.Contents?.[0]?.Key;
  if (!key) return undefined;
  // The key holds a sanitized name; the client's own is in the metadata.
  const head = await s3.send(new HeadObjectCommand({ Bucket: buckets.input, Key: key }));
  return { id, status: 'pending', file: decodeNameFromMetadata(head.Metadata?.['file-name']) ?? key.slice(id.length + 1) };
}
