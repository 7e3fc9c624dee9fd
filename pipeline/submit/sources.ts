/**
 * What the web tier checks of an object named by reference before anything is queued, so a single
 * request gets its error at once (a batch's objects are checked by the workers, and a bad one is a
 * failed line of its results): its bucket is one SOURCE_BUCKETS allows (checked before the bucket
 * is even asked), it exists, it is not over MAX_UPLOAD_BYTES (from its size), and its first bytes
 * are an image of a type we decode — the same check an upload gets.
 */
import { isAccessDenied } from '../../lib/aws/errors.js';
import type { Config } from '../../lib/config.js';
import { ServiceError } from '../../lib/errors.js';
import { type S3Location, s3Url } from '../contract/sources.js';
import { checkImage, ImageError } from '../images.js';
import type { Store } from '../store.js';

export class SourceAccessError extends ServiceError<
  'SOURCE_NOT_ALLOWED' | 'SOURCE_NOT_FOUND' | 'TOO_LARGE' | 'EMPTY_FILE'
> {
  override readonly name = 'SourceAccessError';
}

/** Enough of an object's start to tell its type and, for every format we decode, its dimensions. */
const SNIFF_BYTES = 64 * 1024;

export function checkAllowed(config: Config, bucket: string): void {
  const allowed = config.sources.buckets;
  if (allowed.includes(bucket)) return;
  throw new SourceAccessError(
    'SOURCE_NOT_ALLOWED',
    allowed.length === 0
      ? `classifying objects where they are is off: SOURCE_BUCKETS names the buckets it may read (s3://${bucket} is not one)`
      : `s3://${bucket} is not one of the buckets this service may read (SOURCE_BUCKETS: ${allowed.join(', ')})`,
    { bucket },
  );
}

/** The bucket of a batch: allowed, and there. */
export async function checkSourceBucket(store: Store, config: Config, bucket: string): Promise<void> {
  checkAllowed(config, bucket);
  let exists: boolean;
  try {
    exists = await store.bucketExists(bucket);
  } catch (err) {
    if (isAccessDenied(err))
      throw new SourceAccessError('SOURCE_NOT_ALLOWED', `this service's role may not read s3://${bucket}`, { bucket });
    throw err;
  }
  if (!exists) throw new SourceAccessError('SOURCE_NOT_FOUND', `there is no bucket s3://${bucket}`, { bucket });
}

/** One object: allowed, there, not too large, an image (throws ImageError for what is not). */
export async function checkSourceObject(store: Store, config: Config, location: S3Location): Promise<void> {
  checkAllowed(config, location.bucket);
  const url = s3Url(location);
  let head: Awaited<ReturnType<Store['headSource']>>;
  try {
    head = await store.headSource(location.bucket, location.key);
  } catch (err) {
    if (isAccessDenied(err))
      throw new SourceAccessError('SOURCE_NOT_ALLOWED', `this service's role may not read ${url}`, { source: url });
    throw err;
  }
  if (!head) throw new SourceAccessError('SOURCE_NOT_FOUND', `${url} does not exist`, { source: url });
  const max = config.limits.maxUploadBytes;
  if (head.size > max)
    throw new SourceAccessError('TOO_LARGE', `${url} is ${head.size} bytes; the limit is ${max} (MAX_UPLOAD_BYTES)`, {
      source: url,
    });
  if (head.size === 0) throw new SourceAccessError('EMPTY_FILE', `${url} is empty`, { source: url });
  const start = await store.readSourceStart(location.bucket, location.key, Math.min(SNIFF_BYTES, head.size));
  try {
    await checkImage(start, url);
  } catch (err) {
    // A header past the first bytes read (a large EXIF block) is the worker's to read whole.
    if (err instanceof ImageError && err.code === 'UNDECODABLE_IMAGE' && head.size > start.length) return;
    throw err;
  }
}
