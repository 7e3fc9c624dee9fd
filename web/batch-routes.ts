/**
 * The batch routes: translate HTTP to `Batches` (pipeline/submit/batches/batches.ts) and back.
 *
 *   POST   /api/v1/batches              {"source": "s3://bucket/prefix/", "notify"?} → 202 + Location
 *   GET    /api/v1/batches?limit=N      the most recent batches, newest first
 *   GET    /api/v1/batches/:id          status, total, done, failed, ETA, where the results are
 *   DELETE /api/v1/batches/:id          cancel (409 BATCH_FINISHED when it already ended)
 *   GET    /api/v1/batches/:id/results  every result so far as JSON lines, in listing order
 */
import { Readable } from 'node:stream';
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Batches } from '../pipeline/submit/batches/batches.js';
import type { BatchView } from '../pipeline/submit/batches/view.js';
import { HttpError } from './errors.js';
import { type IdempotencyKeys, send, sha256 } from './idempotency.js';
import { canonicalJson, readJsonObject } from './json-body.js';
import { BATCH_ID_PATTERN } from './openapi.js';

export interface BatchRouteDeps {
  readonly batches: Batches;
  readonly idempotency: IdempotencyKeys;
}

export const batchLocation = (id: string): string => `/api/v1/batches/${id}`;

/** A batch as the API answers it: its view, and where to follow it and read its results. */
const withLinks = (view: BatchView) => ({
  ...view,
  location: batchLocation(view.id),
  results: `${batchLocation(view.id)}/results`,
});

const BATCH_ID = new RegExp(BATCH_ID_PATTERN);
export const MAX_BATCHES_LISTED = 100;

function batchIdOf(ctx: Context): string {
  const id = (ctx.params as { id?: string }).id ?? '';
  if (!BATCH_ID.test(id)) throw new HttpError('BAD_BATCH_ID', `${JSON.stringify(id.slice(0, 80))} is not a batch id`);
  return id;
}

export function batchRoutes(router: Router, { batches, idempotency }: BatchRouteDeps): void {
  router.post('/api/v1/batches', async (ctx) => {
    if (!ctx.is('application/json'))
      throw new HttpError('UNSUPPORTED_MEDIA_TYPE', 'send JSON: {"source": "s3://bucket/prefix/"}');
    const body = await readJsonObject(ctx);
    const unknown = Object.keys(body).filter((k) => k !== 'source' && k !== 'notify');
    if (unknown.length > 0)
      throw new HttpError('BAD_REQUEST', `unknown field(s) ${unknown.join(', ')}: send source and optionally notify`);
    const answer = await idempotency.run(ctx, 'batches', sha256('batch', canonicalJson(body)), async () => {
      const view = await batches.create({
        source: body.source,
        ...(body.notify === undefined ? {} : { notify: body.notify }),
      });
      return { status: 202, location: batchLocation(view.id), body: withLinks(view) };
    });
    send(ctx, answer);
  });

  router.get('/api/v1/batches', async (ctx) => {
    const raw = ctx.query.limit;
    const limit = raw === undefined ? 20 : typeof raw === 'string' && /^\d{1,3}$/.test(raw) ? Number(raw) : NaN;
    if (!(limit >= 1 && limit <= MAX_BATCHES_LISTED)) {
      throw new HttpError(
        'BAD_PARAMETER',
        `limit must be an integer in 1..${MAX_BATCHES_LISTED}, got ${JSON.stringify(raw).slice(0, 80)}`,
      );
    }
    ctx.body = { batches: (await batches.recent(limit)).map(withLinks) };
  });

  router.get('/api/v1/batches/:id', async (ctx) => {
    const id = batchIdOf(ctx);
    const view = await batches.get(id);
    if (!view) throw new HttpError('NO_SUCH_BATCH', `no batch ${id}`);
    ctx.body = withLinks(view);
  });

  router.delete('/api/v1/batches/:id', async (ctx) => {
    const id = batchIdOf(ctx);
    const outcome = await batches.cancel(id);
    if (!outcome) throw new HttpError('NO_SUCH_BATCH', `no batch ${id}`);
    if (!outcome.cancelled) {
      throw new HttpError(
        'BATCH_FINISHED',
        `batch ${id} already ended (${outcome.batch.status}); there is nothing to cancel`,
        { status: outcome.batch.status },
      );
    }
    ctx.body = withLinks(outcome.batch);
  });

  router.get('/api/v1/batches/:id/results', async (ctx) => {
    const id = batchIdOf(ctx);
    if (!(await batches.get(id))) throw new HttpError('NO_SUCH_BATCH', `no batch ${id}`);
    ctx.type = 'application/x-ndjson';
    ctx.body = readableFrom(batches.results(id));
  });
}

/** A Node stream of an async iterable of bytes (what Koa sends as a body, chunk by chunk). */
function readableFrom(chunks: AsyncIterable<Uint8Array>) {
  return Readable.from(chunks, { objectMode: false });
}
