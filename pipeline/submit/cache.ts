/**
 * The result cache. An upload's bytes are hashed (SHA-256); an image already classified by the same
 * model with the same preprocessing is answered from what is stored — no queue, no fetch, decode or
 * inference — and still gets its own request id, input object, `results/<id>.json` and classic
 * output, so jobs, replay and the classic protocol behave exactly as before.
 *
 * Entries live in the output bucket at `cache/<fingerprint>/<sha256>.json`, where the fingerprint
 * hashes what decides an answer: the model (id, format and runtime, its file's checksum or location,
 * input size, layout, resize, normalization, outputs, labels) and the decoder's version
 * (`DECODE_VERSION`).
 * Change the model or the preprocessing and the fingerprint changes: no earlier answer is served.
 * A bounded map in memory answers repeats without a read; the bucket makes them survive restarts
 * and serves every web instance. Which entries the bucket holds is listed at start and every
 * minute, so an image never seen costs no read at all (new images are most of them).
 */
import { createHash } from 'node:crypto';
import type { ModelManifest } from '../models/types.js';
import { DECODE_VERSION } from './images.js';
import type { Logger } from './log.js';
import type { ClassificationResult } from './messages.js';
import { cachePrefix } from './keys.js';
import { LruMap } from './lru.js';
import type { Store } from './store.js';

/** What a cache entry keeps: the answer, without what belongs to one request. */
export type CachedResult = Omit<ClassificationResult, 'id' | 'file' | 'timings' | 'completedAt' | 'cachedFrom'> & {
  /** The request whose classification this is. */
  readonly from: string;
};

export function modelFingerprint(manifest: ModelManifest): string {
  const labels = createHash('sha256').update(manifest.labels.join('\n')).digest('hex');
  const identity = {
    id: manifest.id,
    format: manifest.format,
    runtime: manifest.runtime ?? null,
    model: manifest.sha256 ?? manifest.location,
    input: manifest.input,
    output: manifest.output,
    labels,
    decode: DECODE_VERSION,
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 24);
}

export const sha256Of = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

export class ResultCache {
  private readonly memory: LruMap<string, CachedResult>;
  /** The hashes the bucket holds entries for (as last listed, plus what this process added). */
  private readonly inBucket = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    /** `modelFingerprint` of the model the workers run. */
    readonly fingerprint: string,
    /** The model id whose answers are kept (an answer from another model is not). */
    private readonly modelId: string,
    private readonly log: Logger,
    maxInMemory = 10_000,
  ) {
    this.memory = new LruMap(maxInMemory);
  }

  /** Lists the bucket's entries for this fingerprint, now and every `refreshMs`. */
  async start(refreshMs = 60_000): Promise<void> {
    await this.list();
    this.timer = setInterval(() => void this.list().catch((err: unknown) => this.log.warn('could not list the result cache; trying again later', { error: err })), refreshMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The earlier answer for these bytes, from memory or the bucket; undefined when there is none. */
  async lookup(sha256: string): Promise<CachedResult | undefined> {
    const known = this.memory.get(sha256);
    if (known) return known;
    if (!this.inBucket.has(sha256)) return undefined;
    const stored = await this.store.getCached(this.fingerprint, sha256);
    if (stored) this.memory.set(sha256, stored);
    return stored;
  }

  private async list(): Promise<void> {
    const prefix = cachePrefix(this.fingerprint);
    for await (const key of this.store.keys('output', prefix)) {
      if (key.endsWith('.json')) this.inBucket.add(key.slice(prefix.length, -'.json'.length));
    }
  }

  /** Keeps an answer for these bytes (in memory now, in the bucket in the background). */
  remember(sha256: string, result: ClassificationResult): void {
    if (result.model !== this.modelId || result.cachedFrom !== undefined) return;
    const { id, file: _file, timings: _timings, completedAt: _completedAt, cachedFrom: _cachedFrom, ...answer } = result;
    const entry: CachedResult = { ...answer, from: id };
    this.memory.set(sha256, entry);
    this.inBucket.add(sha256);
    this.store.putCached(this.fingerprint, sha256, entry).catch((err: unknown) =>
      this.log.warn('could not store a result cache entry (the answer was given; only a later repeat misses)', { requestId: id, error: err }),
    );
  }
}
