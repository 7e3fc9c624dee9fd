/**
 * Recent results for the page, from the output bucket, and thumbnails of their inputs — both through
 * the store's public calls only.
 *
 * `RecentResults` lists `results/` and reads each record it has not seen yet once (the store keeps
 * no time order: S3 lists keys alphabetically and result keys are request ids), then keeps every
 * id with its completion time and a summary of the newest few hundred. A listing is reused for
 * `maxAgeMs`, so a page refreshing it costs one LIST per ~1000 results every couple of seconds at
 * most. (Far beyond tens of thousands of results this wants a time-ordered index in the store;
 * see the report of issue 13.)
 *
 * `Thumbnails` finds an input by its request id — the input bucket's `<id>/` prefix, listed — and
 * shrinks it with sharp; a client's file name never becomes a key or a path here.
 */
import sharp from 'sharp';
import { LruMap } from '../lib/lru.js';
import { RESULTS_PREFIX, requestIdOfResultKey } from '../pipeline/contract/keys.js';
import type { ClassificationResult } from '../pipeline/contract/messages.js';
import { MAX_INPUT_PIXELS } from '../pipeline/images.js';
import type { FailureRecord, Store } from '../pipeline/store.js';
import { HttpError } from './errors.js';

export const thumbnailPath = (id: string): string => `/api/v1/jobs/${id}/thumbnail`;

interface Recent {
  readonly id: string;
  /** The client's file name, exactly as sent. */
  readonly file: string;
  /** ISO time the result was written. */
  readonly completedAt: string;
  /** `GET` it for a JPEG of the input. */
  readonly thumbnail: string;
}

export type RecentResult =
  | (Recent & { readonly status: 'done'; readonly label: string; readonly score: number; readonly model: string })
  | (Recent & { readonly status: 'failed'; readonly error: { readonly code: string; readonly message: string } });

function summarize(record: ClassificationResult | FailureRecord): RecentResult {
  const common = {
    id: record.id,
    file: record.file,
    completedAt: record.completedAt,
    thumbnail: thumbnailPath(record.id),
  };
  if ('error' in record)
    return { ...common, status: 'failed', error: { code: record.error.code, message: record.error.message } };
  return { ...common, status: 'done', label: record.label, score: record.score, model: record.model };
}

const newestFirst = (a: { completedAt: string }, b: { completedAt: string }) =>
  a.completedAt < b.completedAt ? 1 : a.completedAt > b.completedAt ? -1 : 0;

export interface RecentOptions {
  /** How long one listing of the bucket serves. */
  readonly maxAgeMs: number;
  /** Summaries kept (the newest); `limit` is at most this. */
  readonly keep: number;
  /** Result records read at once. */
  readonly concurrency: number;
  /** Records read per listing at most (the rest at the next ones), so no answer waits for a whole bucket. */
  readonly maxReads: number;
}

export const MAX_RECENT = 100;

export class RecentResults {
  private readonly options: RecentOptions;
  /** Every result id seen, with its completion time (ISO). */
  private readonly completed = new Map<string, string>();
  private readonly summaries = new Map<string, RecentResult>();
  private listedAt = 0;
  private listing: Promise<void> | undefined;
  /** Ids noted while a listing ran: it may have missed them, but they are not gone. */
  private readonly notedWhileListing = new Set<string>();

  constructor(
    private readonly store: Store,
    options: Partial<RecentOptions> = {},
  ) {
    this.options = { maxAgeMs: 2_000, keep: 2 * MAX_RECENT, concurrency: 8, maxReads: 1_000, ...options };
  }

  /** A result answered through this process: listed at once, without reading it back. */
  note(result: ClassificationResult): void {
    this.completed.set(result.id, result.completedAt);
    this.summaries.set(result.id, summarize(result));
    if (this.listing) this.notedWhileListing.add(result.id);
  }

  /** The `limit` newest results (done or failed), newest first. */
  async latest(limit: number): Promise<RecentResult[]> {
    if (Date.now() - this.listedAt >= this.options.maxAgeMs) {
      this.listing ??= this.list().finally(() => (this.listing = undefined));
      await this.listing;
    }
    return [...this.summaries.values()].sort(newestFirst).slice(0, limit);
  }

  private async list(): Promise<void> {
    const present = new Set<string>();
    const unseen: string[] = [];
    for await (const key of this.store.keys('output', RESULTS_PREFIX)) {
      const id = requestIdOfResultKey(key);
      if (id === undefined) continue;
      present.add(id);
      if (!this.completed.has(id) && unseen.length < this.options.maxReads) unseen.push(id);
    }
    for (const id of this.completed.keys()) {
      // A result noted after this listing passed its key is not deleted; it was just not listed yet.
      if (present.has(id) || this.notedWhileListing.has(id)) continue;
      this.completed.delete(id);
      this.summaries.delete(id);
    }
    let next = 0;
    const readOne = async () => {
      while (next < unseen.length) {
        const id = unseen[next++]!;
        const record = await this.store.getResult(id);
        if (!record) continue; // deleted since the listing
        const summary = summarize(record);
        this.completed.set(id, summary.completedAt);
        this.summaries.set(id, summary);
      }
    };
    await Promise.all(Array.from({ length: this.options.concurrency }, readOne));
    if (this.summaries.size > this.options.keep) {
      const keep = new Set(
        [...this.summaries.values()]
          .sort(newestFirst)
          .slice(0, this.options.keep)
          .map((s) => s.id),
      );
      for (const id of this.summaries.keys()) if (!keep.has(id)) this.summaries.delete(id);
    }
    this.listedAt = Date.now();
    this.notedWhileListing.clear();
  }
}

export interface ThumbnailOptions {
  /** Width and height in pixels (center-cropped). */
  readonly size: number;
  /** Thumbnails kept in memory (the least recently used go first). */
  readonly keep: number;
}

export class Thumbnails {
  private readonly options: ThumbnailOptions;
  private readonly cache: LruMap<string, Buffer>;

  constructor(
    private readonly store: Store,
    options: Partial<ThumbnailOptions> = {},
  ) {
    this.options = { size: 192, keep: 256, ...options };
    this.cache = new LruMap(this.options.keep);
  }

  /** A JPEG of request `id`'s input, or undefined when no input is stored under that id. */
  async of(id: string): Promise<Buffer | undefined> {
    const cached = this.cache.get(id);
    if (cached) return cached;
    let key: string | undefined;
    for await (const found of this.store.keys('input', `${id}/`, 1)) {
      key = found;
      break;
    }
    const input = key === undefined ? undefined : await this.store.getInput(this.store.buckets.input, key);
    if (!input) return undefined;
    let jpeg: Buffer;
    try {
      jpeg = await sharp(input.bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'none' })
        .rotate()
        .resize(this.options.size, this.options.size, { fit: 'cover' })
        .flatten({ background: '#ffffff' })
        .jpeg({ quality: 75 })
        .toBuffer();
    } catch (err) {
      throw new HttpError(
        'UNDECODABLE_IMAGE',
        `the input of job ${id} cannot be decoded for a thumbnail: ${(err as Error).message}`,
        { requestId: id },
      );
    }
    this.cache.set(id, jpeg);
    return jpeg;
  }
}
