/**
 * Typed errors for everything under `scaling/` (the calibration has its own `ValidateError`).
 *
 * Every failure carries a stable `code` (switch on it, never on the message) and a `context`
 * object with the values needed to act on it (the bad field, the missing IAM action, ...). They
 * extend the project's `ServiceError`, with its constructor: `(code, message, context?, { cause }?)`.
 */
import { type ErrorContext, ServiceError } from '../../lib/errors.js';

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

export class ScalingError extends ServiceError<ScalingErrorCode> {
  override readonly name: string = 'ScalingError';
}

/** What a policy field error says: the field (dotted path), what is wrong with it, the value given. */
export interface PolicyFieldProblem extends ErrorContext {
  readonly field: string;
  readonly reason: string;
  readonly value: unknown;
}

/** A policy field failed validation. `field` is a dotted path, e.g. `scaleToZero.emptyPeriods`. */
export class PolicyValidationError extends ScalingError {
  override readonly name: string = 'PolicyValidationError';
  declare readonly context: PolicyFieldProblem;

  constructor(
    code: 'INVALID_POLICY',
    message: string,
    context: PolicyFieldProblem,
    options?: { readonly cause?: unknown },
  ) {
    super(code, message, context, options);
  }

  get field(): string {
    return this.context.field;
  }

  /** `Invalid scaling policy: <field> <reason> (got <value>)`, with `{ field, reason, value }` as context. */
  static of(field: string, reason: string, value: unknown): PolicyValidationError {
    return new PolicyValidationError(
      'INVALID_POLICY',
      `Invalid scaling policy: ${field} ${reason} (got ${describeValue(value)})`,
      { field, reason, value },
    );
  }
}

/** A value as a message shows it: JSON, cut at 80 characters. */
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
