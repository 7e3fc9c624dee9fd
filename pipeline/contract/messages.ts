/**
 * What travels on the queues. Requests go web tier → request queue → worker; answers go worker →
 * the web-tier process's own response queue. Both are versioned JSON, parsed and checked on receipt.
 */
import { ServiceError } from '../../lib/errors.js';
import type { ClassScore } from '../../models/types.js';
import type { AnswerError } from './errors.js';

/** Milliseconds, rounded to hundredths: how every stage timing is reported. */
export const roundMs = (ms: number): number => Math.round(ms * 100) / 100;

/** Milliseconds per stage; absent stages did not run for this image. */
export type Timings = Partial<
  Record<
    | 'upload'
    | 's3Put'
    | 'enqueue'
    | 'queueWait'
    | 's3Get'
    | 'decode'
    | 'infer'
    | 'persist'
    | 'respond'
    | 'cacheLookup'
    | 'total',
    number
  >
>;

/**
 * How an image came in. Inputs of the classic protocol (`POST /`) also get the seed's output object
 * `<name>` → `<name>,<label>`; API uploads are answered by id only (`results/<id>.json`), so they never
 * overwrite a classic result that happens to share their file name. Stored as the input object's
 * `protocol` metadata, where the worker reads it with the image itself.
 */
export type Protocol = 'classic' | 'api';

/** An input's protocol from its metadata; inputs stored before the metadata existed are classic. */
export const protocolOf = (metadata: Record<string, string> | undefined): Protocol =>
  metadata?.protocol === 'api' ? 'api' : 'classic';

/** One object of a batch: which batch, and its place in the listing (0, 1, 2, ... in key order). */
export interface BatchItemRef {
  readonly id: string;
  readonly seq: number;
}

export interface ImageRequest {
  readonly v: 1;
  readonly requestId: string;
  readonly bucket: string;
  readonly key: string;
  /**
   * `reference`: an object of the client's own bucket, classified where it is (not checked by the
   * web tier, not ours: no metadata of ours). Absent: an upload the web tier stored and checked.
   */
  readonly kind?: 'reference';
  /** How it came in, when the request says (by-reference requests); else read from the input's metadata. */
  readonly protocol?: Protocol;
  /** Set for the objects of a batch: its result is the batch's, counted by its coordinator. */
  readonly batch?: BatchItemRef;
  /** The client's file name, exactly as sent, e.g. `n01443537_goldfish.JPEG` or `carpenter's kit.jpg`. */
  readonly file: string;
  /** Queue URL to answer on; absent for work nobody waits for (replay). */
  readonly replyTo?: string;
  /** Epoch ms when the request was enqueued. */
  readonly enqueuedAt: number;
  /** Stage timings measured so far (by the web tier). */
  readonly timings: Timings;
}

export interface ClassificationResult {
  readonly id: string;
  readonly file: string;
  /** Short class name (text before the first comma of the top-1 label). */
  readonly label: string;
  readonly score: number;
  readonly top5: readonly ClassScore[];
  readonly model: string;
  readonly backend: string;
  /** Images classified together in the inference batch that held this one. */
  readonly batch: number;
  /** `<host>:<pid>` of the worker process that classified it (which instance did what). */
  readonly worker: string;
  readonly timings: Timings;
  readonly completedAt: string;
  /**
   * Answered from the result cache: the same bytes were classified before by the same model with
   * the same preprocessing; `cachedFrom` is that earlier request's id (whose worker and batch these are).
   */
  readonly cachedFrom?: string;
}

export type Answer =
  | { readonly v: 1; readonly requestId: string; readonly ok: true; readonly result: ClassificationResult }
  | { readonly v: 1; readonly requestId: string; readonly ok: false; readonly error: AnswerError };

/**
 * A message body as JSON with every non-ASCII character escaped (`\u00e9`): the same JSON to any
 * parser, and a body no SQS implementation can refuse for its characters (fauxqs, for one, rejects
 * characters outside the Basic Multilingual Plane, which real SQS accepts).
 */
export function serializeMessage(message: ImageRequest | Answer): string {
  return JSON.stringify(message).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** What a client hears about a request that failed every delivery (answer, job status). */
export function deadLetterError(request: ImageRequest, maxReceives: number): AnswerError {
  return {
    code: 'DEAD_LETTER',
    stage: 'consume',
    message: `processing ${request.file} failed ${maxReceives} times; the image is kept and is re-driven by \`npm run replay -- --dlq\``,
  };
}

export class MessageFormatError extends ServiceError<'BAD_MESSAGE'> {
  override readonly name = 'MessageFormatError';
}

function parseObject(body: string | undefined, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(body ?? '');
  } catch {
    throw new MessageFormatError('BAD_MESSAGE', `${what} is not JSON`, { body: body?.slice(0, 200) });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MessageFormatError('BAD_MESSAGE', `${what} is not a JSON object`, { body: body?.slice(0, 200) });
  }
  const object = value as Record<string, unknown>;
  if (object.v !== 1)
    throw new MessageFormatError('BAD_MESSAGE', `${what} has unknown version ${String(object.v)}`, { v: object.v });
  return object;
}

function requireString(object: Record<string, unknown>, field: string, what: string): string {
  const value = object[field];
  if (typeof value !== 'string' || value === '')
    throw new MessageFormatError('BAD_MESSAGE', `${what} lacks ${field}`, { field });
  return value;
}

export function parseImageRequest(body: string | undefined): ImageRequest {
  const o = parseObject(body, 'request message');
  const what = 'request message';
  const replyTo = o.replyTo === undefined ? undefined : requireString(o, 'replyTo', what);
  if (o.kind !== undefined && o.kind !== 'reference')
    throw new MessageFormatError('BAD_MESSAGE', `${what} has unknown kind ${String(o.kind)}`, { kind: o.kind });
  if (o.protocol !== undefined && o.protocol !== 'api' && o.protocol !== 'classic')
    throw new MessageFormatError('BAD_MESSAGE', `${what} has unknown protocol ${String(o.protocol)}`, {});
  const batch = o.batch === undefined ? undefined : batchRef(o.batch, what);
  return {
    v: 1,
    requestId: requireString(o, 'requestId', what),
    bucket: requireString(o, 'bucket', what),
    key: requireString(o, 'key', what),
    ...(o.kind === 'reference' ? { kind: 'reference' as const } : {}),
    ...(o.protocol === undefined ? {} : { protocol: o.protocol as Protocol }),
    ...(batch ? { batch } : {}),
    file: requireString(o, 'file', what),
    ...(replyTo ? { replyTo } : {}),
    enqueuedAt: typeof o.enqueuedAt === 'number' ? o.enqueuedAt : Date.now(),
    timings: typeof o.timings === 'object' && o.timings !== null ? (o.timings as Timings) : {},
  };
}

function batchRef(value: unknown, what: string): BatchItemRef {
  const ref = value as { id?: unknown; seq?: unknown } | null;
  if (
    typeof ref !== 'object' ||
    ref === null ||
    typeof ref.id !== 'string' ||
    ref.id === '' ||
    !Number.isInteger(ref.seq) ||
    (ref.seq as number) < 0
  ) {
    throw new MessageFormatError('BAD_MESSAGE', `${what} has a malformed batch (id and seq)`, {
      batch: JSON.stringify(value).slice(0, 200),
    });
  }
  return { id: ref.id, seq: ref.seq as number };
}

export function parseAnswer(body: string | undefined): Answer {
  const o = parseObject(body, 'answer message');
  const requestId = requireString(o, 'requestId', 'answer message');
  if (o.ok === true && typeof o.result === 'object' && o.result !== null) {
    return { v: 1, requestId, ok: true, result: o.result as ClassificationResult };
  }
  if (o.ok === false && typeof o.error === 'object' && o.error !== null) {
    return { v: 1, requestId, ok: false, error: o.error as AnswerError };
  }
  throw new MessageFormatError('BAD_MESSAGE', 'answer message has neither result nor error', { requestId });
}
