/**
 * The OpenAPI 3.1 document of the HTTP API, `GET /api/v1/openapi.json`: every route, request body
 * and error code, built for the running configuration (with API_KEYS set it says which routes need
 * a key). Error responses are generated from `HTTP_STATUS`, so a code and its status cannot drift
 * apart: each operation names the codes it can answer, each is put under its status from the table,
 * and a code of the table that no operation names (a new one) is listed on every operation.
 * Schemas are JSON Schema 2020-12; the end-to-end scenarios check real answers against them.
 */

import type { Config } from '../lib/config.js';
import type { ErrorCode, Stage } from '../pipeline/contract/errors.js';
import type { Timings } from '../pipeline/contract/messages.js';
import { DECISION_RULES } from '../scaling/core/decide.js';
import { CONTROLLER_ROLES } from '../scaling/core/status.js';
import { ASSETS_PREFIX, type AuthOptions, isOpen } from './auth.js';
import { HTTP_STATUS, type HttpErrorCode } from './errors.js';
import { MAX_RECENT } from './recent.js';

type Schema = Record<string, unknown>;

/** The limits the document states. */
type DocumentedLimits = Pick<
  Config['limits'],
  'maxUploadBytes' | 'maxFilesPerRequest' | 'requestTimeoutMs' | 'answerWaitMs'
>;

export const JOB_ID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
/** A batch id: a UUID, as job ids are. */
export const BATCH_ID_PATTERN = JOB_ID_PATTERN;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const object = (
  properties: Record<string, Schema>,
  required = Object.keys(properties),
  extra: Schema = { additionalProperties: false },
): Schema => ({
  type: 'object',
  properties,
  required,
  ...extra,
});
const integer = (minimum = 0): Schema => ({ type: 'integer', minimum });
const str: Schema = { type: 'string' };
const nullable = (schema: Schema): Schema => ({ oneOf: [schema, { type: 'null' }] });

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Every key of a union, listed once: a new member that is not listed here fails the type check. */
const every = <K extends string>(keys: Record<K, true>): K[] => Object.keys(keys) as K[];

const TIMING_STAGES = every<keyof Timings>({
  upload: true,
  s3Put: true,
  enqueue: true,
  queueWait: true,
  s3Get: true,
  decode: true,
  infer: true,
  persist: true,
  respond: true,
  cacheLookup: true,
  total: true,
});
/** What the pipeline can answer for an accepted image (and a job's failure). */
const PIPELINE_CODES = every<ErrorCode>({
  BAD_MESSAGE: true,
  INPUT_MISSING: true,
  UNDECODABLE_IMAGE: true,
  MODEL_FAILED: true,
  STORAGE_UNAVAILABLE: true,
  QUEUE_UNAVAILABLE: true,
  TIMEOUT: true,
  SHUTTING_DOWN: true,
  OVERLOADED: true,
  DEAD_LETTER: true,
  NOT_AN_IMAGE: true,
  UNSUPPORTED_IMAGE_TYPE: true,
  TOO_LARGE: true,
  IMAGE_TOO_LARGE: true,
  CANCELLED: true,
});
const STAGES = every<Stage>({
  ingest: true,
  enqueue: true,
  consume: true,
  fetch: true,
  decode: true,
  classify: true,
  persist: true,
  respond: true,
  answer: true,
});

/**
 * The JSON `data` of each event of `GET /api/v1/events`, by event name. OpenAPI 3.2 would put these
 * under the stream's `itemSchema`; 3.1 has no place for them, so they travel in `x-event-data`.
 */
const EVENT_DATA: Record<'hello' | 'status', Schema> = {
  hello: object(
    {
      periodMs: integer(1),
      history: {
        type: 'array',
        items: object({
          t: { type: 'number', description: 'Epoch milliseconds.' },
          visible: integer(),
          inFlight: integer(),
          desired: integer(),
          running: integer(),
        }),
      },
      status: nullable(ref('ServiceStatus')),
    },
    undefined,
    {
      additionalProperties: false,
      description:
        'The data of the `hello` event, sent once on connect: the last minutes of samples and the last status.',
    },
  ),
  status: object(
    { t: { type: 'number', description: 'Epoch milliseconds.' }, status: ref('ServiceStatus') },
    undefined,
    {
      additionalProperties: false,
      description: 'The data of a `status` event, sent when the status changed (read every second).',
    },
  ),
};

const SOURCE: Schema = { type: 'string', description: 'The object classified where it is (`s3://bucket/key`).' };
const NOTIFY: Schema = {
  type: 'string',
  description:
    'Where to announce the result: a webhook URL on a host of WEBHOOK_ALLOWED_HOSTS (a signed POST: `X-Signature-256: sha256=<HMAC-SHA256 of the body with WEBHOOK_SECRET>`) or an SNS topic ARN.',
};

const SCHEMAS: Record<string, Schema> = {
  ErrorCode: {
    description: 'Every error code of the API; its HTTP status is in `x-status`.',
    type: 'string',
    enum: Object.keys(HTTP_STATUS),
    'x-status': HTTP_STATUS,
  },
  ErrorDetail: object(
    {
      code: ref('ErrorCode'),
      message: { ...str, description: 'What went wrong, in words.' },
      requestId: {
        ...str,
        pattern: JOB_ID_PATTERN,
        description: 'The job the error belongs to, when one was created.',
      },
      location: { ...str, description: 'Where the job can be read (`GET` it).' },
      stage: { type: 'string', enum: STAGES, description: 'The pipeline stage that failed.' },
      file: { ...str, description: "The client's file name." },
    },
    ['code', 'message'],
    { additionalProperties: true, description: 'Code and message, and the context a client may see.' },
  ),
  Error: object({ error: ref('ErrorDetail') }),
  ClassScore: object({
    label: str,
    score: { type: 'number', minimum: 0, maximum: 1 },
    index: { type: 'integer', minimum: 0, maximum: 999 },
  }),
  Timings: object(Object.fromEntries(TIMING_STAGES.map((stage) => [stage, { type: 'number', minimum: 0 }])), [], {
    additionalProperties: false,
    description: 'Milliseconds per stage; absent stages did not run for this image.',
  }),
  ImageAnswer: object(
    {
      id: { ...str, pattern: JOB_ID_PATTERN },
      file: { ...str, description: "The client's file name, exactly as sent." },
      label: { ...str, description: 'Short class name (the top-1 label before its first comma).' },
      score: { type: 'number', minimum: 0, maximum: 1 },
      top5: { type: 'array', items: ref('ClassScore'), minItems: 1, maxItems: 5 },
      model: str,
      timings: ref('Timings'),
      cachedFrom: {
        ...str,
        pattern: JOB_ID_PATTERN,
        description:
          'Answered from the result cache: the same bytes were classified by this model, with this preprocessing, as this earlier request.',
      },
      source: SOURCE,
    },
    ['id', 'file', 'label', 'score', 'top5', 'model', 'timings'],
  ),
  PendingEntry: object(
    {
      id: { ...str, pattern: JOB_ID_PATTERN },
      file: str,
      source: SOURCE,
      status: { const: 'pending' },
      location: str,
    },
    ['id', 'file', 'status', 'location'],
  ),
  FailedEntry: object({ file: str, source: SOURCE, error: ref('ErrorDetail') }, ['file', 'error']),
  ReferenceRequest: object(
    {
      source: {
        ...str,
        description: 'One object: `s3://bucket/key` (its bucket one of SOURCE_BUCKETS).',
        pattern: '^s3://',
      },
      sources: {
        type: 'array',
        items: { ...str, pattern: '^s3://' },
        minItems: 1,
        description: 'Several objects (at most MAX_FILES).',
      },
      notify: NOTIFY,
    },
    [],
    {
      additionalProperties: false,
      oneOf: [{ required: ['source'] }, { required: ['sources'] }],
      description: 'Objects classified where they are, by reference.',
    },
  ),
  BatchRequest: object(
    {
      source: {
        ...str,
        pattern: '^s3://',
        description: 'A prefix, `s3://bucket/prefix/` (an empty prefix is the whole bucket).',
      },
      notify: NOTIFY,
    },
    ['source'],
    { additionalProperties: false },
  ),
  Batch: object(
    {
      id: { ...str, pattern: JOB_ID_PATTERN },
      source: str,
      status: { type: 'string', enum: ['listing', 'running', 'done', 'failed', 'cancelled'] },
      total: { ...integer(), description: 'Objects in the batch, once the whole prefix is listed.' },
      listed: { ...integer(), description: 'Objects listed and queued so far.' },
      done: integer(),
      failed: integer(),
      createdAt: { ...str, format: 'date-time' },
      startedAt: { ...str, format: 'date-time' },
      finishedAt: { ...str, format: 'date-time' },
      rate: { type: 'number', minimum: 0, description: 'Objects answered per second, lately.' },
      etaSeconds: { ...integer(), description: 'Seconds until every object is answered at that rate (while running).' },
      manifest: { ...str, description: 'The results as one JSON-lines object in the output bucket, once finished.' },
      notify: str,
      error: object({ code: str, message: str }),
      location: str,
      results: { ...str, description: 'GET it for every result so far as JSON lines.' },
    },
    ['id', 'source', 'status', 'listed', 'done', 'failed', 'createdAt', 'location', 'results'],
  ),
  BatchList: object({ batches: { type: 'array', items: ref('Batch'), description: 'Newest first.' } }),
  ClassifyResponse: object({
    results: {
      type: 'array',
      minItems: 1,
      items: { anyOf: [ref('ImageAnswer'), ref('PendingEntry'), ref('FailedEntry')] },
      description: 'One entry per image, in the order sent.',
    },
  }),
  AnswerError: object({
    code: { type: 'string', enum: [...PIPELINE_CODES] },
    message: str,
    stage: { type: 'string', enum: STAGES },
  }),
  Job: {
    oneOf: [
      object({ id: { ...str, pattern: JOB_ID_PATTERN }, status: { const: 'pending' }, file: str }),
      object({ id: { ...str, pattern: JOB_ID_PATTERN }, status: { const: 'done' }, result: ref('ImageAnswer') }),
      object({
        id: { ...str, pattern: JOB_ID_PATTERN },
        status: { const: 'failed' },
        file: str,
        error: ref('AnswerError'),
      }),
    ],
  },
  RecentResult: {
    oneOf: [
      object({
        id: str,
        file: str,
        completedAt: { ...str, format: 'date-time' },
        thumbnail: str,
        status: { const: 'done' },
        label: str,
        score: { type: 'number' },
        model: str,
      }),
      object({
        id: str,
        file: str,
        completedAt: { ...str, format: 'date-time' },
        thumbnail: str,
        status: { const: 'failed' },
        error: object({ code: str, message: str }),
      }),
    ],
  },
  RecentResults: object({ results: { type: 'array', items: ref('RecentResult'), description: 'Newest first.' } }),
  DecisionRecord: object(
    {
      at: { ...str, format: 'date-time' },
      t: { type: 'number', description: 'Epoch seconds.' },
      inputs: object(
        Object.fromEntries(
          ['visible', 'inFlight', 'running', 'desired']
            .map((k) => [k, integer()])
            .concat(
              ['lastScaleOut', 'lastScaleIn', 'idleSince', 'backlogSince'].map((k) => [
                k,
                nullable({ type: 'number' }),
              ]),
            ),
        ),
        undefined,
        { additionalProperties: true },
      ),
      from: integer(),
      to: integer(),
      action: { enum: ['scale-out', 'scale-in'] },
      rule: { enum: [...DECISION_RULES] },
      reason: { ...str, description: 'One sentence with the numbers behind the decision.' },
      resize: object(
        { state: { enum: ['pending', 'done', 'failed', 'superseded'] }, attempts: integer() },
        ['state', 'attempts'],
        { additionalProperties: true },
      ),
    },
    undefined,
    { additionalProperties: true },
  ),
  ServiceStatus: object(
    {
      queue: object(
        { visible: integer(), inFlight: integer(), sampledAt: nullable({ ...str, format: 'date-time' }) },
        ['visible', 'inFlight'],
        { additionalProperties: true },
      ),
      workers: object({ desired: integer(), running: integer() }, undefined, { additionalProperties: true }),
      policy: object(
        {
          minCapacity: integer(),
          maxCapacity: integer(),
          periodSeconds: { type: 'number' },
          targetBacklogPerInstance: { type: 'number' },
        },
        undefined,
        { additionalProperties: true },
      ),
      decisions: {
        type: 'array',
        items: ref('DecisionRecord'),
        description: 'Decisions that changed the desired count, oldest first.',
      },
      controller: object({ actuator: str, role: { enum: [...CONTROLLER_ROLES] } }, undefined, {
        additionalProperties: true,
      }),
      runtime: object({ node: str, workers: { type: 'array', items: str } }, undefined, { additionalProperties: true }),
    },
    ['queue', 'workers', 'decisions', 'runtime'],
    {
      additionalProperties: true,
      description:
        'Queue depth, workers, the autoscaler (absent with a fixed pool) and its recent decisions, the runtime.',
    },
  ),
  Health: object({ status: { const: 'ok' } }),
  Ready: object({ status: { const: 'ready' } }),
};

/** The codes of an upload refused before anything is stored (`uploads.ts`). */
const UPLOAD_CODES = [
  'NO_FILE',
  'EMPTY_FILE',
  'BAD_FILE_NAME',
  'BAD_MULTIPART',
  'TOO_LARGE',
  'TOO_MANY_FILES',
  'NOT_AN_IMAGE',
  'UNSUPPORTED_IMAGE_TYPE',
  'UNSUPPORTED_MEDIA_TYPE',
  'IMAGE_TOO_LARGE',
] as const;

/** Every operation can answer these. */
const COMMON_CODES: readonly HttpErrorCode[] = ['BAD_REQUEST', 'INTERNAL'];

/** Answered for a request no operation takes (documented in `info`, not per operation). */
const ROUTING_CODES: readonly HttpErrorCode[] = ['NOT_FOUND', 'METHOD_NOT_ALLOWED'];

interface Operation {
  readonly method: 'get' | 'post' | 'delete';
  readonly path: string;
  readonly summary: string;
  readonly description?: string;
  readonly parameters?: readonly Schema[];
  readonly requestBody?: Schema;
  /** Successful answers: status → response object. */
  readonly ok: Record<number, Schema>;
  readonly codes: readonly HttpErrorCode[];
}

const json = (schema: Schema, description: string, headers?: Schema): Schema => ({
  description,
  ...(headers ? { headers } : {}),
  content: { 'application/json': { schema } },
});
const IDEMPOTENCY: Schema = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  schema: { type: 'string', minLength: 1, maxLength: 255 },
  description:
    'The same key with the same body gets the first answer again (same ids, no second classification); with another body, 422.',
};
const IDEMPOTENCY_CODES = ['BAD_IDEMPOTENCY_KEY', 'IDEMPOTENCY_KEY_REUSED', 'IDEMPOTENCY_KEY_IN_PROGRESS'] as const;
const REFERENCE_CODES = [
  'BAD_SOURCE',
  'SOURCE_NOT_ALLOWED',
  'SOURCE_NOT_FOUND',
  'BAD_NOTIFY',
  'NOTIFY_NOT_ALLOWED',
] as const;
const batchId: Schema = {
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: BATCH_ID_PATTERN },
  description: 'The batch id.',
};
const jobId: Schema = {
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: JOB_ID_PATTERN },
  description: 'The job (request) id.',
};
const binary = (type: string): Schema => ({ type: 'string', contentMediaType: type });

function operations(limits: DocumentedLimits, classic: Config['classic'], assets: readonly string[]): Operation[] {
  const sizes = `At most ${limits.maxUploadBytes} bytes per file and ${limits.maxFilesPerRequest} files per request.`;
  return [
    {
      method: 'get',
      path: '/',
      summary: 'The page: upload images, see their results, the live view of the service and recent results',
      ok: { 200: { description: 'The page (HTML).', content: { 'text/html': { schema: str } } } },
      codes: [],
    },
    {
      method: 'get',
      path: `${ASSETS_PREFIX}{name}`,
      summary: "One of the page's files (CSS, JS modules, icon)",
      parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string', enum: [...assets] } }],
      ok: {
        200: {
          description: 'The file.',
          content: {
            'text/css': { schema: str },
            'text/javascript': { schema: str },
            'image/svg+xml': { schema: str },
          },
        },
        304: { description: 'Not modified (`If-None-Match` named the current ETag).' },
      },
      codes: ['NOT_FOUND'],
    },
    {
      method: 'post',
      path: '/',
      summary: `The classic protocol: one image in the form field \`${classic.field}\`, answered \`<name>${classic.separator}<label>\``,
      description: `Waits for the answer up to REQUEST_TIMEOUT_MS (${limits.requestTimeoutMs} ms). The part is a file when it names one (\`filename\`, or \`filename*\` of RFC 5987), whatever its own Content-Type says or omits: the bytes decide what it is. The field and the separator are CLASSIC_FIELD and CLASSIC_SEPARATOR. ${sizes}`,
      requestBody: {
        required: true,
        content: {
          'multipart/form-data': {
            schema: object({ [classic.field]: binary('application/octet-stream') }, [classic.field], {
              additionalProperties: true,
            }),
          },
        },
      },
      ok: {
        200: {
          description: `\`<name>${classic.separator}<label>\`: the client's file name without its extension, exactly as sent, and the short class name.`,
          content: { 'text/plain': { schema: { type: 'string', pattern: escapeRegExp(classic.separator) } } },
        },
      },
      codes: [...UPLOAD_CODES, 'ONE_FILE_ONLY', ...PIPELINE_CODES],
    },
    {
      method: 'post',
      path: '/api/v1/classify',
      summary: 'Classify one or more images, uploaded or named where they are in S3',
      description: `Multipart with one or more files (any field names), a raw image body (\`?name=photo.jpg\` or \`X-File-Name\` names it), or JSON naming objects by reference (\`{"source": "s3://bucket/key"}\`, classified in place: no copy; the bucket must be one of SOURCE_BUCKETS, and the object is checked as an upload is). One failure among several images is reported in its entry; the request fails only when every image failed. ${sizes}`,
      parameters: [
        IDEMPOTENCY,
        { name: 'name', in: 'query', required: false, schema: str, description: 'The file name of a raw body.' },
        {
          name: 'X-File-Name',
          in: 'header',
          required: false,
          schema: str,
          description: 'The file name of a raw body (when `name` is absent).',
        },
      ],
      requestBody: {
        required: true,
        content: {
          'multipart/form-data': {
            schema: {
              type: 'object',
              minProperties: 1,
              additionalProperties: {
                oneOf: [
                  binary('application/octet-stream'),
                  { type: 'array', items: binary('application/octet-stream') },
                ],
              },
            },
          },
          'application/json': { schema: ref('ReferenceRequest') },
          'image/*': { schema: binary('image/*') },
          'application/octet-stream': { schema: binary('application/octet-stream') },
          'application/x-www-form-urlencoded': {
            schema: {
              ...binary('application/octet-stream'),
              description:
                'What `curl --data-binary @photo.jpg` and `wget --post-file=photo.jpg` send when told no type: taken as a raw image (the bytes decide).',
            },
          },
        },
      },
      ok: {
        200: json(ref('ClassifyResponse'), 'Every image answered (done or failed), in order.'),
        202: json(
          ref('ClassifyResponse'),
          `At least one image still in work after ANSWER_WAIT_MS (${limits.answerWaitMs} ms): its entry is pending; follow its location.`,
          {
            Location: { description: 'The job of the first pending image.', schema: str },
          },
        ),
      },
      codes: [...UPLOAD_CODES, ...PIPELINE_CODES, ...REFERENCE_CODES, ...IDEMPOTENCY_CODES, 'BAD_REQUEST'],
    },
    {
      method: 'post',
      path: '/api/v1/batches',
      summary: 'Classify every object under an S3 prefix, as a batch',
      description:
        'The prefix is listed page by page and each object queued; workers classify them where they are. Answers 202 at once, with the batch and its Location. Objects that are not images, too large or gone are failed lines of the results; the batch goes on. `notify` is told the summary when the batch ends.',
      parameters: [IDEMPOTENCY],
      requestBody: { required: true, content: { 'application/json': { schema: ref('BatchRequest') } } },
      ok: {
        202: json(ref('Batch'), 'The batch, started.', {
          Location: { description: 'The batch: GET it for its progress.', schema: str },
        }),
      },
      codes: [
        'BAD_SOURCE',
        'SOURCE_NOT_ALLOWED',
        'SOURCE_NOT_FOUND',
        'BAD_NOTIFY',
        'NOTIFY_NOT_ALLOWED',
        'BAD_REQUEST',
        'TOO_LARGE',
        'UNSUPPORTED_MEDIA_TYPE',
        ...IDEMPOTENCY_CODES,
      ],
    },
    {
      method: 'get',
      path: '/api/v1/batches',
      summary: 'The most recent batches, newest first',
      parameters: [
        {
          name: 'limit',
          in: 'query',
          required: false,
          schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
        },
      ],
      ok: { 200: json(ref('BatchList'), 'Newest first.') },
      codes: ['BAD_PARAMETER'],
    },
    {
      method: 'get',
      path: '/api/v1/batches/{id}',
      summary: "A batch's progress: status, total, done, failed, rate and ETA, where its results are",
      parameters: [batchId],
      ok: { 200: json(ref('Batch'), 'The batch.') },
      codes: ['BAD_BATCH_ID', 'NO_SUCH_BATCH'],
    },
    {
      method: 'delete',
      path: '/api/v1/batches/{id}',
      summary: 'Cancel a batch: its objects still queued are dropped by the workers without being classified',
      parameters: [batchId],
      ok: { 200: json(ref('Batch'), 'The batch, cancelled.') },
      codes: ['BAD_BATCH_ID', 'NO_SUCH_BATCH', 'BATCH_FINISHED'],
    },
    {
      method: 'get',
      path: '/api/v1/batches/{id}/results',
      summary: 'Every result of a batch so far, as JSON lines in listing order (the manifest once it ended)',
      description:
        'One line per object: `seq` (its place in the listing), `source` (`s3://bucket/key`), and the usual result fields (`id`, `file`, `label`, `score`, `top5`, `model`, ...) or an `error` (`code`, `message`, `stage`).',
      parameters: [batchId],
      ok: { 200: { description: 'JSON lines.', content: { 'application/x-ndjson': { schema: str } } } },
      codes: ['BAD_BATCH_ID', 'NO_SUCH_BATCH'],
    },
    {
      method: 'get',
      path: '/api/v1/jobs/{id}',
      summary: "A job's status or result, from the buckets (survives a restart of the web tier)",
      parameters: [jobId],
      ok: { 200: json(ref('Job'), 'Pending, done (with the result) or failed (with the error).') },
      codes: ['BAD_JOB_ID', 'NO_SUCH_JOB'],
    },
    {
      method: 'get',
      path: '/api/v1/jobs/{id}/thumbnail',
      summary: "A small JPEG of the job's input image (center-cropped square)",
      parameters: [jobId],
      ok: { 200: { description: 'The thumbnail.', content: { 'image/jpeg': { schema: binary('image/jpeg') } } } },
      codes: ['BAD_JOB_ID', 'NO_SUCH_JOB', 'UNDECODABLE_IMAGE'],
    },
    {
      method: 'get',
      path: '/api/v1/results',
      summary: 'The most recent results (done or failed) from the output bucket, newest first',
      parameters: [
        {
          name: 'limit',
          in: 'query',
          required: false,
          schema: { type: 'integer', minimum: 1, maximum: MAX_RECENT, default: 20 },
        },
      ],
      ok: { 200: json(ref('RecentResults'), 'Newest first, each with the path of its thumbnail.') },
      codes: ['BAD_PARAMETER'],
    },
    {
      method: 'get',
      path: '/api/v1/status',
      summary: 'Queue depth, workers (desired, running), the autoscaler and its recent decisions with their reasons',
      ok: { 200: json(ref('ServiceStatus'), 'The status document.') },
      codes: [],
    },
    {
      method: 'get',
      path: '/api/v1/events',
      summary: 'The live view as Server-Sent Events',
      description:
        'A `hello` event on connect (the last minutes of samples and the status), then a `status` event each time the status document changes (it is read every second), and a `: keepalive` comment after 15 s of silence. With API_KEYS set, send the key in `Authorization` (the page reads the stream with `fetch`); it is never accepted in the query string. The JSON data of each event, by name, is in `x-event-data` of the stream.',
      ok: {
        200: {
          description: 'The event stream.',
          content: {
            'text/event-stream': {
              schema: str,
              'x-event-data': EVENT_DATA,
            },
          },
        },
      },
      codes: ['SHUTTING_DOWN'],
    },
    {
      method: 'get',
      path: '/api/v1/openapi.json',
      summary: 'This document',
      ok: { 200: json({ type: 'object' }, 'The OpenAPI 3.1 document.') },
      codes: [],
    },
    {
      method: 'get',
      path: '/metrics',
      summary: 'The service’s numbers in Prometheus text format: this process’s and its worker processes’',
      description:
        'Images by outcome and model, HTTP errors by code, a histogram per pipeline stage, batch sizes, queue depth, workers desired and running, scaling decisions by rule, and each process’s own (CPU, memory, event loop).',
      ok: { 200: { description: 'The metrics.', content: { 'text/plain': { schema: str } } } },
      codes: [],
    },
    {
      method: 'get',
      path: '/healthz',
      summary: 'The process is alive',
      ok: { 200: json(ref('Health'), 'Alive.') },
      codes: [],
    },
    {
      method: 'get',
      path: '/readyz',
      summary: 'The request queue, this process’s response queue and both buckets answer',
      ok: { 200: json(ref('Ready'), 'Ready.') },
      codes: ['NOT_READY'],
    },
  ];
}

/** The error responses of `codes`, grouped by status (`HTTP_STATUS`). */
function errorResponses(codes: readonly HttpErrorCode[]): Record<string, Schema> {
  const byStatus = new Map<number, HttpErrorCode[]>();
  for (const code of new Set(codes))
    byStatus.set(HTTP_STATUS[code], [...(byStatus.get(HTTP_STATUS[code]) ?? []), code]);
  const out: Record<string, Schema> = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    const headers =
      status === 401
        ? {
            'WWW-Authenticate': {
              description: '`Bearer realm="image-recognition"` (with `error="invalid_token"` for a wrong key).',
              schema: str,
            },
          }
        : list.includes('OVERLOADED')
          ? {
              'Retry-After': {
                description: 'With `OVERLOADED`: seconds until the service expects to have room.',
                schema: { type: 'integer', minimum: 0 },
              },
            }
          : undefined;
    out[String(status)] = json(
      { allOf: [ref('Error'), { properties: { error: { properties: { code: { enum: list } } } } }] },
      `Error: ${list.map((c) => `\`${c}\``).join(', ')}.`,
      headers,
    );
  }
  return out;
}

export interface OpenApiOptions {
  readonly auth: AuthOptions;
  readonly limits: DocumentedLimits;
  readonly classic: Config['classic'];
  /** The page's files under /assets/. */
  readonly assets: readonly string[];
}

export function openApiDocument(options: OpenApiOptions): Schema {
  const ops = operations(options.limits, options.classic, options.assets);
  const keys = options.auth.apiKeys.length > 0;
  const placed = new Set<HttpErrorCode>([
    ...COMMON_CODES,
    ...ROUTING_CODES,
    'UNAUTHORIZED',
    ...ops.flatMap((op) => op.codes),
  ]);
  // A code of the table that no operation names is documented on every operation.
  const unplaced = (Object.keys(HTTP_STATUS) as HttpErrorCode[]).filter((code) => !placed.has(code));
  const paths: Record<string, Record<string, Schema>> = {};
  for (const op of ops) {
    const needsKey = keys && !isOpen(op.method.toUpperCase(), op.path, options.auth);
    const codes = [...op.codes, ...COMMON_CODES, ...unplaced, ...(needsKey ? (['UNAUTHORIZED'] as const) : [])];
    (paths[op.path] ??= {})[op.method] = {
      operationId: `${op.method}${op.path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase()) || 'Root'}`,
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      ...(op.parameters ? { parameters: op.parameters } : {}),
      ...(op.requestBody ? { requestBody: op.requestBody } : {}),
      // Every operation says what it needs, `[]` for nothing (the linters' security-defined rule).
      security: needsKey ? [{ apiKey: [] }] : [],
      responses: {
        ...Object.fromEntries(Object.entries(op.ok).map(([status, response]) => [status, response])),
        ...errorResponses(codes),
      },
    };
  }
  const table = (Object.keys(HTTP_STATUS) as HttpErrorCode[])
    .map((code) => `| ${HTTP_STATUS[code]} | \`${code}\` |`)
    .join('\n');
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Elastic image recognition',
      version: '1',
      // A private project (package.json `private`); SPDX has no id for that, hence a LicenseRef.
      license: { name: 'Proprietary: all rights reserved', identifier: 'LicenseRef-Proprietary' },
      description: [
        'Upload images, get back what is in them. Errors are always JSON, `{"error": {"code", "message", ...}}`; each code has one status:',
        '',
        '| status | code |',
        '|---|---|',
        table,
        '',
        `A request for a path no route serves is \`404 NOT_FOUND\`; a method a path does not take is \`405 METHOD_NOT_ALLOWED\`.${
          keys
            ? ' Access control is on: send `Authorization: Bearer <key>` on every operation that lists the `apiKey` security requirement.'
            : ''
        }`,
      ].join('\n'),
    },
    servers: [{ url: '/' }],
    paths,
    components: {
      schemas: SCHEMAS,
      ...(keys
        ? {
            securitySchemes: {
              apiKey: { type: 'http', scheme: 'bearer', description: 'One of the keys in API_KEYS.' },
            },
          }
        : {}),
    },
  };
}
