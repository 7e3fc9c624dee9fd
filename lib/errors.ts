/**
 * The base of every error this project throws: a stable `code` (what went wrong, for clients, logs
 * and tests), a message written for people, the `context` that finds what failed (ids, keys,
 * fields), and the `cause`. Every folder's errors extend it, with the same constructor:
 * `(code, message, context?, { cause }?)`.
 *
 * It lives in lib/, the ground floor every other folder stands on (docs/architecture.md), so that
 * every folder can extend it.
 */
export type ErrorContext = Readonly<Record<string, unknown>>;

export class ServiceError<Code extends string = string> extends Error {
  override readonly name: string = 'ServiceError';

  constructor(
    readonly code: Code,
    message: string,
    readonly context: ErrorContext = {},
    options?: { readonly cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }

  /** What a log line or an API body may show: never the cause's stack. */
  toJSON(): { name: string; code: Code; message: string; context: ErrorContext } {
    return { name: this.name, code: this.code, message: this.message, context: this.context };
  }
}

/**
 * A message for an unknown thrown value, cause chain included: undici's `fetch failed` says
 * nothing until its cause (`ECONNREFUSED`, ...) is shown.
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause === undefined ? '' : ` (${describeError(error.cause)})`;
  return `${error.message}${cause}`;
}

/** Any error as a plain object for a log line: name, message, code, context and the cause chain. */
export function serializeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  for (const key of ['code', 'context'] as const) {
    const value = (err as unknown as Record<string, unknown>)[key];
    if (value !== undefined && !(key === 'context' && isEmpty(value))) out[key] = value;
  }
  if (err.cause !== undefined) out.cause = serializeError(err.cause);
  return out;
}

const isEmpty = (value: unknown) => typeof value === 'object' && value !== null && Object.keys(value).length === 0;
