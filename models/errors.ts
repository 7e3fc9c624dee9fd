import { type ErrorContext, ServiceError } from '../lib/errors.js';

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
  /** A tfjs layers model the ONNX converter cannot convert: a layer class or attribute value it does not implement. */
  | 'UNSUPPORTED_LAYER'
  /** ... or a graph it does not handle: several inputs or outputs, shared layers, layers with several inputs. */
  | 'UNSUPPORTED_TOPOLOGY'
  | 'INVALID_INPUT'
  | 'INFERENCE_FAILED'
  | 'DISPOSED';

export type ModelErrorContext = ErrorContext;

export class ModelError extends ServiceError<ModelErrorCode> {
  override readonly name = 'ModelError';
}

export function isModelError(value: unknown, code?: ModelErrorCode): value is ModelError {
  return value instanceof ModelError && (code === undefined || value.code === code);
}

export { describeError } from '../lib/errors.js';
