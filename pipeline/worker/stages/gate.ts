/**
 * Worker side, right after consume: an object of a cancelled batch is dropped without being
 * fetched or classified (`CANCELLED`: its message is deleted, nothing recorded, nobody told). The
 * batch's status is read from its record at most every `freshMs` per batch, so a cancel reaches
 * every worker within that time and a running batch costs a read per batch, not per object.
 */
import type { OperatorFunction } from 'rxjs';
import { LruMap } from '../../../lib/lru.js';
import type { BatchStore } from '../../batch-store.js';
import type { BatchStatus } from '../../contract/batch.js';
import { PipelineError } from '../../contract/errors.js';
import { type Job, stage } from '../job.js';

export function skipCancelled(batches: BatchStore, concurrency: number, freshMs = 1_000): OperatorFunction<Job, Job> {
  const known = new LruMap<string, { readonly status: Promise<BatchStatus | 'gone'>; readonly at: number }>(256);
  const statusOf = (id: string): Promise<BatchStatus | 'gone'> => {
    const cached = known.get(id);
    if (cached && Date.now() - cached.at < freshMs) return cached.status;
    const status = batches.read(id).then((r) => r?.value.status ?? 'gone');
    known.set(id, { status, at: Date.now() });
    // A failed read is not remembered: the next object asks again.
    status.catch(() => known.delete(id));
    return status;
  };
  return stage('consume', undefined, 'STORAGE_UNAVAILABLE', concurrency, async (job) => {
    const batch = job.request.batch;
    if (!batch) return {};
    const status = await statusOf(batch.id);
    if (status === 'cancelled' || status === 'gone') {
      throw new PipelineError(
        'CANCELLED',
        `batch ${batch.id} was ${status === 'gone' ? 'removed' : 'cancelled'}: ${job.request.key} is dropped`,
        {
          stage: 'consume',
          retryable: false,
          requestId: job.request.requestId,
          key: job.request.key,
        },
      );
    }
    return {};
  });
}
