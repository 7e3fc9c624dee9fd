/**
 * Typed errors for everything under `scaling/`.
 *
 * Every failure carries a stable `code` (switch on it, never on the message) and a `context`
 * object with the values needed to act on it (the bad field, the missing IAM action, ...).
 */

export type ScalingErrorCode =
  /** A scaling policy (file or object) failed validation; `context.field` names the field. */
  | 'INVALID_POLICY'
  /** A policy file could not be read or parsed. */
  | 'POLICY_FILE'
  /** Command-line options are missing or malformed; `context.option` names the flag. */
  | 'INVALID_OPTIONS'
  /** The Auto Scaling group does not exist in the region. */
  | 'GROUP_NOT_FOUND'
  /** The SQS queue does not exist (or is not visible to the caller). */
  | 'QUEUE_NOT_FOUND'
  /** AWS refused a request for lack of an IAM permission; `context.action` names it. */
  | 'ACCESS_DENIED'
  /** Any other AWS error; `context.command` and `context.awsErrorName` say which. */
  | 'AWS_ERROR'
  /** A trace file could not be read, parsed or validated. */
  | 'INVALID_TRACE'
  /** Invalid simulator configuration; `context.field` names the field. */
  | 'INVALID_SIMULATION';

export type ErrorContext = Readonly<Record<string, unknown>>;

export class ScalingError extends Error {
  readonly code: ScalingErrorCode;
  readonly context: ErrorContext;

  constructor(code: ScalingErrorCode, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ScalingError';
    this.code = code;
    this.context = context;
  }

  /** A JSON-safe view for structured logs. */
  toJSON(): { name: string; code: ScalingErrorCode; message: string; context: ErrorContext } {
    return { name: this.name, code: this.code, message: this.message, context: this.context };
  }
}

/** A policy field failed validation. `field` is a dotted path, e.g. `scaleToZero.emptyPeriods`. */
export class PolicyValidationError extends ScalingError {
  readonly field: string;

  constructor(field: string, reason: string, value: unknown) {
    super('INVALID_POLICY', `Invalid scaling policy: ${field} ${reason} (got ${describeValue(value)})`, {
      field,
      reason,
      value,
    });
    this.name = 'PolicyValidationError';
    this.field = field;
  }
}

export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  try {
    const text = JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    return String(value);
  }
}

export function isScalingError(err: unknown): err is ScalingError {
  return err instanceof ScalingError;
}
