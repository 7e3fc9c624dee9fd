/**
 * The Koa application: routes only. Everything it talks to arrives in `WebDeps`.
 *
 *   POST /                 classic protocol: multipart `myfile` → `200 text/plain` `<name>,<label>`
 *   POST /api/v1/classify  one or more images (multipart, or a raw image body) → JSON per image
 *   GET  /healthz          the process is alive
 *   GET  /readyz           the queues and buckets are reachable
 */
import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import { PipelineError } from '../pipeline/errors.js';
import { round } from '../pipeline/job.js';
import { sanitizeFileName, stem } from '../pipeline/keys.js';
import type { Logger } from '../pipeline/log.js';
import type { ClassificationResult } from '../pipeline/messages.js';
import { submitImage, type SubmitDeps } from '../pipeline/submit.js';
import { HttpError, errorMiddleware, httpStatusOf } from './errors.js';
import { multipartBody, receiveImages, type Limits, type ReceivedImage } from './uploads.js';

export interface WebDeps {
  readonly submit: SubmitDeps;
  readonly limits: Limits;
  readonly log: Logger;
  /** Throws when a dependency is not reachable. */
  readonly checkReady: () => Promise<void>;
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

type Outcome = { ok: true; answer: ImageAnswer } | { ok: false; file: string; error: HttpError };

async function classifyOne(deps: WebDeps, image: ReceivedImage, uploadMs: number): Promise<Outcome> {
  const started = performance.now();
  const requestId = randomUUID();
  const file = sanitizeFileName(image.originalName);
  try {
    const { answer, timings } = await submitImage(deps.submit, {
      requestId,
      file,
      bytes: image.bytes,
      contentType: image.mime,
      timings: { upload: uploadMs },
    });
    if (!answer.ok) {
      const error = new HttpError(httpStatusOf(answer.error.code), answer.error.code, answer.error.message, { requestId, stage: answer.error.stage });
      return { ok: false, file, error };
    }
    const r = answer.result;
    const total = round(uploadMs + performance.now() - started);
    return {
      ok: true,
      answer: { id: r.id, file: r.file, label: r.label, score: r.score, top5: r.top5, model: r.model, timings: { ...r.timings, enqueue: timings.enqueue, total } },
    };
  } catch (err) {
    if (err instanceof PipelineError) {
      return { ok: false, file, error: new HttpError(httpStatusOf(err.code), err.code, err.message, { requestId }) };
    }
    throw err;
  }
}

async function classifyAll(ctx: Context, deps: WebDeps, options: { field?: string; allowRaw: boolean }): Promise<Outcome[]> {
  const started = performance.now();
  const images = await receiveImages(ctx, deps.limits, options);
  const uploadMs = round(performance.now() - started);
  return Promise.all(images.map((image) => classifyOne(deps, image, uploadMs)));
}

export function createApp(deps: WebDeps): Koa {
  const app = new Koa();
  const router = new Router();
  const body = multipartBody(deps.limits);

  router.post('/', body, async (ctx) => {
    const [outcome] = await classifyAll(ctx, deps, { field: 'myfile', allowRaw: false });
    if (!outcome!.ok) throw outcome!.error;
    ctx.type = 'text/plain';
    ctx.body = `${stem(outcome!.answer.file)},${outcome!.answer.label}`;
  });

  router.post('/api/v1/classify', body, async (ctx) => {
    const outcomes = await classifyAll(ctx, deps, { allowRaw: true });
    // One failure among several images is reported in place; only when nothing worked is the
    // whole request an error.
    if (outcomes.every((o) => !o.ok)) throw (outcomes[0] as { error: HttpError }).error;
    ctx.body = {
      results: outcomes.map((o) => (o.ok ? o.answer : { file: o.file, error: { code: o.error.code, message: o.error.message, ...o.error.details } })),
    };
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
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: true }));
  return app;
}
