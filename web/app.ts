/**
 * The Koa application: routes only. Each route translates HTTP into a call on the submitter (the
 * one door into the pipeline) or the store, and its outcome back, errors through `toHttpError`.
 *
 *   GET  /                          the page (web/public/), and its files under /assets/<name>
 *   POST /                          classic protocol: multipart `myfile` → `200 text/plain` `<name>,<label>`
 *                                   (CLASSIC_FIELD and CLASSIC_SEPARATOR change the field and the comma)
 *   POST /api/v1/classify           one or more images (multipart, or a raw image body) → JSON per image,
 *                                   or 202 + Location when an answer takes longer than ANSWER_WAIT_MS
 *   GET  /api/v1/jobs/:id           a request's status or result, from the output bucket
 *   GET  /api/v1/jobs/:id/thumbnail a small JPEG of the request's input
 *   GET  /api/v1/results?limit=N    the most recent results, from the output bucket
 *   GET  /api/v1/status             queue depth, workers (desired / running), recent scaling decisions
 *   GET  /api/v1/events             the same, pushed as Server-Sent Events (web/live.ts)
 *   GET  /api/v1/openapi.json       the OpenAPI 3.1 document of all this
 *   GET  /healthz                   the process is alive
 *   GET  /readyz                    the queues and buckets are reachable
 *
 * With API_KEYS set, `accessControl` (web/auth.ts) asks for a key first.
 */
import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import { PipelineError } from '../pipeline/contract/errors.js';
import { classicAnswer } from '../pipeline/contract/keys.js';
import type { ClassificationResult, Protocol } from '../pipeline/contract/messages.js';
import { roundMs } from '../pipeline/contract/messages.js';
import type { Store } from '../pipeline/store.js';
import type { Outcome, Submitter } from '../pipeline/submit/submitter.js';
import type { ServiceStatus } from '../scaling/index.js';
import { ASSETS_PREFIX, type AuthOptions, accessControl } from './auth.js';
import { errorBody, errorMiddleware, HttpError, toHttpError } from './errors.js';
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

type Submitted = { readonly file: string } & (Outcome | { readonly kind: 'refused'; readonly error: HttpError });

/** Every image of the request through the submitter; one that could not be accepted does not hide the others. */
async function classifyAll(ctx: Context, deps: WebDeps, options: ClassifyOptions): Promise<Submitted[]> {
  const images = await receiveImages(ctx, deps.limits, options);
  const uploadMs = roundMs(performance.now() - (ctx.state.receivedAt as number));
  const settled = await Promise.allSettled(
    images.map((image) =>
      deps.submitter.submit(
        { file: image.originalName, bytes: image.bytes, contentType: image.mime, protocol: options.protocol, uploadMs },
        options.waitMs,
      ),
    ),
  );
  return settled.map((s, i): Submitted => {
    const file = images[i]!.originalName;
    if (s.status === 'fulfilled') return { file, ...s.value };
    if (s.reason instanceof PipelineError) return { file, kind: 'refused', error: toHttpError(s.reason) };
    throw s.reason;
  });
}

export function createApp(deps: WebDeps): Koa {
  const app = new Koa();
  const router = new Router();
  const body = multipartBody(deps.limits);
  const page = loadPageFiles();
  const recent = new RecentResults(deps.store);
  const thumbnails = new Thumbnails(deps.store);
  const classify = async (ctx: Context, options: ClassifyOptions) => {
    const outcomes = await classifyAll(ctx, deps, options);
    for (const o of outcomes) if (o.kind === 'done') recent.note(o.result);
    return outcomes;
  };
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
    const outcomes = await classify(ctx, { allowRaw: true, waitMs: deps.limits.answerWaitMs, protocol: 'api' });
    const errorOf = (o: Submitted) =>
      o.kind === 'refused' ? o.error : o.kind === 'failed' ? failedImage(o.id, o.error) : undefined;
    // One failure among several images is reported in place; only when nothing worked (and
    // nothing is still pending) is the whole request an error.
    if (outcomes.every((o) => errorOf(o) !== undefined)) throw errorOf(outcomes[0]!);
    const pending = outcomes.find((o) => o.kind === 'pending');
    if (pending) {
      ctx.status = 202;
      ctx.set('Location', jobLocation(pending.id));
    }
    ctx.body = {
      results: outcomes.map((o) => {
        if (o.kind === 'done') return toImageAnswer(o.result);
        if (o.kind === 'pending') return { id: o.id, file: o.file, status: 'pending', location: jobLocation(o.id) };
        return { file: o.file, ...errorBody(errorOf(o)!) };
      }),
    };
  });

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
