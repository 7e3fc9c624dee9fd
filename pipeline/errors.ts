/**
 * Typed pipeline errors. Each carries a stable `code` (what went wrong, for clients and logs), the
 * `stage` it happened in, whether trying again can help (`retryable`), and the context needed to
 * find the request again (request id, bucket, key...).
 */

export type Stage = 'ingest' | 'enqueue' | 'consume' | 'fetch' | 'decode' | 'classify' | 'persist' | 'respond' | 'answer';

export type ErrorCode =
  | 'BAD_MESSAGE'
  | 'INPUT_MISSING'
  | 'UNDECODABLE_IMAGE'
  | 'MODEL_FAILED'
  | 'STORAGE_UNAVAILABLE'
  | 'QUEUE_UNAVAILABLE'
  | 'TIMEOUT'
  | 'SHUTTING_DOWN'
  | 'DEAD_LETTER';

export class PipelineError extends Error {
  override readonly name = 'PipelineError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly stage: Stage,
    readonly retryable: boolean,
    readonly context: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  toJSON(): { code: ErrorCode; message: string; stage: Stage } {
    return { code: this.code, message: this.message, stage: this.stage };
  }
}

/** AWS SDK errors that are worth retrying later: throttling, 5xx, and the network itself. */
export function isTransientAwsError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const meta = (err as { $metadata?: { httpStatusCode?: number }; $retryable?: unknown; code?: string }) ?? {};
  const status = meta.$metadata?.httpStatusCode;
  if (meta.$retryable) return true;
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  const code = meta.code ?? '';
  return ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND'].includes(code) ||
    /socket hang up|ECONNREFUSED|ECONNRESET|TimeoutError/.test(`${err.name} ${err.message}`);
}
