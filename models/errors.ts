/** Every failure raised by `models/` carries one of these codes and a context naming what failed. */
export type ModelErrorCode =
  | 'INVALID_MANIFEST'
  | 'INVALID_LABELS'
  | 'INVALID_OPTIONS'
  | 'UNKNOWN_MODEL'
  | 'MODEL_NOT_FOUND'
  | 'INVALID_MODEL_FILE'
  | 'HTTP_ERROR'
  | 'DOWNLOAD_FAILED'
  | 'CHECKSUM_MISMATCH'
  | 'CACHE_ERROR'
  | 'BACKEND_UNAVAILABLE'
  | 'MODEL_LOAD_FAILED'
  | 'MODEL_MISMATCH'
  | 'INVALID_INPUT'
  | 'INFERENCE_FAILED'
  | 'DISPOSED';

export type ModelErrorContext = Readonly<Record<string, unknown>>;

export class ModelError extends Error {
  override readonly name = 'ModelError';
  readonly code: ModelErrorCode;
  readonly context: ModelErrorContext;

  constructor(code: ModelErrorCode, message: string, context: ModelErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.context = context;
  }
}

export function isModelError(value: unknown, code?: ModelErrorCode): value is ModelError {
  return value instanceof ModelError && (code === undefined || value.code === code);
}

/**
 * Message of an unknown thrown value, for wrapping third-party errors. Includes the cause chain:
 * undici's `fetch failed` says nothing until its cause (`ECONNREFUSED`, ...) is shown.
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause === undefined ? '' : ` (${describeError(error.cause)})`;
  return `${error.message}${cause}`;
}
