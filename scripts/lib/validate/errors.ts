/** Typed errors of `npm run scaling:validate`: a stable `code` and the values needed to act on it. */

export type ValidateErrorCode =
  /** Command-line options are malformed; `context.option` names the flag. */
  | 'INVALID_OPTIONS'
  /** The service did not start, or answered something unexpected. */
  | 'SERVICE'
  /** A trace run went past its time limit. */
  | 'TIMEOUT'
  /** The run did not produce what the simulator's parameters are derived from. */
  | 'CALIBRATION';

export class ValidateError extends Error {
  override readonly name = 'ValidateError';
  constructor(
    readonly code: ValidateErrorCode,
    message: string,
    readonly context: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
