/** Loading a scaling policy from a JSON file (a partial policy; missing fields take the defaults). */

import { readFile } from 'node:fs/promises';
import { ScalingError } from './errors.js';
import { DEFAULT_POLICY, resolvePolicy, type ScalingPolicy } from './policy.js';

/**
 * Reads `path` (JSON, any subset of `ScalingPolicy`), merges it over `base` and validates it.
 * Throws `ScalingError('POLICY_FILE')` for unreadable / malformed files and
 * `PolicyValidationError('INVALID_POLICY')` (with `context.file`) for bad values.
 */
export async function loadPolicy(path: string, base: ScalingPolicy = DEFAULT_POLICY): Promise<ScalingPolicy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ScalingError('POLICY_FILE', `Cannot read policy file ${path}: ${(err as Error).message}`, { file: path }, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ScalingError('POLICY_FILE', `Policy file ${path} is not valid JSON: ${(err as Error).message}`, { file: path }, { cause: err });
  }
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
