/**
 * Errors of the deployment (`deploy/`): a bad configuration names its field (a dotted path, as in
 * the config file and in `-c field=value`), a missing release artifact says how to build it.
 */
import { ServiceError } from '../lib/errors.js';

export type DeployErrorCode =
  /** A deployment parameter failed validation; `context.field` names it. */
  | 'INVALID_DEPLOY_CONFIG'
  /** The config file could not be read or is not JSON. */
  | 'DEPLOY_CONFIG_FILE'
  /** The release artifact is missing, or could not be built. */
  | 'RELEASE';

export class DeployError extends ServiceError<DeployErrorCode> {
  override readonly name: string = 'DeployError';

  /** `<field> must be <expected>, got <value>`, with `{ field, expected, got }` as context. */
  static invalid(field: string, expected: string, got: unknown): DeployError {
    return new DeployError('INVALID_DEPLOY_CONFIG', `${field} must be ${expected}, got ${show(got)}`, {
      field,
      expected,
      got: got === undefined ? null : got,
    });
  }

  /** The field at fault (INVALID_DEPLOY_CONFIG). */
  get field(): string | undefined {
    const field = this.context.field;
    return typeof field === 'string' ? field : undefined;
  }
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
