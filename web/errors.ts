/**
 * HTTP errors. Whatever goes wrong, the client gets JSON — `{"error": {"code", "message", ...}}` —
 * with a 4xx status when the request itself is at fault and a 5xx when we are. Every code has one
 * status, in one table; `toHttpError` turns any error (the pipeline's, an image check's, Koa's)
 * into one.
 */
import type { IncomingMessage } from 'node:http';
import type { Middleware } from 'koa';
import { type ErrorContext, ServiceError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { ErrorCode } from '../pipeline/contract/errors.js';
import { PipelineError } from '../pipeline/contract/errors.js';
import { SourceError } from '../pipeline/contract/sources.js';
import { ImageError, type ImageErrorCode } from '../pipeline/images.js';
import { NotifyError } from '../pipeline/submit/notify.js';
import { SourceAccessError } from '../pipeline/submit/sources.js';

/** Every error code the HTTP API answers with, and its status. */
export const HTTP_STATUS = {
  // the request is at fault
  NO_FILE: 400,
  ONE_FILE_ONLY: 400,
  EMPTY_FILE: 400,
  BAD_FILE_NAME: 400,
  BAD_MULTIPART: 400,
  BAD_JOB_ID: 400,
  BAD_PARAMETER: 400,
  BAD_REQUEST: 400,
  BAD_SOURCE: 400,
  BAD_NOTIFY: 400,
  BAD_BATCH_ID: 400,
  BAD_IDEMPOTENCY_KEY: 400,
  UNAUTHORIZED: 401,
  SOURCE_NOT_ALLOWED: 403,
  NOTIFY_NOT_ALLOWED: 403,
  NOT_FOUND: 404,
  NO_SUCH_JOB: 404,
  NO_SUCH_BATCH: 404,
  SOURCE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  IDEMPOTENCY_KEY_IN_PROGRESS: 409,
  BATCH_FINISHED: 409,
  CANCELLED: 409,
  TOO_LARGE: 413,
  TOO_MANY_FILES: 413,
  NOT_AN_IMAGE: 415,
  UNSUPPORTED_IMAGE_TYPE: 415,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNDECODABLE_IMAGE: 422,
  IMAGE_TOO_LARGE: 422,
  IDEMPOTENCY_KEY_REUSED: 422,
  // we are
  INTERNAL: 500,
  BAD_MESSAGE: 500,
  INPUT_MISSING: 500,
  MODEL_FAILED: 500,
  DEAD_LETTER: 500,
  STORAGE_UNAVAILABLE: 503,
  QUEUE_UNAVAILABLE: 503,
  SHUTTING_DOWN: 503,
  OVERLOADED: 503,
  NOT_READY: 503,
  TIMEOUT: 504,
} as const satisfies Record<ErrorCode | ImageErrorCode | string, number>;

export type HttpErrorCode = keyof typeof HTTP_STATUS;

export class HttpError extends ServiceError<HttpErrorCode> {
  override readonly name = 'HttpError';

  get status(): number {
    return HTTP_STATUS[this.code];
  }
}

/** Any error as an HttpError: ours keep their code (and the fields a client may see), the rest are 4xx or INTERNAL. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof PipelineError) {
    const { requestId, location, retryAfterSeconds } = err.context;
    return new HttpError(err.code, err.message, {
      stage: err.stage,
      ...(requestId === undefined ? {} : { requestId }),
      ...(location === undefined ? {} : { location }),
      ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    });
  }
  // Errors about what the client sent or named: their code is the answer's, their context is theirs to see.
  if (
    err instanceof ImageError ||
    err instanceof SourceError ||
    err instanceof SourceAccessError ||
    err instanceof NotifyError
  ) {
    return new HttpError(err.code, err.message, err.context);
  }
  const status =
    (err as { status?: number; statusCode?: number }).status ?? (err as { statusCode?: number }).statusCode;
  if (status === 405) return new HttpError('METHOD_NOT_ALLOWED', (err as Error).message);
  if (typeof status === 'number' && status >= 400 && status < 500)
    return new HttpError('BAD_REQUEST', (err as Error).message);
  return new HttpError('INTERNAL', 'internal error; see the service log');
}

/** The JSON body of an error: code, message and the fields a client may see. */
export function errorBody(error: HttpError): { error: { code: HttpErrorCode; message: string } & ErrorContext } {
  return { error: { code: error.code, message: error.message, ...error.context } };
}

/**
 * Every error becomes its JSON answer (with `Retry-After` when the error says when to come back),
 * is counted by code (`onError`) and logged with the request's id when it has one.
 */
export function errorMiddleware(log: Logger, onError?: (code: HttpErrorCode) => void): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new HttpError('NOT_FOUND', `no route for ${ctx.method} ${ctx.path}`);
      }
    } catch (err) {
      const http = toHttpError(err);
      // Load shed on purpose is the service working (and counted in /metrics): not an error to page anyone about.
      const level = http.status >= 500 && http.code !== 'OVERLOADED' ? 'error' : 'info';
      const { requestId } = http.context;
      log[level]('request failed', {
        method: ctx.method,
        path: ctx.path,
        status: http.status,
        code: http.code,
        ...(requestId === undefined ? {} : { requestId }),
        error: err,
      });
      onError?.(http.code);
      ctx.status = http.status;
      ctx.type = 'application/json';
      const retryAfter = http.context.retryAfterSeconds;
      if (typeof retryAfter === 'number') ctx.set('Retry-After', String(retryAfter));
      ctx.body = errorBody(http);
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
