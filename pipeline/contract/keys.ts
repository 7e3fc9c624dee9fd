/**
 * Object keys and file names. Clients name their files; we never use those names as paths. An input
 * is stored at `<requestId>/<safe name>`, its full result at `results/<requestId>.json`, and — the
 * classic protocol — `<name>` → `<name>,<label>` in the output bucket, where `name` is the client's
 * own file name without its extension, exactly as sent (the classic client matches answers by it).
 */

const MAX_NAME = 100;

/** The longest client file name accepted, in UTF-8 bytes (what file systems allow). */
export const MAX_CLIENT_NAME_BYTES = 255;

/** The last path segment of what a client called its file (`C:\\photos\\a.jpg` → `a.jpg`). */
export function clientFileName(raw: string | undefined | null): string {
  return (raw ?? '').split(/[/\\]/).pop() ?? '';
}

// C0 and C1 controls (NUL included), DEL, and what SQS cannot carry in a message: lone surrogates
// and the non-characters U+FFFE/U+FFFF.
const UNSENDABLE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
  /[\u0000-\u001f\u007f-\u009f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/u;

/** Why a client file name cannot be used as it is, or undefined when it can. */
export function fileNameProblem(name: string): string | undefined {
  const bad = UNSENDABLE.exec(name);
  if (bad)
    return `contains the control character U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} at position ${bad.index}`;
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_CLIENT_NAME_BYTES) return `is ${bytes} bytes long; the limit is ${MAX_CLIENT_NAME_BYTES}`;
  return undefined;
}

/** S3 user metadata is US-ASCII: a client's file name travels percent-encoded. */
export const encodeNameForMetadata = (name: string): string => encodeURIComponent(name);
export function decodeNameFromMetadata(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

/** A file name reduced to `[A-Za-z0-9._-]`, never empty, never hidden, never a path. */
export function sanitizeFileName(raw: string | undefined | null): string {
  const base = clientFileName(raw);
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

/** The classic protocol's answer: `<name><separator><label>` (`n01443537_goldfish,goldfish`). */
export const classicAnswer = (file: string, label: string, separator: string): string =>
  `${stem(file)}${separator}${label}`;

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

/** Result cache entries (output bucket): the answer for some bytes, per model fingerprint. */
export const CACHE_PREFIX = 'cache/';
export const cachePrefix = (fingerprint: string): string => `${CACHE_PREFIX}${fingerprint}/`;
export const cacheKey = (fingerprint: string, sha256: string): string => `${cachePrefix(fingerprint)}${sha256}.json`;

/**
 * Newest first in a listing: S3 lists keys in ascending order, so a time-ordered index keys its
 * entries by the time left until 2286 (13 digits), then the id.
 */
export const reverseTime = (epochMs: number): string => String(9_999_999_999_999 - epochMs).padStart(13, '0');

/** The most recent results (output bucket): a small summary per result, newest first in a listing. */
export const RECENT_PREFIX = 'recent/';
export const recentKey = (completedAtMs: number, requestId: string): string =>
  `${RECENT_PREFIX}${reverseTime(completedAtMs)}_${requestId}.json`;

/** A request classified by reference: what its job is, until its result exists (output bucket). */
export const requestRecordKey = (requestId: string): string => `requests/${requestId}.json`;

/** The first answer given under an Idempotency-Key (by the key's SHA-256, never the key itself). */
export const idempotencyKey = (keyHash: string): string => `idempotency/${keyHash}.json`;

/**
 * A batch, all under `batches/<id>/` in the output bucket: its state (`batch.json`), the pages of
 * its listing (`pages/<n>.json`: the keys, in order, with the token of the next page), one result
 * per object (`items/<seq>.json`, numbered in listing order, so a listing of `items/` is in that
 * order), the progress behind its counts, and at the end the manifest (`results.jsonl`).
 * `batches/active/<id>` marks a batch still to be run; `batches/index/` lists them newest first.
 */
export const BATCHES_PREFIX = 'batches/';
export const ACTIVE_BATCHES_PREFIX = `${BATCHES_PREFIX}active/`;
export const BATCH_INDEX_PREFIX = `${BATCHES_PREFIX}index/`;
export const batchKey = (id: string): string => `${BATCHES_PREFIX}${id}/batch.json`;
export const activeBatchKey = (id: string): string => `${ACTIVE_BATCHES_PREFIX}${id}`;
export const batchIndexKey = (createdAtMs: number, id: string): string =>
  `${BATCH_INDEX_PREFIX}${reverseTime(createdAtMs)}_${id}`;
export const batchPageKey = (id: string, page: number): string =>
  `${BATCHES_PREFIX}${id}/pages/${String(page).padStart(8, '0')}.json`;
export const batchItemsPrefix = (id: string): string => `${BATCHES_PREFIX}${id}/items/`;
export const batchItemKey = (id: string, seq: number): string =>
  `${batchItemsPrefix(id)}${String(seq).padStart(10, '0')}.json`;
export const batchProgressKey = (id: string, owner: string, generation: number): string =>
  `${BATCHES_PREFIX}${id}/progress/${owner}-${generation}.bin`;
export const batchManifestKey = (id: string): string => `${BATCHES_PREFIX}${id}/results.jsonl`;

/** The id at the end of an index key (`<reverse time>_<id>`), or undefined. */
export function idOfIndexKey(key: string, prefix: string, suffix = ''): string | undefined {
  if (!key.startsWith(prefix) || !key.endsWith(suffix)) return undefined;
  const rest = key.slice(prefix.length, key.length - suffix.length);
  const cut = rest.indexOf('_');
  return cut === 13 ? rest.slice(cut + 1) : undefined;
}
