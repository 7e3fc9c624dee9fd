/**
 * Pipeline errors and the one rule about them. Each error carries a stable `code` (what went wrong,
 * for clients and logs), the `stage` it happened in, whether trying again can help (`retryable`),
 * and the context that finds the request again (request id, bucket, key...).
 *
 * `settlementOf` is the rule every stage follows: what an outcome means for the request's message,
 * its stored record and its waiting client.
 */

import { isTransientAwsError } from '../../lib/aws/errors.js';
import { type ErrorContext, ServiceError } from '../../lib/errors.js';

export type Stage =
  | 'ingest'
  | 'enqueue'
  | 'consume'
  | 'fetch'
  | 'decode'
  | 'classify'
  | 'persist'
  | 'respond'
  | 'answer';

export type ErrorCode =
  | 'BAD_MESSAGE'
  | 'INPUT_MISSING'
  | 'UNDECODABLE_IMAGE'
  | 'MODEL_FAILED'
  | 'STORAGE_UNAVAILABLE'
  | 'QUEUE_UNAVAILABLE'
  | 'TIMEOUT'
  | 'SHUTTING_DOWN'
  | 'OVERLOADED'
  | 'DEAD_LETTER'
  /** An object classified by reference: not an image, a type we do not decode, too many bytes or pixels. */
  | 'NOT_AN_IMAGE'
  | 'UNSUPPORTED_IMAGE_TYPE'
  | 'TOO_LARGE'
  | 'IMAGE_TOO_LARGE'
  /** The request's batch was cancelled: dropped without classifying. */
  | 'CANCELLED';

/** How a pipeline error travels in an answer message and a failure record. */
export interface AnswerError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly stage: Stage;
}

export type PipelineContext = ErrorContext & { readonly stage: Stage; readonly retryable: boolean };

export class PipelineError extends ServiceError<ErrorCode> {
  override readonly name = 'PipelineError';
  declare readonly context: PipelineContext;

  constructor(code: ErrorCode, message: string, context: PipelineContext, options?: { readonly cause?: unknown }) {
    super(code, message, context, options);
  }

  get stage(): Stage {
    return this.context.stage;
  }

  /** Trying again later may succeed (an outage); false: it never will (a corrupt image). */
  get retryable(): boolean {
    return this.context.retryable;
  }

  toAnswerError(): AnswerError {
    return { code: this.code, message: this.message, stage: this.stage };
  }
}

/** Turns anything thrown in `stage` into a PipelineError: AWS outages are retryable, the rest is `fallback`. */
export function asPipelineError(err: unknown, stage: Stage, context: ErrorContext, fallback: ErrorCode): PipelineError {
  if (err instanceof PipelineError) return err;
  const transient = isTransientAwsError(err) || isTransientAwsError((err as { cause?: unknown })?.cause);
  const code: ErrorCode = transient
    ? stage === 'enqueue' || stage === 'respond' || stage === 'consume'
      ? 'QUEUE_UNAVAILABLE'
      : 'STORAGE_UNAVAILABLE'
    : fallback;
  const message = err instanceof Error ? err.message : String(err);
  return new PipelineError(
    code,
    `${stage} failed: ${message}`,
    { ...context, stage, retryable: transient },
    { cause: err },
  );
}

/** What an image's outcome means for the rest of the pipeline. */
export interface Settlement {
  /** Delete the request message: the outcome is final. Otherwise SQS delivers it again. */
  readonly final: boolean;
  /** Write `results/<id>.json`: the result, or the failure a client holding the job id will read. */
  readonly record: boolean;
  /** Tell the waiting web tier (when the request names one). */
  readonly answer: boolean;
}

/**
 * The one rule. Success: final, recorded, answered. A failure that may pass (an outage, a crash):
 * nothing — the message comes back and the client keeps waiting for the real answer. A message
 * nobody can read, or one of a cancelled batch: final (it will never be classified) with nobody to
 * tell. Any other failure is final, recorded and answered.
 */
export function settlementOf(failure: PipelineError | undefined): Settlement {
  if (failure === undefined) return { final: true, record: true, answer: true };
  if (failure.retryable) return { final: false, record: false, answer: false };
  if (failure.code === 'BAD_MESSAGE' || failure.code === 'CANCELLED')
    return { final: true, record: false, answer: false };
  return { final: true, record: true, answer: true };
}
