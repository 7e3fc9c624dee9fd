/**
 * Typed errors of `npm run scaling:validate`: a stable `code` and the values needed to act on it,
 * on the project's `ServiceError` (constructor `(code, message, context?, { cause }?)`).
 */
import { ServiceError } from '../../../lib/errors.js';

export type ValidateErrorCode =
  /** Command-line options are malformed; `context.option` names the flag. */
  | 'INVALID_OPTIONS'
  /** The service did not start, or answered something unexpected. */
  | 'SERVICE'
  /** A trace run went past its time limit. */
  | 'TIMEOUT'
  /** The run did not produce what the simulator's parameters are derived from. */
  | 'CALIBRATION';

export class ValidateError extends ServiceError<ValidateErrorCode> {
  override readonly name: string = 'ValidateError';
}
