/**
 * Recent results for the page, and thumbnails of their inputs — both through the store.
 *
 * `RecentResults` reads the time-ordered index the store writes beside every result
 * (`recent/<newest first>_<id>.json`, a small summary each): the `limit` newest are one listing of
 * `limit` keys, whatever the bucket holds, and their summaries are kept in a small map (they never
 * change), so a page refreshing the list reads only what is new.
 *
 * `Thumbnails` finds an input by its request id — the input bucket's `<id>/` prefix, listed, or the
 * object a by-reference request named — and shrinks it with sharp; a client's file name never
 * becomes a key or a path here.
 */
import sharp from 'sharp';
import { LruMap } from '../lib/lru.js';
import { parseS3Url } from '../pipeline/contract/sources.js';
import { MAX_INPUT_PIXELS } from '../pipeline/images.js';
import type { RecentRecord, Store } from '../pipeline/store.js';
import { HttpError } from './errors.js';

export const thumbnailPath = (id: string): string => `/api/v1/jobs/${id}/thumbnail`;

export type RecentResult = RecentRecord & {
  /** `GET` it for a JPEG of the input. */
  readonly thumbnail: string;
};

export const MAX_RECENT = 100;

export class RecentResults {
  /** Summaries by index key (they never change). */
  private readonly known = new LruMap<string, RecentRecord>(4 * MAX_RECENT);

  constructor(private readonly store: Store) {}

  /** The `limit` newest results (done or failed), newest first. */
  async latest(limit: number): Promise<RecentResult[]> {
    const entries = await this.store.recentResults(limit);
    const records = await Promise.all(
      entries.map(async ({ key, read }) => {
        const known = this.known.get(key);
        if (known) return known;
        const record = await read();
        if (record) this.known.set(key, record);
        return record;
      }),
    );
    return records.flatMap((r) => (r ? [{ ...r, thumbnail: thumbnailPath(r.id) }] : []));
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
    /** The largest object read to make one (MAX_UPLOAD_BYTES). */
    private readonly maxBytes: number,
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
    const bytes =
      key === undefined
        ? await this.namedObject(id)
        : (await this.store.getInput(this.store.buckets.input, key))?.bytes;
    if (!bytes) return undefined;
    let jpeg: Buffer;
    try {
      jpeg = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'none' })
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

  /** The object a by-reference request named (it stays in the client's bucket). */
  private async namedObject(id: string): Promise<Buffer | undefined> {
    const record = await this.store.getRequestRecord(id);
    if (!record) return undefined;
    const { bucket, key } = parseS3Url(record.source, { prefix: false });
    const source = await this.store.getSource(bucket, key, this.maxBytes);
    return source && 'bytes' in source ? source.bytes : undefined;
  }
}
