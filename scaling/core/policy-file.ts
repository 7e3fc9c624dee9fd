/** Loading a scaling policy from a JSON file (a partial policy; missing fields take the defaults). */

import { readJsonFile } from '../../lib/json-file.js';
import { ScalingError } from './errors.js';
import { DEFAULT_POLICY, resolvePolicy, type ScalingPolicy } from './policy.js';

/**
 * Reads `path` (JSON, any subset of `ScalingPolicy`), merges it over `base` and validates it.
 * Throws `ScalingError('POLICY_FILE')` for unreadable / malformed files and
 * `ScalingError('INVALID_POLICY')` (the field's context plus `context.file`) for bad values.
 */
export async function loadPolicy(path: string, base: ScalingPolicy = DEFAULT_POLICY): Promise<ScalingPolicy> {
  const parsed = await readJsonFile(path, {
    what: 'policy file',
    fail: (message, cause) => new ScalingError('POLICY_FILE', message, { file: path }, { cause }),
  });
  try {
    return resolvePolicy(parsed, base);
  } catch (err) {
    if (err instanceof ScalingError) {
      // Same code and context (including `field`), plus the file.
      throw new ScalingError(err.code, `${err.message} [in ${path}]`, { ...err.context, file: path }, { cause: err });
    }
    throw err;
  }
}
