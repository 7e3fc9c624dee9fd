/**
 * HTTP errors. Whatever goes wrong, the client gets JSON — `{"error": {"code", "message", ...}}` —
 * with a 4xx status when the request itself is at fault and a 5xx when we are.
 */
import type { IncomingMessage } from 'node:http';
import type { Middleware } from 'koa';
import { PipelineError } from '../pipeline/errors.js';
import type { Logger } from '../pipeline/log.js';

export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const PIPELINE_STATUS: Record<PipelineError['code'], number> = {
  BAD_MESSAGE: 500,
  INPUT_MISSING: 500,
  UNDECODABLE_IMAGE: 422,
  MODEL_FAILED: 500,
  STORAGE_UNAVAILABLE: 503,
  QUEUE_UNAVAILABLE: 503,
  TIMEOUT: 504,
  SHUTTING_DOWN: 503,
  DEAD_LETTER: 500,
};

export function httpStatusOf(code: PipelineError['code']): number {
  return PIPELINE_STATUS[code];
}

export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof PipelineError) {
    return new HttpError(httpStatusOf(err.code), err.code, err.message, { stage: err.stage, ...pick(err.context, 'requestId') });
  }
  const status = (err as { status?: number; statusCode?: number }).status ?? (err as { statusCode?: number }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new HttpError(status, 'BAD_REQUEST', (err as Error).message);
  }
  return new HttpError(500, 'INTERNAL', 'internal error; see the service log');
}

function pick(context: Record<string, unknown>, key: string): Record<string, unknown> {
  return context[key] === undefined ? {} : { [key]: context[key] };
}

export function errorMiddleware(log: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new HttpError(404, 'NOT_FOUND', `no route for ${ctx.method} ${ctx.path}`);
      }
    } catch (err) {
      const http = toHttpError(err);
      const level = http.status >= 500 ? 'error' : 'info';
      log[level]('request failed', { method: ctx.method, path: ctx.path, status: http.status, code: http.code, error: err });
      ctx.status = http.status;
      ctx.type = 'application/json';
      ctx.body = { error: { code: http.code, message: http.message, ...http.details } };
      await drainRequest(ctx.req);
    }
  };
}

/** Past this, a refused upload is not read to its end: the connection is closed instead. */
const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * Reads and discards what is left of a refused request's body, so the client — still sending —
 * reads our JSON error instead of a reset connection.
 */
function drainRequest(req: IncomingMessage): Promise<void> {
  if (req.complete || req.destroyed) return Promise.resolve();
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > DRAIN_LIMIT_BYTES) return Promise.resolve();
  return new Promise((resolve) => {
    let seen = 0;
    const done = () => {
      clearTimeout(timer);
      req.off('data', onData);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > DRAIN_LIMIT_BYTES) done();
    };
    const timer = setTimeout(done, 10_000);
    req.on('data', onData);
    req.once('end', done);
    req.once('close', done);
    req.resume();
  });
}
