/**
 * Worker side: fetch each job's image. An upload comes from the input bucket, where the web tier
 * stored and checked it; an object classified by reference comes from the client's own bucket and is
 * checked here, as the web tier checks an upload: not over MAX_UPLOAD_BYTES (refused from its size,
 * before the body is read), an image of a type we decode, not a decompression bomb. A missing object
 * and a bad one are final; an unreachable S3 is not (the job is retried through an outage for
 * `retryBudgetMs`, then left for redelivery).
 */
import type { OperatorFunction } from 'rxjs';
import { retry } from '../../../lib/retry.js';
import { PipelineError } from '../../contract/errors.js';
import { s3Url } from '../../contract/sources.js';
import { checkImage, ImageError } from '../../images.js';
import type { Store } from '../../store.js';
import { type Job, stage } from '../job.js';

export interface FetchOptions {
  readonly concurrency: number;
  readonly retryBudgetMs: number;
  /** The largest object classified by reference (MAX_UPLOAD_BYTES, as for an upload). */
  readonly maxBytes: number;
}

export function fetchInput(store: Store, options: FetchOptions): OperatorFunction<Job, Job> {
  const { concurrency, retryBudgetMs, maxBytes } = options;
  return stage('fetch', 's3Get', 'INPUT_MISSING', concurrency, async (job) => {
    const { bucket, key, requestId } = job.request;
    const fail = (code: 'INPUT_MISSING' | 'TOO_LARGE', message: string) =>
      new PipelineError(code, message, { stage: 'fetch', retryable: false, requestId, bucket, key });
    if (job.request.kind === 'reference') {
      const source = await retry(() => store.getSource(bucket, key, maxBytes), { budgetMs: retryBudgetMs });
      if (!source) throw fail('INPUT_MISSING', `${s3Url({ bucket, key })} does not exist`);
      if ('tooLarge' in source) {
        throw fail(
          'TOO_LARGE',
          `${s3Url({ bucket, key })} is ${source.tooLarge} bytes; the limit is ${maxBytes} (MAX_UPLOAD_BYTES)`,
        );
      }
      try {
        await checkImage(source.bytes, s3Url({ bucket, key }));
      } catch (err) {
        if (!(err instanceof ImageError)) throw err;
        throw new PipelineError(
          err.code,
          err.message,
          { stage: 'fetch', retryable: false, requestId, bucket, key },
          { cause: err },
        );
      }
      return { bytes: source.bytes, protocol: job.request.protocol ?? 'api' };
    }
    const input = await retry(() => store.getInput(bucket, key), { budgetMs: retryBudgetMs });
    if (!input) throw fail('INPUT_MISSING', `input s3://${bucket}/${key} does not exist`);
    // Replayed inputs know only their key (a sanitized name): the client's own name is in the metadata.
    const file = input.file ?? job.request.file;
    return {
      bytes: input.bytes,
      protocol: job.request.protocol ?? input.protocol,
      ...(file === job.request.file ? {} : { request: { ...job.request, file } }),
    };
  });
}
