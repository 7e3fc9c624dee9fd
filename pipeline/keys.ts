/**
 * Object keys. Clients name their files; we never use those names as paths. An input is stored at
 * `<requestId>/<safe name>`, its full result at `results/<requestId>.json`, and — the classic
 * protocol — `<name>` → `<name>,<label>` in the output bucket, where `name` is the safe file name
 * without its extension.
 */

const MAX_NAME = 100;

/** A file name reduced to `[A-Za-z0-9._-]`, never empty, never hidden, never a path. */
export function sanitizeFileName(raw: string | undefined | null): string {
  const base = (raw ?? '').split(/[/\\]/).pop() ?? '';
  let name = base
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // accents, once decomposed
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^[._]+/, '');
  if (name.length > MAX_NAME) {
    const dot = name.lastIndexOf('.');
    const ext = dot > 0 && name.length - dot <= 10 ? name.slice(dot) : '';
    name = name.slice(0, MAX_NAME - ext.length) + ext;
  }
  return name === '' || /^[._-]*$/.test(name) ? 'upload' : name;
}

/** `n01443537_goldfish.JPEG` → `n01443537_goldfish`. */
export function stem(fileName: string): string {
  const dot = fileName.lastIndexOf('.');
  return dot > 0 ? fileName.slice(0, dot) : fileName;
}

export const inputKey = (requestId: string, safeName: string): string => `${requestId}/${safeName}`;

export const RESULTS_PREFIX = 'results/';
export const resultKey = (requestId: string): string => `${RESULTS_PREFIX}${requestId}.json`;

/** The request id of a `results/<id>.json` key, or undefined for any other key. */
export function requestIdOfResultKey(key: string, prefix = RESULTS_PREFIX): string | undefined {
  if (!key.startsWith(prefix) || !key.endsWith('.json')) return undefined;
  const id = key.slice(prefix.length, -'.json'.length);
  return id && !id.includes('/') ? id : undefined;
}

/** Splits an input key back into its request id and file name; undefined if it is not one of ours. */
export function parseInputKey(key: string): { requestId: string; fileName: string } | undefined {
  const match = /^([A-Za-z0-9-]{8,64})\/([^/]+)$/.exec(key);
  return match ? { requestId: match[1]!, fileName: match[2]! } : undefined;
}

/** Requests that failed every delivery: the dead-letter watcher records them here (output bucket). */
export const DEAD_LETTERS_PREFIX = 'dead-letters/';
export const deadLetterKey = (requestId: string): string => `${DEAD_LETTERS_PREFIX}${requestId}.json`;
