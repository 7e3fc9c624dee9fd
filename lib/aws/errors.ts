/**
 * What AWS (and the endpoints that stand in for it) call their errors, in one place: the names SQS,
 * S3, Auto Scaling and CloudWatch give the same condition differ between APIs, protocols (query
 * vs JSON) and emulators, so every caller asks here instead of listing names itself.
 */

const nameOf = (err: unknown): string => (err instanceof Error ? err.name : '');
const codeOf = (err: unknown): string =>
  String((err as { Code?: unknown; code?: unknown })?.Code ?? (err as { code?: unknown })?.code ?? '');
const statusOf = (err: unknown): number | undefined =>
  (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;

/** The name an error goes by in AWS terms (the SDK's `name`, else — when that says nothing — the wire `Code`). */
export const awsErrorName = (err: unknown): string => {
  const name = nameOf(err);
  return name && name !== 'Error' ? name : codeOf(err) || name;
};

const is =
  (names: ReadonlySet<string>) =>
  (err: unknown): boolean =>
    names.has(nameOf(err)) || names.has(codeOf(err));

/** SQS: the queue does not exist (deleted, never created, another region). */
export const isQueueMissing = is(
  new Set(['QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue', 'NonExistentQueue']),
);

/** SQS: CreateQueue for a name that exists with other attributes. */
export const isQueueNameTaken = is(new Set(['QueueNameExists', 'QueueAlreadyExists']));

/** S3: CreateBucket for a bucket that exists (ours, or — AlreadyExists — maybe someone else's). */
export const isBucketTaken = is(new Set(['BucketAlreadyOwnedByYou', 'BucketAlreadyExists']));

/** S3: the object is not there (GetObject says NoSuchKey, HeadObject a bare 404 NotFound). */
export const isNoSuchKey = (err: unknown): boolean =>
  is(new Set(['NoSuchKey', 'NotFound']))(err) || (statusOf(err) === 404 && nameOf(err) !== 'NoSuchBucket');

/** S3: the bucket does not exist. */
export const isNoSuchBucket = is(new Set(['NoSuchBucket']));

/**
 * S3: a conditional write's condition did not hold — the key exists (If-None-Match) or changed
 * (If-Match) — or another conditional write to the key won the race (409 ConditionalRequestConflict).
 */
export const isPreconditionFailed = (err: unknown): boolean =>
  is(new Set(['PreconditionFailed', 'ConditionalRequestConflict']))(err) || statusOf(err) === 412;

/** Any service: the caller's credentials may not do this. */
export const isAccessDenied = is(
  new Set(['AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation', 'AuthorizationError']),
);

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND']);

/** Worth trying again later: throttling, 5xx, and the network itself (refused, reset, timed out). */
export function isTransientAwsError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const meta = err as { $retryable?: unknown; code?: string };
  if (meta.$retryable) return true;
  const status = statusOf(err);
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  return (
    NETWORK_CODES.has(meta.code ?? '') ||
    /socket hang up|ECONNREFUSED|ECONNRESET|TimeoutError/.test(`${err.name} ${err.message}`)
  );
}
