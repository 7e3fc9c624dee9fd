/**
 * The Koa application: routes only. Each route translates HTTP into a call on the submitter (the
 * one door into the pipeline) or the store, and its outcome back, errors through `toHttpError`.
 *
 *   GET  /                          the page (web/public/), and its files under /assets/<name>
 *   POST /                          classic protocol: multipart `myfile` → `200 text/plain` `<name>,<label>`
 *                                   (CLASSIC_FIELD and CLASSIC_SEPARATOR change the field and the comma)
 *   POST /api/v1/classify           one or more images (multipart, or a raw image body), or objects named
 *                                   by reference (JSON `{"source": "s3://bucket/key"}`) → JSON per image,
 *                                   or 202 + Location when an answer takes longer than ANSWER_WAIT_MS
 *   POST /api/v1/batches            every object under `s3://bucket/prefix` (web/batch-routes.ts), and
 *   GET|DELETE /api/v1/batches/:id  its progress, its cancel, its results as JSON lines
 *   GET  /api/v1/jobs/:id           a request's status or result, from the output bucket
 *   GET  /api/v1/jobs/:id/thumbnail a small JPEG of the request's input
 *   GET  /api/v1/results?limit=N    the most recent results, from the output bucket
 *   GET  /api/v1/status             queue depth, workers (desired / running), recent scaling decisions
 *   GET  /api/v1/events             the same, pushed as Server-Sent Events (web/live.ts)
 *   GET  /api/v1/openapi.json       the OpenAPI 3.1 document of all this
 *   GET  /healthz                   the process is alive
 *   GET  /readyz                    the queues and buckets are reachable
 *
 * With API_KEYS set, `accessControl` (web/auth.ts) asks for a key first. The POSTs that start work
 * honour `Idempotency-Key` (web/idempotency.ts).
 */
import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import type { PipelineError } from '../pipeline/contract/errors.js';
import { classicAnswer } from '../pipeline/contract/keys.js';
import type { ClassificationResult, Protocol } from '../pipeline/contract/messages.js';
import { roundMs } from '../pipeline/contract/messages.js';
import { parseS3Url, s3Url } from '../pipeline/contract/sources.js';
import type { Store } from '../pipeline/store.js';
import type { Batches } from '../pipeline/submit/batches/batches.js';
import type { Outcome, Submitter } from '../pipeline/submit/submitter.js';
import type { ServiceStatus } from '../scaling/index.js';
import { ASSETS_PREFIX, type AuthOptions, accessControl } from './auth.js';
import { batchRoutes } from './batch-routes.js';
import { errorBody, errorMiddleware, HttpError, toHttpError } from './errors.js';
import { IdempotencyKeys, type Replayable, send, sha256 } from './idempotency.js';
import { canonicalJson, readJsonObject } from './json-body.js';
import type { LiveStatus } from './live.js';
import { JOB_ID_PATTERN, openApiDocument } from './openapi.js';
import { loadPageFiles } from './page.js';
import { MAX_RECENT, RecentResults, Thumbnails } from './recent.js';
import { type Limits, multipartBody, receiveImages } from './uploads.js';

export interface WebDeps {
  readonly submitter: Submitter;
  /** Read-only here: recent results and the inputs behind thumbnails. */
  readonly store: Store;
  readonly limits: Limits & { readonly requestTimeoutMs: number; readonly answerWaitMs: number };
  readonly auth: AuthOptions;
  /** The classic protocol's form field and separator. */
  readonly classic: Config['classic'];
  readonly log: Logger;
  /** Queue depth, workers (desired / running), recent scaling decisions, runtime. */
  readonly status: () => Promise<ServiceStatus>;
  /** The event stream of the live view (its sampler is started and stopped by the server). */
  readonly live: LiveStatus;
  /** Prometheus text for `GET /metrics`, and a count per HTTP error code. */
  readonly metrics?: WebMetricsPort;
  /** Batches over S3 prefixes. */
  readonly batches: Batches;
}

/** What the app needs of the service's metrics. */
export interface WebMetricsPort {
  render(): Promise<{ contentType: string; body: string }>;
  httpError(code: string): void;
}

/** The per-image JSON of the API: the result without worker internals. */
export interface ImageAnswer {
  readonly id: string;
  readonly file: string;
  readonly label: string;
  readonly score: number;
  readonly top5: ClassificationResult['top5'];
  readonly model: string;
  readonly timings: ClassificationResult['timings'];
  /** Answered from the result cache: this earlier request classified the same bytes. */
  readonly cachedFrom?: string;
  /** The object classified where it is, for a by-reference request. */
  readonly source?: string;
}

const toImageAnswer = (r: ClassificationResult): ImageAnswer => ({
  id: r.id,
  file: r.file,
  label: r.label,
  score: r.score,
  top5: r.top5,
  model: r.model,
  timings: r.timings,
  ...(r.cachedFrom === undefined ? {} : { cachedFrom: r.cachedFrom }),
});

const jobLocation = (id: string) => `/api/v1/jobs/${id}`;

const JOB_ID = new RegExp(JOB_ID_PATTERN);

/** The `:id` of a jobs route, checked. */
function jobIdOf(ctx: Context): string {
  const id = (ctx.params as { id?: string }).id ?? '';
  if (!JOB_ID.test(id)) throw new HttpError('BAD_JOB_ID', `${JSON.stringify(id.slice(0, 80))} is not a job id`);
  return id;
}

/** `?limit=N`: an integer in 1..max, or `fallback` when absent. */
function limitOf(ctx: Context, fallback: number, max: number): number {
  const raw = ctx.query.limit;
  if (raw === undefined) return fallback;
  const n = typeof raw === 'string' && /^\d{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= max))
    throw new HttpError(
      'BAD_PARAMETER',
      `limit must be an integer in 1..${max}, got ${JSON.stringify(raw).slice(0, 80)}`,
    );
  return n;
}

/**
 * The answer to a classify request: 200 with an entry per image, in order; 202 with a Location when
 * one is still in work. One failure among several images is reported in place; only when nothing
 * worked (and nothing is still pending) is the whole request an error.
 */
function classifyAnswer(outcomes: Submitted[]): Replayable {
  const errorOf = (o: Submitted) =>
    o.kind === 'refused' ? o.error : o.kind === 'failed' ? failedImage(o.id, o.error) : undefined;
  if (outcomes.every((o) => errorOf(o) !== undefined)) throw errorOf(outcomes[0]!);
  const pending = outcomes.find((o) => o.kind === 'pending');
  const source = (o: Submitted) => (o.source ? { source: o.source } : {});
  return {
    status: pending ? 202 : 200,
    ...(pending ? { location: jobLocation(pending.id) } : {}),
    body: {
      results: outcomes.map((o) => {
        if (o.kind === 'done') return { ...toImageAnswer(o.result), ...source(o) };
        if (o.kind === 'pending')
          return { id: o.id, file: o.file, ...source(o), status: 'pending', location: jobLocation(o.id) };
        return { file: o.file, ...source(o), ...errorBody(errorOf(o)!) };
      }),
    },
  };
}

/** A failed image as an HTTP error that names its request and where its job can be read. */
const failedImage = (id: string, error: PipelineError) =>
  new HttpError(error.code, error.message, { requestId: id, stage: error.stage, location: jobLocation(id) });

interface ClassifyOptions {
  /** The multipart field to read (any file field when absent). */
  readonly field?: string;
  /** Accept a raw image body as well as multipart. */
  readonly allowRaw: boolean;
  readonly waitMs: number;
  readonly protocol: Protocol;
}

type Submitted = { readonly file: string; readonly source?: string } & (
  | Outcome
  | { readonly kind: 'refused'; readonly error: HttpError }
);

/** What a classify request asks, read once: `digest` says it for Idempotency-Key; `submit` does it. */
interface ClassifyRequest {
  readonly digest: string;
  submit(): Promise<Submitted[]>;
}

/** Uploads (multipart or a raw body): every image through the submitter; one not accepted does not hide the others. */
async function readUploads(ctx: Context, deps: WebDeps, options: ClassifyOptions): Promise<ClassifyRequest> {
  const images = await receiveImages(ctx, deps.limits, options);
  const uploadMs = roundMs(performance.now() - (ctx.state.receivedAt as number));
  return {
    digest: sha256('uploads', ...images.flatMap((i) => [i.originalName, sha256(i.bytes)])),
    submit: async () => {
      const settled = await Promise.allSettled(
        images.map((image) =>
          deps.submitter.submit(
            {
              file: image.originalName,
              bytes: image.bytes,
              contentType: image.mime,
              protocol: options.protocol,
              uploadMs,
            },
            options.waitMs,
          ),
        ),
      );
      return settled.map((s, i) => submitted(s, images[i]!.originalName));
    },
  };
}

/**
 * Objects named by reference — `{"source": "s3://bucket/key"}` or `{"sources": [...]}`, with an
 * optional `notify` — each classified where it is. The names are checked here (format, count);
 * whether each may be read and is an image, by the submitter.
 */
async function readReferences(ctx: Context, deps: WebDeps): Promise<ClassifyRequest> {
  const body = await readJsonObject(ctx);
  const unknown = Object.keys(body).filter((k) => !['source', 'sources', 'notify'].includes(k));
  if (unknown.length > 0)
    throw new HttpError(
      'BAD_REQUEST',
      `unknown field(s) ${unknown.join(', ')}: send source (or sources) and optionally notify`,
    );
  if ((body.source === undefined) === (body.sources === undefined))
    throw new HttpError('BAD_SOURCE', 'send either source ("s3://bucket/key") or sources (a list of them)');
  const texts = body.sources === undefined ? [body.source] : body.sources;
  if (!Array.isArray(texts) || texts.length === 0)
    throw new HttpError('BAD_SOURCE', 'sources must be a non-empty list of "s3://bucket/key"');
  if (texts.length > deps.limits.maxFilesPerRequest)
    throw new HttpError(
      'TOO_MANY_FILES',
      `at most ${deps.limits.maxFilesPerRequest} sources per request (MAX_FILES); a whole prefix is a batch`,
    );
  const sources = texts.map((text) => parseS3Url(text, { prefix: false }));
  const notify = body.notify === undefined ? undefined : deps.batches.checkNotify(body.notify);
  return {
    digest: sha256('references', canonicalJson(body)),
    submit: async () => {
      const settled = await Promise.allSettled(
        sources.map((source) =>
          deps.submitter.submitReference({ source, ...(notify ? { notify } : {}) }, deps.limits.answerWaitMs),
        ),
      );
      return settled.map((s, i) =>
        submitted(s, sources[i]!.key.slice(sources[i]!.key.lastIndexOf('/') + 1), s3Url(sources[i]!)),
      );
    },
  };
}

/** An image's outcome, or why it was not accepted (any error the client caused or may retry). */
function submitted(settled: PromiseSettledResult<Outcome>, file: string, source?: string): Submitted {
  const named = { file, ...(source ? { source } : {}) };
  if (settled.status === 'fulfilled') return { ...named, ...settled.value };
  const error = toHttpError(settled.reason);
  if (error.code === 'INTERNAL') throw settled.reason;
  return { ...named, kind: 'refused', error };
}

export function createApp(deps: WebDeps): Koa {
  const app = new Koa();
  const router = new Router();
  const body = multipartBody(deps.limits);
  const page = loadPageFiles();
  const recent = new RecentResults(deps.store);
  const thumbnails = new Thumbnails(deps.store, deps.limits.maxUploadBytes);
  const idempotency = new IdempotencyKeys(deps.store, { waitMs: deps.limits.answerWaitMs });
  const classify = async (ctx: Context, options: ClassifyOptions) => (await readUploads(ctx, deps, options)).submit();
  const openapi = JSON.stringify(
    openApiDocument({ auth: deps.auth, limits: deps.limits, classic: deps.classic, assets: page.names }),
  );

  router.get('/', (ctx) => page.index(ctx));
  router.get(`${ASSETS_PREFIX}:name`, (ctx) => page.asset(ctx, ctx.params.name ?? ''));

  router.post('/', body, async (ctx) => {
    // The classic protocol has no jobs: it waits for the answer as long as the request may take.
    const [outcome] = await classify(ctx, {
      field: deps.classic.field,
      allowRaw: false,
      waitMs: deps.limits.requestTimeoutMs,
      protocol: 'classic',
    });
    switch (outcome!.kind) {
      case 'refused':
        throw outcome!.error;
      case 'failed':
        throw failedImage(outcome!.id, outcome!.error);
      case 'pending':
        throw new HttpError(
          'SHUTTING_DOWN',
          'the web tier is shutting down; the image was accepted and will be classified',
          {
            requestId: outcome!.id,
            location: jobLocation(outcome!.id),
          },
        );
      case 'done':
        ctx.type = 'text/plain';
        ctx.body = classicAnswer(outcome!.result.file, outcome!.result.label, deps.classic.separator);
    }
  });

  router.post('/api/v1/classify', body, async (ctx) => {
    const request = ctx.is('application/json')
      ? await readReferences(ctx, deps)
      : await readUploads(ctx, deps, { allowRaw: true, waitMs: deps.limits.answerWaitMs, protocol: 'api' });
    send(
      ctx,
      await idempotency.run(ctx, 'classify', request.digest, async () => classifyAnswer(await request.submit())),
    );
  });

  batchRoutes(router, { batches: deps.batches, idempotency });

  router.get('/api/v1/jobs/:id', async (ctx) => {
    const id = jobIdOf(ctx);
    const job = await deps.submitter.job(id);
    if (!job) throw new HttpError('NO_SUCH_JOB', `no job ${id}`);
    ctx.body = job.status === 'done' ? { id, status: 'done', result: toImageAnswer(job.result) } : job;
  });

  router.get('/api/v1/jobs/:id/thumbnail', async (ctx) => {
    const id = jobIdOf(ctx);
    const jpeg = await thumbnails.of(id);
    if (!jpeg) throw new HttpError('NO_SUCH_JOB', `no input stored for job ${id}`);
    ctx.type = 'image/jpeg';
    // A job's input never changes: the thumbnail can be kept.
    ctx.set('Cache-Control', 'private, max-age=86400, immutable');
    ctx.body = jpeg;
  });

  router.get('/api/v1/results', async (ctx) => {
    const limit = limitOf(ctx, 20, MAX_RECENT);
    ctx.body = { results: await recent.latest(limit) };
  });

  router.get('/api/v1/status', async (ctx) => {
    ctx.body = await deps.status();
  });

  router.get('/api/v1/events', (ctx) => deps.live.attach(ctx));

  router.get('/api/v1/openapi.json', (ctx) => {
    ctx.type = 'application/json';
    ctx.body = openapi;
  });

  router.get('/metrics', async (ctx) => {
    if (!deps.metrics) throw new HttpError('NOT_FOUND', 'no metrics in this process');
    const { contentType, body } = await deps.metrics.render();
    ctx.type = contentType;
    ctx.body = body;
  });

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx) => {
    try {
      await deps.submitter.checkReady();
      ctx.body = { status: 'ready' };
    } catch (err) {
      throw new HttpError('NOT_READY', `not ready: ${(err as Error).message}`);
    }
  });

  app.use(errorMiddleware(deps.log, deps.metrics ? (code) => deps.metrics!.httpError(code) : undefined));
  app.use(async (ctx, next) => {
    // Upload time counts from the first byte of the request, before the body is parsed.
    ctx.state.receivedAt = performance.now();
    await next();
  });
  const keys = accessControl(deps.auth);
  if (keys) app.use(keys);
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: true }));
  return app;
}
