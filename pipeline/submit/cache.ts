/**
 * The result cache, in front of the queue. An upload's bytes are hashed (SHA-256); an image already
 * classified by the same model with the same preprocessing is answered from what is stored — no
 * queue, no fetch, decode or inference — and still gets its own request id, input object,
 * `results/<id>.json` and classic output, so jobs, replay and the classic protocol behave exactly
 * as for any other upload. Anything else goes on to the queue, and its answer is remembered.
 *
 * Entries live in the output bucket at `cache/<fingerprint>/<sha256>.json`, where the fingerprint
 * hashes what decides an answer: the model (id, format and runtime, its file's checksum or location,
 * input size, layout, resize, normalization, outputs, labels) and the decoder's version
 * (`DECODE_VERSION`). Change the model or the preprocessing and the fingerprint changes: no earlier
 * answer is served. A bounded map in memory answers repeats without a read; the bucket makes them
 * survive restarts and serves every web instance. An image not in memory costs one read of its
 * entry's key (a miss is a 404): nothing here lists the bucket or grows with what it holds.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../lib/log.js';
import { LruMap } from '../../lib/lru.js';
import { retry } from '../../lib/retry.js';
import type { ModelManifest } from '../../models/types.js';
import { asPipelineError } from '../contract/errors.js';
import { type ClassificationResult, roundMs } from '../contract/messages.js';
import { DECODE_VERSION } from '../images.js';
import type { CachedResult, Store } from '../store.js';
import { ingest } from './ingest.js';
import { type Answerer, type Outcome, type Submission, uploadOf } from './submission.js';

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

export interface ResultCacheOptions {
  readonly store: Store;
  /** `modelFingerprint` of the model the workers run. */
  readonly fingerprint: string;
  /** The model id whose answers are kept (an answer from another model is not). */
  readonly modelId: string;
  /** How long storing a hit's input and result keeps retrying an unreachable S3. */
  readonly retryBudgetMs: number;
  readonly log: Logger;
  /** Entries kept in memory (the least recently used go first). */
  readonly maxInMemory?: number;
}

export class ResultCache {
  readonly fingerprint: string;
  private readonly memory: LruMap<string, CachedResult>;

  constructor(private readonly options: ResultCacheOptions) {
    this.fingerprint = options.fingerprint;
    this.memory = new LruMap(options.maxInMemory ?? 10_000);
  }

  /** `next`, with this cache in front: a hit is answered from the store, a miss goes on and its answer is kept. */
  front(next: Answerer): Answerer {
    return async (id, submission, waitMs, started) => {
      const sha = sha256Of(submission.bytes);
      const lookupStarted = performance.now();
      const hit = await this.lookup(sha).catch((err: unknown) => {
        this.options.log.warn('result cache lookup failed; classifying as usual', { requestId: id, error: err });
        return undefined;
      });
      if (hit) return this.answerFromCache(id, submission, hit, roundMs(performance.now() - lookupStarted), started);
      const outcome = await next(id, submission, waitMs, started);
      if (outcome.kind === 'done') this.remember(sha, outcome.result);
      return outcome;
    };
  }

  /** The earlier answer for these bytes, from memory or the bucket; undefined when there is none. */
  async lookup(sha256: string): Promise<CachedResult | undefined> {
    const known = this.memory.get(sha256);
    if (known) return known;
    const stored = await this.options.store.getCached(this.fingerprint, sha256);
    if (stored) this.memory.set(sha256, stored);
    return stored;
  }

  /** Keeps an answer for these bytes (in memory now, in the bucket in the background). */
  remember(sha256: string, result: ClassificationResult): void {
    if (result.model !== this.options.modelId || result.cachedFrom !== undefined) return;
    const {
      id,
      file: _file,
      timings: _timings,
      completedAt: _completedAt,
      cachedFrom: _cachedFrom,
      ...answer
    } = result;
    const entry: CachedResult = { ...answer, from: id };
    this.memory.set(sha256, entry);
    this.options.store
      .putCached(this.fingerprint, sha256, entry)
      .catch((err: unknown) =>
        this.options.log.warn(
          'could not store a result cache entry (the answer was given; only a later repeat misses)',
          { requestId: id, error: err },
        ),
      );
  }

  /**
   * An earlier answer for the same bytes, stored as this request's own — input, `results/<id>.json`,
   * the classic output — without the queue or a worker.
   */
  private async answerFromCache(
    id: string,
    submission: Submission,
    hit: CachedResult,
    cacheLookup: number,
    started: number,
  ): Promise<Outcome> {
    const { store, retryBudgetMs } = this.options;
    const stored = await ingest(store, uploadOf(id, submission), retryBudgetMs);
    const { from, ...answer } = hit;
    const persistStarted = performance.now();
    const result: ClassificationResult = {
      ...answer,
      id,
      file: submission.file,
      cachedFrom: from,
      timings: { ...stored.timings, cacheLookup },
      completedAt: new Date().toISOString(),
    };
    try {
      await retry(() => store.putResult(result, submission.protocol), { budgetMs: retryBudgetMs });
    } catch (err) {
      throw asPipelineError(err, 'persist', { requestId: id }, 'STORAGE_UNAVAILABLE');
    }
    const persist = roundMs(performance.now() - persistStarted);
    return {
      kind: 'done',
      id,
      result: {
        ...result,
        timings: { ...result.timings, persist, total: roundMs(submission.uploadMs + performance.now() - started) },
      },
    };
  }
}
