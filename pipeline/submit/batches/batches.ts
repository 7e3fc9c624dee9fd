/**
 * The batches as the web tier offers them: start one over `s3://bucket/prefix` (checked against
 * SOURCE_BUCKETS, its bucket there), see one or the recent ones, cancel one, read its results. The
 * work itself is the runner's and its coordinators' (runner.ts, coordinator.ts), on whichever
 * instance holds a batch's lease; everything here reads and writes the batch's record only, so any
 * instance answers for any batch.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../../../lib/config.js';
import type { BatchStore } from '../../batch-store.js';
import { type BatchItem, type BatchRecord, FINISHED } from '../../contract/batch.js';
import { parseS3Url } from '../../contract/sources.js';
import type { Notifier } from '../notify.js';
import { checkAllowed, checkSourceBucket } from '../sources.js';
import type { BatchRunner } from './runner.js';
import { type BatchView, batchView } from './view.js';

export interface BatchesDeps {
  readonly config: Config;
  readonly batches: BatchStore;
  readonly notifier: Notifier;
  readonly runner: BatchRunner;
}

export type CancelOutcome =
  | { readonly cancelled: true; readonly batch: BatchView }
  | { readonly cancelled: false; readonly batch: BatchView };

export class Batches {
  constructor(private readonly deps: BatchesDeps) {}

  /** Starts a batch over `source` (checked: the format, the allow-list, the bucket exists); `notify` is checked too. */
  async create(input: { readonly source: unknown; readonly notify?: unknown }): Promise<BatchView> {
    const { config, batches, notifier, runner } = this.deps;
    // The checks that ask nobody first; then whether the bucket is there.
    const source = parseS3Url(input.source, { prefix: true });
    checkAllowed(config, source.bucket);
    const notify = input.notify === undefined ? undefined : notifier.check(input.notify);
    await checkSourceBucket(batches.store, config, source.bucket);
    const record: BatchRecord = {
      v: 1,
      id: randomUUID(),
      source,
      ...(notify ? { notify } : {}),
      createdAt: new Date().toISOString(),
      status: 'listing',
      listing: { pages: 0, listed: 0, complete: false },
      counts: { done: 0, failed: 0 },
    };
    await batches.create(record);
    runner.kick();
    return this.view(record);
  }

  /** Ids of the batches this web instance runs now. */
  running(): string[] {
    return this.deps.runner.runningIds;
  }

  /** A `notify` target, checked (a webhook host WEBHOOK_ALLOWED_HOSTS allows, or an SNS topic ARN). */
  checkNotify(target: unknown): string {
    return this.deps.notifier.check(target);
  }

  async get(id: string): Promise<BatchView | undefined> {
    const record = await this.deps.batches.read(id);
    return record ? this.view(record.value) : undefined;
  }

  /** The `limit` most recent batches, newest first. */
  async recent(limit: number): Promise<BatchView[]> {
    const ids = await this.deps.batches.recentIds(limit);
    const records = await Promise.all(ids.map((id) => this.deps.batches.read(id)));
    return records.flatMap((r) => (r ? [this.view(r.value)] : []));
  }

  /** Cancels a batch still running (its queued objects are dropped by the workers); a finished one stays as it is. */
  async cancel(id: string): Promise<CancelOutcome | undefined> {
    let changed = false;
    const record = await this.deps.batches.update(id, (r) => {
      if (FINISHED.has(r.status)) return undefined;
      changed = true;
      return { ...r, status: 'cancelled', finishedAt: new Date().toISOString() };
    });
    if (!record) return undefined;
    this.deps.runner.kick();
    return { cancelled: changed, batch: this.view(record) };
  }

  /**
   * Every result so far as JSON lines, in listing order: the manifest once the batch finished, else
   * the objects' results as they stand (one page of keys in memory at a time).
   */
  async *results(id: string): AsyncGenerator<Uint8Array> {
    const { batches } = this.deps;
    const record = await batches.read(id);
    if (!record) return;
    if (record.value.results) {
      const manifest = await batches.manifest(id);
      if (manifest) {
        for await (const chunk of manifest) yield chunk;
        return;
      }
    }
    let lines = '';
    for await (const item of batches.items(id)) {
      lines += `${JSON.stringify(item satisfies BatchItem)}\n`;
      if (lines.length >= 64 * 1024) {
        yield Buffer.from(lines);
        lines = '';
      }
    }
    if (lines) yield Buffer.from(lines);
  }

  private view(record: BatchRecord): BatchView {
    return batchView(record, this.deps.config.names.outputBucket);
  }
}
