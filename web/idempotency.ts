/**
 * `Idempotency-Key` on the POSTs that start work (`/api/v1/classify`, `/api/v1/batches`): the first
 * request with a key does the work and its answer is kept (status, Location, body); the same key with
 * the same body gets that answer again — the same ids, no second classification — and the same key
 * with another body is `422 IDEMPOTENCY_KEY_REUSED`. A repeat that arrives while the first is still at
 * work waits for it (up to ANSWER_WAIT_MS), then hears `409 IDEMPOTENCY_KEY_IN_PROGRESS`. Answers the
 * service failed to give (5xx) are not kept: the key may be tried again.
 *
 * Keys live 24 hours, in the output bucket under the SHA-256 of the key and its scope (the route and
 * the API key used), never the key itself; the first request claims one with a create-only write,
 * so two at once cannot both do the work.
 */
import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import { idempotencyKey } from '../pipeline/contract/keys.js';
import type { Store } from '../pipeline/store.js';
import { HttpError, toHttpError } from './errors.js';

/** An answer as it is given again. */
export interface Replayable {
  readonly status: number;
  readonly location?: string;
  readonly body: unknown;
}

interface KeyRecord {
  readonly v: 1;
  /** SHA-256 of what the request asked (its body, canonically). */
  readonly digest: string;
  readonly createdAt: number;
  readonly answer?: Replayable;
}

export const IDEMPOTENCY_HEADER = 'idempotency-key';
const KEY = /^[\x21-\x7e]{1,255}$/;

export const sha256 = (...parts: (string | Uint8Array)[]): string => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex');
};

export class IdempotencyKeys {
  constructor(
    private readonly store: Store,
    private readonly options: { readonly waitMs: number; readonly ttlMs?: number },
  ) {}

  /** `produce`'s answer, once per key (see above); without the header, just `produce`. */
  async run(ctx: Context, route: string, digest: string, produce: () => Promise<Replayable>): Promise<Replayable> {
    const key = ctx.get(IDEMPOTENCY_HEADER);
    if (!key) return produce();
    if (!KEY.test(key))
      throw new HttpError('BAD_IDEMPOTENCY_KEY', 'Idempotency-Key must be 1 to 255 printable ASCII characters');
    const recordKey = idempotencyKey(sha256(route, ctx.get('authorization'), key));
    const ttlMs = this.options.ttlMs ?? 24 * 3600_000;
    const fresh: KeyRecord = { v: 1, digest, createdAt: Date.now() };
    let claimed = (await this.store.writeVersioned(recordKey, fresh, undefined)) !== undefined;
    if (!claimed) {
      const deadline = Date.now() + this.options.waitMs;
      for (;;) {
        const existing = await this.store.readVersioned<KeyRecord>(recordKey);
        if (!existing) {
          claimed = (await this.store.writeVersioned(recordKey, fresh, undefined)) !== undefined;
        } else if (Date.now() - existing.value.createdAt > ttlMs) {
          claimed = (await this.store.writeVersioned(recordKey, fresh, existing.etag)) !== undefined;
        } else if (existing.value.digest !== digest) {
          throw new HttpError(
            'IDEMPOTENCY_KEY_REUSED',
            'this Idempotency-Key was used with another request body; use a new key for a new request',
          );
        } else if (existing.value.answer) {
          ctx.set('Idempotent-Replayed', 'true');
          return existing.value.answer;
        } else if (Date.now() > deadline) {
          ctx.set('Retry-After', '1');
          throw new HttpError(
            'IDEMPOTENCY_KEY_IN_PROGRESS',
            'the first request with this Idempotency-Key is still at work; ask again shortly',
          );
        }
        if (claimed) break;
        if (existing) await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    let answer: Replayable;
    try {
      answer = await produce();
    } catch (err) {
      const http = toHttpError(err);
      if (http.status >= 500) {
        await this.store.deleteRecord(recordKey).catch(() => undefined);
        throw err;
      }
      answer = { status: http.status, body: { error: { code: http.code, message: http.message, ...http.context } } };
    }
    await this.store.putRecord(recordKey, { ...fresh, answer } satisfies KeyRecord);
    return answer;
  }
}

/** Gives `answer` as the response. */
export function send(ctx: Context, answer: Replayable): void {
  ctx.status = answer.status;
  if (answer.location) ctx.set('Location', answer.location);
  ctx.body = answer.body;
}
