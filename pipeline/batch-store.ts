/**
 * What a batch keeps in the output bucket, through the store: its record (replaced only by
 * compare-and-swap), the pages of its listing, one result per object, the progress bitmap behind
 * its counts, its manifest, and the two indexes — `batches/active/` (batches still to run: what a
 * web instance looks at to pick one up, as many entries as batches running) and `batches/index/`
 * (newest first, for the list of recent batches). Key layout: contract/keys.ts.
 */
import type { BatchItem, BatchPage, BatchRecord } from './contract/batch.js';
import {
  ACTIVE_BATCHES_PREFIX,
  activeBatchKey,
  BATCH_INDEX_PREFIX,
  batchIndexKey,
  batchItemKey,
  batchItemsPrefix,
  batchKey,
  batchManifestKey,
  batchPageKey,
  idOfIndexKey,
} from './contract/keys.js';
import type { Store, Versioned } from './store.js';

export class BatchStore {
  constructor(readonly store: Store) {}

  read(id: string): Promise<Versioned<BatchRecord> | undefined> {
    return this.store.readVersioned<BatchRecord>(batchKey(id));
  }

  /** Stores a new batch and marks it to be run; false when the id exists. */
  async create(record: BatchRecord): Promise<boolean> {
    if ((await this.store.writeVersioned(batchKey(record.id), record, undefined)) === undefined) return false;
    await this.store.putRecord(batchIndexKey(Date.parse(record.createdAt), record.id), {});
    await this.store.putRecord(activeBatchKey(record.id), {});
    return true;
  }

  /** Replaces the record if it is still at `etag`: its new version, or undefined when it changed meanwhile. */
  replace(record: BatchRecord, etag: string): Promise<string | undefined> {
    return this.store.writeVersioned(batchKey(record.id), record, etag);
  }

  /**
   * Read, change, compare-and-swap, again on a conflict: `change` returns the new record, or
   * undefined to leave it as it is. The record as it stands after.
   */
  async update(id: string, change: (record: BatchRecord) => BatchRecord | undefined): Promise<BatchRecord | undefined> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const current = await this.read(id);
      if (!current) return undefined;
      const next = change(current.value);
      if (next === undefined) return current.value;
      if ((await this.replace(next, current.etag)) !== undefined) return next;
    }
    throw new Error(`batch ${id}: its record kept changing under 20 attempts to update it`);
  }

  /** Ids of the batches still to run (a listing as long as the batches running, not as the data). */
  async activeIds(): Promise<string[]> {
    const ids: string[] = [];
    let startAfter: string | undefined;
    for (;;) {
      const page = await this.store.listKeys(ACTIVE_BATCHES_PREFIX, startAfter ? { startAfter } : {});
      ids.push(...page.keys.map((k) => k.slice(ACTIVE_BATCHES_PREFIX.length)));
      if (!page.more || page.keys.length === 0) return ids;
      startAfter = page.keys.at(-1);
    }
  }

  /** The batch has finished: nobody needs to run it any more. */
  retire(id: string): Promise<void> {
    return this.store.deleteRecord(activeBatchKey(id));
  }

  /** The `limit` most recent batches' ids, newest first. */
  async recentIds(limit: number): Promise<string[]> {
    const { keys } = await this.store.listKeys(BATCH_INDEX_PREFIX, { maxKeys: limit });
    return keys.flatMap((k) => idOfIndexKey(k, BATCH_INDEX_PREFIX) ?? []);
  }

  getPage(id: string, page: number): Promise<BatchPage | undefined> {
    return this.store.getRecord<BatchPage>(batchPageKey(id, page));
  }

  putPage(id: string, page: number, value: BatchPage): Promise<void> {
    return this.store.putRecord(batchPageKey(id, page), value);
  }

  /** One object's result (written again on a redelivery: the same line). */
  putItem(id: string, item: BatchItem): Promise<void> {
    return this.store.putRecord(batchItemKey(id, item.seq), item);
  }

  /**
   * Every result written so far, in listing order, read `concurrency` at a time: a page of keys
   * (1000) at most in memory, whatever the batch's size.
   */
  async *items(id: string, concurrency = 16): AsyncGenerator<BatchItem> {
    const prefix = batchItemsPrefix(id);
    let startAfter: string | undefined;
    for (;;) {
      const page = await this.store.listKeys(prefix, startAfter ? { startAfter } : {});
      for (let i = 0; i < page.keys.length; i += concurrency) {
        const read = await Promise.all(
          page.keys.slice(i, i + concurrency).map((k) => this.store.getRecord<BatchItem>(k)),
        );
        for (const item of read) if (item) yield item;
      }
      if (!page.more || page.keys.length === 0) return;
      startAfter = page.keys.at(-1);
    }
  }

  putProgress(key: string, bytes: Uint8Array): Promise<void> {
    return this.store.putBytes(key, bytes);
  }

  getProgress(key: string): Promise<Buffer | undefined> {
    return this.store.getBytes(key);
  }

  deleteProgress(key: string): Promise<void> {
    return this.store.deleteRecord(key);
  }

  /** Writes the manifest (`results.jsonl`) from its lines, streamed. */
  writeManifest(id: string, lines: AsyncIterable<Buffer>): Promise<void> {
    return this.store.putStreamed(batchManifestKey(id), lines, 'application/x-ndjson');
  }

  /** The manifest's bytes as a stream, once written. */
  manifest(id: string): Promise<ReadableStream<Uint8Array> | undefined> {
    return this.store.readStream(batchManifestKey(id));
  }
}
