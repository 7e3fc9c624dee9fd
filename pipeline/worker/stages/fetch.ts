/**
 * Worker side: fetch each job's image from the input bucket. A missing object is final; an
 * unreachable S3 is not (the job is retried through an outage for `retryBudgetMs`, then left for
 * redelivery).
 */
import type { OperatorFunction } from 'rxjs';
import { retry } from '../../../lib/retry.js';
import { PipelineError } from '../../contract/errors.js';
import type { Store } from '../../store.js';
import { type Job, stage } from '../job.js';

export function fetchInput(store: Store, concurrency: number, retryBudgetMs: number): OperatorFunction<Job, Job> {
  return stage('fetch', 's3Get', 'INPUT_MISSING', concurrency, async (job) => {
    const { bucket, key, requestId } = job.request;
    const input = await retry(() => store.getInput(bucket, key), { budgetMs: retryBudgetMs });
    if (!input) {
      throw new PipelineError('INPUT_MISSING', `input s3://${bucket}/${key} does not exist`, {
        stage: 'fetch',
        retryable: false,
        requestId,
        bucket,
        key,
      });
    }
    // Replayed inputs know only their key (a sanitized name): the client's own name is in the metadata.
    const file = input.file ?? job.request.file;
    return {
      bytes: input.bytes,
      protocol: input.protocol,
      ...(file === job.request.file ? {} : { request: { ...job.request, file } }),
    };
  });
}
