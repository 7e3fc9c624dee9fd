/**
 * Objects named by the client: `s3://bucket/key` for one image, `s3://bucket/prefix` for a batch (an
 * empty prefix is the whole bucket). Parsed here once, for the web tier and the coordinator alike.
 */
import { ServiceError } from '../../lib/errors.js';

export interface S3Location {
  readonly bucket: string;
  /** The key (one object) or the prefix (a batch). */
  readonly key: string;
}

export class SourceError extends ServiceError<'BAD_SOURCE'> {
  override readonly name = 'SourceError';
}

// Bucket names: 3-63 lowercase letters, digits, dots and hyphens (what S3 allows).
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** `s3://bucket/key` → its bucket and key; `prefix: true` allows an empty key or one ending in `/`. */
export function parseS3Url(text: unknown, options: { readonly prefix: boolean }): S3Location {
  const what = options.prefix ? 's3://bucket/prefix' : 's3://bucket/key';
  if (typeof text !== 'string') throw new SourceError('BAD_SOURCE', `source must be a string like ${what}`, {});
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(text);
  if (!match)
    throw new SourceError('BAD_SOURCE', `source must look like ${what}, got ${JSON.stringify(text.slice(0, 200))}`, {});
  const [, bucket, key = ''] = match as unknown as [string, string, string | undefined];
  if (!BUCKET.test(bucket))
    throw new SourceError('BAD_SOURCE', `${JSON.stringify(bucket)} is not an S3 bucket name`, { bucket });
  if (Buffer.byteLength(key) > 1024) throw new SourceError('BAD_SOURCE', 'an S3 key is at most 1024 bytes', { bucket });
  if (!options.prefix && (key === '' || key.endsWith('/'))) {
    throw new SourceError(
      'BAD_SOURCE',
      `${JSON.stringify(text.slice(0, 200))} names a folder, not an object; a whole prefix is a batch (POST /api/v1/batches)`,
      { bucket },
    );
  }
  return { bucket, key };
}

export const s3Url = ({ bucket, key }: S3Location): string => `s3://${bucket}/${key}`;
