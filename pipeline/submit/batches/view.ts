/**
 * A batch as people see it (the API's answer and the `notify` summary): its numbers, not its
 * machinery (lease, progress object, queue). `total` is known once the whole prefix is listed; the
 * ETA, while it runs, is what is left over the rate answers have been coming at.
 */
import { type BatchRecord, type BatchStatus, FINISHED } from '../../contract/batch.js';
import { s3Url } from '../../contract/sources.js';

export interface BatchView {
  readonly id: string;
  readonly source: string;
  readonly status: BatchStatus;
  /** Objects in the batch (once listed). */
  readonly total?: number;
  /** Objects listed and queued so far. */
  readonly listed: number;
  readonly done: number;
  readonly failed: number;
  readonly createdAt: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  /** Objects answered per second, lately. */
  readonly rate?: number;
  /** Seconds until every object is answered, at that rate (while running). */
  readonly etaSeconds?: number;
  /** The manifest in the output bucket, once the batch finished. */
  readonly manifest?: string;
  readonly notify?: string;
  readonly error?: { readonly code: string; readonly message: string };
}

export function batchView(record: BatchRecord, outputBucket?: string): BatchView {
  const { listing, counts } = record;
  const remaining = listing.listed - counts.done - counts.failed;
  const eta =
    !FINISHED.has(record.status) && listing.complete && record.rate !== undefined && record.rate > 0
      ? Math.ceil(remaining / record.rate)
      : undefined;
  return {
    id: record.id,
    source: s3Url(record.source),
    status: record.status,
    ...(listing.complete ? { total: listing.listed } : {}),
    listed: listing.listed,
    done: counts.done,
    failed: counts.failed,
    createdAt: record.createdAt,
    ...(record.startedAt ? { startedAt: record.startedAt } : {}),
    ...(record.finishedAt ? { finishedAt: record.finishedAt } : {}),
    ...(record.rate !== undefined ? { rate: record.rate } : {}),
    ...(eta !== undefined ? { etaSeconds: eta } : {}),
    ...(record.results && outputBucket ? { manifest: `s3://${outputBucket}/${record.results}` } : {}),
    ...(record.notify ? { notify: record.notify } : {}),
    ...(record.error ? { error: record.error } : {}),
  };
}
