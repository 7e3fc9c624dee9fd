/**
 * The Koa application: routes only. Everything it talks to arrives in `WebDeps`.
 *
 *   POST /                 classic protocol: multipart `myfile` → `200 text/plain` `<name>,<label>`
 *   POST /api/v1/classify  one or more images (multipart, or a raw image body) → JSON per image,
 *                          or 202 + Location when an answer takes longer than ANSWER_WAIT_MS
 *   GET  /api/v1/jobs/:id  a request's status or result, from the output bucket
 *   GET  /api/v1/status    queue depth, workers (desired / running), recent scaling decisions
 *   GET  /healthz          the process is alive
 *   GET  /readyz           the queues and buckets are reachable
 */
import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import { PipelineError } from '../pipeline/errors.js';
import { round } from '../pipeline/job.js';
import { stem } from '../pipeline/keys.js';
import type { Logger } from '../pipeline/log.js';
import type { ClassificationResult, Protocol } from '../pipeline/messages.js';
import type { JobStatus } from '../pipeline/jobs.js';
import { submitImage, type SubmitDeps } from '../pipeline/submit.js';
import { HttpError, errorMiddleware, httpStatusOf } from './errors.js';
import { multipartBody, receiveImages, type Limits, type ReceivedImage } from './uploads.js';

export interface WebDeps {
  readonly submit: SubmitDeps;
  readonly limits: Limits & { readonly requestTimeoutMs: number; readonly answerWaitMs: number };
  readonly log: Logger;
  /** Throws when a dependency is not reachable. */
  readonly checkReady: () => Promise<void>;
  /** Queue depth, workers (desired / running) and recent scaling decisions. */
  readonly status: () => Promise<object>;
  /** Where a request stands, from the buckets. */
  readonly job: (id: string) => Promise<JobStatus | undefined>;
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
}

type Outcome =
  | { kind: 'done'; answer: ImageAnswer }
  | { kind: 'failed'; file: string; error: HttpError }
  | { kind: 'pending'; id: string; file: string };

const toImageAnswer = (r: ClassificationResult, extra: ClassificationResult['timings'] = {}): ImageAnswer => ({
  id: r.id,
  file: r.file,
  label: r.label,
  score: r.score,
  top5: r.top5,
  model: r.model,
  timings: { ...r.timings, ...extra },
});

const jobLocation = (id: string) => `/api/v1/jobs/${id}`;

/** Stores and enqueues one image, then waits up to `waitMs` for its answer. */
async function classifyOne(deps: WebDeps, image: ReceivedImage, uploadMs: number, options: ClassifyOptions): Promise<Outcome> {
  const { protocol, waitMs } = options;
  const started = performance.now();
  const requestId = randomUUID();
  const file = image.originalName;
  // Storage or queue failures here are thrown: nothing was accepted, the client gets a 503.
  const submitted = await submitImage(deps.submit, { requestId, file, bytes: image.bytes, contentType: image.mime, protocol, timings: { upload: uploadMs } });
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<'waited'>((resolve) => (timer = setTimeout(() => resolve('waited'), waitMs)));
  try {
    const answer = await Promise.race([submitted.answer, gaveUp]);
    if (answer === 'waited') {
      submitted.abandon();
      return { kind: 'pending', id: requestId, file };
    }
    if (!answer.ok) {
      return { kind: 'failed', file, error: new HttpError(httpStatusOf(answer.error.code), answer.error.code, answer.error.message, { requestId, stage: answer.error.stage }) };
    }
    const total = round(uploadMs + performance.now() - started);
    return { kind: 'done', answer: toImageAnswer(answer.result, { enqueue: submitted.timings.enqueue, total }) };
  } catch (err) {
    // Accepted but not answered here (the web tier is stopping): the work goes on, hand back a job.
    if (err instanceof PipelineError && err.code === 'SHUTTING_DOWN') return { kind: 'pending', id: requestId, file };
    if (err instanceof PipelineError) {
      return { kind: 'failed', file, error: new HttpError(httpStatusOf(err.code), err.code, err.message, { requestId, location: jobLocation(requestId) }) };
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

interface ClassifyOptions {
  /** The multipart field to read (any file field when absent). */
  readonly field?: string;
  /** Accept a raw image body as well as multipart. */
  readonly allowRaw: boolean;
  readonly waitMs: number;
  readonly protocol: Protocol;
}

async function classifyAll(ctx: Context, deps: WebDeps, options: ClassifyOptions): Promise<Outcome[]> {
  const images = await receiveImages(ctx, deps.limits, options);
  const uploadMs = round(performance.now() - (ctx.state.receivedAt as number));
  // One image that could not be stored or queued must not hide the others that were.
  const settled = await Promise.allSettled(images.map((image) => classifyOne(deps, image, uploadMs, options)));
  return settled.map((s, i): Outcome => {
    if (s.status === 'fulfilled') return s.value;
    const file = images[i]!.originalName;
    if (s.reason instanceof PipelineError) return { kind: 'failed', file, error: new HttpError(httpStatusOf(s.reason.code), s.reason.code, s.reason.message) };
    throw s.reason;
  });
}

export function createApp(deps: WebDeps): Koa {
  const app = new Koa();
  const router = new Router();
  const body = multipartBody(deps.limits);

  router.post('/', body, async (ctx) => {
    // The classic protocol has no jobs: it waits for the answer as long as the request may take.
    const outcomes = await classifyAll(ctx, deps, { field: 'myfile', allowRaw: false, waitMs: deps.limits.requestTimeoutMs, protocol: 'classic' });
    const [outcome] = outcomes;
    if (outcome!.kind === 'failed') throw outcome!.error;
    if (outcome!.kind === 'pending') {
      throw new HttpError(503, 'SHUTTING_DOWN', 'the web tier is shutting down; the image was accepted and will be classified', {
        requestId: outcome!.id,
        location: jobLocation(outcome!.id),
      });
    }
    ctx.type = 'text/plain';
    ctx.body = `${stem(outcome!.answer.file)},${outcome!.answer.label}`;
  });

  router.post('/api/v1/classify', body, async (ctx) => {
    const outcomes = await classifyAll(ctx, deps, { allowRaw: true, waitMs: deps.limits.answerWaitMs, protocol: 'api' });
    // One failure among several images is reported in place; only when nothing worked (and
    // nothing is still pending) is the whole request an error.
    if (outcomes.every((o) => o.kind === 'failed')) throw (outcomes[0] as { error: HttpError }).error;
    const pending = outcomes.find((o) => o.kind === 'pending');
    if (pending) {
      ctx.status = 202;
      ctx.set('Location', jobLocation(pending.id));
    }
    ctx.body = {
      results: outcomes.map((o) =>
        o.kind === 'done'
          ? o.answer
          : o.kind === 'pending'
            ? { id: o.id, file: o.file, status: 'pending', location: jobLocation(o.id) }
            : { file: o.file, error: { code: o.error.code, message: o.error.message, ...o.error.details } },
      ),
    };
  });

  router.get('/api/v1/jobs/:id', async (ctx) => {
    const id = ctx.params.id ?? '';
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) {
      throw new HttpError(400, 'BAD_JOB_ID', `${JSON.stringify(id.slice(0, 80))} is not a job id`);
    }
    const job = await deps.job(id);
    if (!job) throw new HttpError(404, 'NO_SUCH_JOB', `no job ${id}`);
    ctx.body = job.status === 'done' ? { id, status: 'done', result: toImageAnswer(job.result) } : job;
  });

  router.get('/api/v1/status', async (ctx) => {
    ctx.body = await deps.status();
  });

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx) => {
    try {
      await deps.checkReady();
      ctx.body = { status: 'ready' };
    } catch (err) {
      throw new HttpError(503, 'NOT_READY', `not ready: ${(err as Error).message}`);
    }
  });

  app.use(errorMiddleware(deps.log));
  app.use(async (ctx, next) => {
    // Upload time counts from the first byte of the request, before the body is parsed.
    ctx.state.receivedAt = performance.now();
    await next();
  });
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: true }));
  return app;
}
