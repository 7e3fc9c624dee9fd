/**
 * The one typed configuration module. Everything the service reads from the environment is read
 * here, once, validated, and handed around as a frozen `Config`. A bad value fails start-up with a
 * `ConfigError` that names the variable, what it expected and what it got.
 */

import { existsSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServiceError } from './errors.js';
import type { LogLevel } from './log.js';

/**
 * The model `MODEL` defaults to: MobileNet v1 0.75, its TF.js files converted to ONNX at load time
 * — the most accurate of the sample models on every CPU at close to the fastest one's speed (the
 * figures, and why not the int8 model, are in docs/benchmarks.md).
 */
export const DEFAULT_MODEL_ID = 'mobilenet-v1-0.75-224-onnx';

/** The largest request body the embedded endpoint accepts (fauxqs' limit, sized for S3 multipart parts). */
export const EMBEDDED_MAX_OBJECT_BYTES = 11 * 1024 * 1024;

/** The project root (the folder holding package.json), whatever the working directory. */
export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export type EndpointMode = 'embedded' | 'external';

/** The web server's keep-alive settings, derived from the load balancer's idle timeout. */
export interface KeepAliveTimeouts {
  /** The load balancer's idle timeout (LB_IDLE_TIMEOUT_SECONDS). */
  readonly loadBalancerIdleSeconds: number;
  /** `server.keepAliveTimeout`: longer than the load balancer's idle timeout. */
  readonly keepAliveTimeoutMs: number;
  /** `server.headersTimeout`: longer than the keep-alive timeout. */
  readonly headersTimeoutMs: number;
}

/** Seconds a long poll's response may take beyond its wait before the SQS client gives up on it. */
export const SQS_READ_MARGIN_SECONDS = 5;
/** The visibility timeout exceeds the receive wait by at least this: room for a read timeout between them. */
export const MIN_VISIBILITY_OVER_WAIT_SECONDS = 2;

/**
 * The SQS client's read timeout (the SDK's requestTimeout: how long a request may go without data),
 * between two bounds. Above the long-poll wait: SQS answers a ReceiveMessage with no message when its
 * wait ends, and a shorter timeout would cut every empty poll. Below the visibility timeout: SQS's
 * guide asks for "the visibility timeout to be longer than the AWS SDK read timeout", for
 * ReceiveMessage with short and long polling, so that messages do not become visible to other
 * consumers before the request that received them has completed (Amazon SQS Developer Guide,
 * "Configuring visibility timeouts"). loadConfig and the stack refuse a visibility timeout that
 * leaves no room between the two (MIN_VISIBILITY_OVER_WAIT_SECONDS).
 */
export function sqsReadTimeoutSeconds(queue: {
  readonly receiveWaitSeconds: number;
  readonly visibilityTimeoutSeconds: number;
}): number {
  return Math.min(queue.receiveWaitSeconds + SQS_READ_MARGIN_SECONDS, queue.visibilityTimeoutSeconds - 1);
}

/** How much longer than the load balancer an idle connection stays open on the web tier. */
export const KEEP_ALIVE_MARGIN_MS = 5_000;

/**
 * AWS: "configure the idle timeout of your application to be larger than the idle timeout configured
 * for the load balancer. Otherwise, if the application closes the TCP connection to the load
 * balancer ungracefully, the load balancer might send a request to the application before it
 * receives the packet indicating that the connection is closed [and answers] 502 Bad Gateway"
 * (Elastic Load Balancing, Application Load Balancers, "Edit load balancer attributes" › Connection
 * idle timeout). Node closes an idle keep-alive connection after `keepAliveTimeout` (5 s by default)
 * and a connection whose request headers have not all arrived after `headersTimeout`: the first is
 * set above the load balancer's timeout, the second above the first (a request that starts on a
 * connection just before it would idle out still gets its full headers time).
 */
export function keepAliveTimeouts(loadBalancerIdleSeconds: number): KeepAliveTimeouts {
  const keepAliveTimeoutMs = loadBalancerIdleSeconds * 1000 + KEEP_ALIVE_MARGIN_MS;
  return { loadBalancerIdleSeconds, keepAliveTimeoutMs, headersTimeoutMs: keepAliveTimeoutMs + 1_000 };
}

export interface Config {
  readonly http: {
    readonly host: string;
    readonly port: number;
    /**
     * Keep-alive behind a load balancer (LB_IDLE_TIMEOUT_SECONDS, the stack writes it): idle
     * connections stay open longer than the load balancer keeps them, so it is always the load
     * balancer that closes them (see `keepAliveTimeouts`). Undefined: Node's defaults.
     */
    readonly keepAlive: KeepAliveTimeouts | undefined;
  };
  readonly aws: {
    readonly region: string;
    /**
     * `embedded`: the project's own SQS + S3 endpoint on loopback (started by `npm start`).
     * `external`: whatever the AWS SDK resolves — real AWS, or LocalStack via AWS_ENDPOINT_URL*.
     */
    readonly mode: EndpointMode;
    /** Explicit endpoints (undefined = the SDK's default for the region). */
    readonly sqsEndpoint: string | undefined;
    readonly s3Endpoint: string | undefined;
    /** Path-style S3 URLs: needed for LocalStack and the embedded endpoint. */
    readonly s3ForcePathStyle: boolean;
    /**
     * Keys from this configuration's environment (AWS_ACCESS_KEY_ID...), or undefined: the SDK's
     * own chain (profile, instance role...). Read here so that a configuration built from another
     * environment than the process's talks with that environment's credentials.
     */
    readonly credentials:
      | { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string }
      | undefined;
    /** AWS_PROFILE of this configuration's environment. */
    readonly profile: string | undefined;
  };
  /** The embedded endpoint: SQS and S3 on one loopback port. */
  readonly embedded: { readonly host: string; readonly port: number };
  readonly names: {
    readonly inputBucket: string;
    readonly outputBucket: string;
    readonly requestQueue: string;
    /** Each web-tier process creates `<prefix><unique suffix>` at start and deletes it on exit. */
    readonly responseQueuePrefix: string;
    /** A batch's workers answer on `<prefix><batch id>`, created when the batch starts and deleted when it ends. */
    readonly batchQueuePrefix: string;
    /** Where requests go after `maxReceives` failed deliveries. */
    readonly deadLetterQueue: string;
    readonly maxReceives: number;
  };
  readonly model: {
    /** Registry id, a path, an http(s):// URL or an s3:// URL. */
    readonly source: string;
    readonly modelsDir: string;
    readonly cacheDir: string;
    /** Intra-op threads per model session. */
    readonly threads: number;
    /** Where ONNX Runtime models run: `cpu`, or `cuda` (opt-in, docs/configuration.md). */
    readonly device: 'cpu' | 'cuda';
  };
  readonly worker: {
    /** A fixed number of worker processes (WORKERS), or undefined: the local autoscaler decides. */
    readonly count: number | undefined;
    /** Bounds for the local autoscaler. */
    readonly min: number;
    readonly max: number;
    /** A JSON scaling policy (see docs/scaling.md) for the local autoscaler; LOCAL_POLICY otherwise. */
    readonly policyFile: string | undefined;
    /** Messages per SQS receive (1..10). */
    readonly receiveBatch: number;
    /** Receive loops per worker, each with its batch in flight: more keep the model fed while batches are fetched and answered. */
    readonly pollers: number;
    /** Largest inference batch. */
    readonly maxBatch: number;
    /** How long a worker waits to fill an inference batch. */
    readonly maxBatchWaitMs: number;
    readonly visibilityTimeoutSeconds: number;
    /** SQS long-poll wait; also bounds how long a stopping worker waits for its last receive. */
    readonly receiveWaitSeconds: number;
  };
  readonly limits: {
    readonly maxUploadBytes: number;
    readonly maxFilesPerRequest: number;
    /** How long the web tier waits for a worker's answer before giving up on a request. */
    readonly requestTimeoutMs: number;
    /** How long `POST /api/v1/classify` holds the connection before answering 202 with a job. */
    readonly answerWaitMs: number;
    /** How long a request in progress keeps retrying an unreachable S3/SQS endpoint. */
    readonly outageRetryMs: number;
  };
  /** Where this process runs on AWS (all optional; unset on one machine). */
  readonly ec2: {
    /** The app tier's Auto Scaling group (the controller's actuator; the hooks' group). */
    readonly autoScalingGroup: string | undefined;
    /** The web tier's own group: its controller copies elect one leader among its instances. */
    readonly webAutoScalingGroup: string | undefined;
    /** A termination lifecycle hook on that group: a worker finishes what it holds, then completes it. */
    readonly terminateHook: string | undefined;
    /** A launch lifecycle hook (warm pool): a worker prepares (model loaded), then completes it. */
    readonly launchHook: string | undefined;
    /** Instance metadata (IMDSv2); a stand-in in tests. */
    readonly imdsEndpoint: string;
  };
  /**
   * The scaling controller in the web tier's process: `local` moves this machine's worker processes,
   * `aws` the app tier's Auto Scaling group, `off` leaves scaling to others (CloudWatch alarms).
   */
  readonly scaler: {
    readonly mode: 'local' | 'aws' | 'off';
    readonly periodSeconds: number;
  };
  /**
   * The classic protocol (`POST /`): the multipart field its one file comes in, and what stands
   * between the name and the label in its answer (`<name><separator><label>`, also the classic
   * output object's body).
   */
  readonly classic: { readonly field: string; readonly separator: string };
  /**
   * Images classified where they are (`s3://bucket/key`, one by one or a whole prefix as a batch):
   * the buckets they may come from (SOURCE_BUCKETS). Empty: none.
   */
  readonly sources: { readonly buckets: readonly string[] };
  /**
   * Batches: objects listed (and queued) per page of a prefix (BATCH_PAGE_SIZE, S3's page is at most
   * 1000), and how long a web instance's hold on a batch lasts unless renewed (BATCH_LEASE_SECONDS):
   * another instance takes a batch over that long after its coordinator stopped renewing.
   */
  readonly batches: { readonly pageSize: number; readonly leaseSeconds: number };
  /**
   * Where results may be announced: webhook hosts (WEBHOOK_ALLOWED_HOSTS: `host`, `host:port`,
   * `*.example.com`), each POST signed with WEBHOOK_SECRET. SNS topics need no allow-list here: the
   * instance role decides which it may publish to.
   */
  readonly webhooks: { readonly allowedHosts: readonly string[]; readonly secret: string | undefined };
  /** Answer images classified before (same bytes, model and preprocessing) from the output bucket. */
  readonly resultCache: boolean;
  /** Optional access control: with keys set, routes other than the health checks need `Authorization: Bearer <key>`. */
  readonly auth: {
    /** API_KEYS, comma-separated; empty: no access control. */
    readonly apiKeys: readonly string[];
    /** The classic `POST /` needs a key too (its client sends no header, so off by default). */
    readonly classicRequiresKey: boolean;
  };
  readonly dataDir: string;
  readonly logLevel: LogLevel;
  /** The environment this configuration was read from (handed on to child processes). */
  readonly env: Env;
}

export class ConfigError extends ServiceError<'INVALID_CONFIG'> {
  override readonly name = 'ConfigError';

  /** `<variable> must be <expected>, got <value>`: the variable, what it takes and what it was. */
  static invalid(variable: string, expected: string, got: string | undefined): ConfigError {
    return new ConfigError(
      'INVALID_CONFIG',
      `${variable} must be ${expected}, got ${got === undefined ? 'nothing' : JSON.stringify(got)}`,
      { variable, expected, got },
    );
  }

  /** The environment variable at fault. */
  get variable(): string {
    return String(this.context.variable);
  }
}

type Env = Readonly<Record<string, string | undefined>>;

class Reader {
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  string(name: string, fallback: string, pattern?: RegExp, expected?: string): string {
    const value = this.raw(name) ?? fallback;
    if (pattern && !pattern.test(value)) throw ConfigError.invalid(name, expected ?? `to match ${pattern}`, value);
    return value;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw ConfigError.invalid(name, `an integer in ${min}..${max}`, value);
    }
    return n;
  }

  oneOf<T extends string>(name: string, fallback: T, choices: readonly T[]): T {
    const value = this.raw(name) ?? fallback;
    if (!(choices as readonly string[]).includes(value)) {
      throw ConfigError.invalid(name, `one of ${choices.join(', ')}`, value);
    }
    return value as T;
  }

  bool(name: string, fallback: boolean): boolean {
    const value = this.raw(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(value)) return true;
    if (['0', 'false', 'no', 'off'].includes(value)) return false;
    throw ConfigError.invalid(name, 'true or false (1/0, yes/no, on/off)', this.raw(name));
  }

  url(name: string): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    try {
      const url = new URL(value);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('protocol');
      return value.replace(/\/+$/, '');
    } catch {
      throw ConfigError.invalid(name, 'an http:// or https:// URL', value);
    }
  }
}

// S3 bucket names: 3-63 chars, lowercase letters, digits, dots and hyphens.
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
// A webhook host: a DNS name or IPv4 address, optionally a port, or `*.` and a domain.
const WEBHOOK_HOST = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/i;
// SQS queue names: up to 80 alphanumerics, hyphens and underscores.
const QUEUE = /^[A-Za-z0-9_-]{1,80}$/;

/** True when the AWS SDK would find credentials of its own (env, profile, container, web identity). */
function hasAwsCredentialSource(r: Reader): boolean {
  return (
    r.raw('AWS_ACCESS_KEY_ID') !== undefined ||
    r.raw('AWS_PROFILE') !== undefined ||
    r.raw('AWS_WEB_IDENTITY_TOKEN_FILE') !== undefined ||
    r.raw('AWS_CONTAINER_CREDENTIALS_FULL_URI') !== undefined ||
    r.raw('AWS_CONTAINER_CREDENTIALS_RELATIVE_URI') !== undefined ||
    existsSync(r.raw('AWS_SHARED_CREDENTIALS_FILE') ?? join(homedir(), '.aws', 'credentials'))
  );
}

/** API_KEYS: comma-separated keys of at least 16 characters (printable ASCII, no spaces or commas). */
function apiKeys(r: Reader): readonly string[] {
  const raw = r.raw('API_KEYS');
  if (raw === undefined) return [];
  const keys = raw
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
  for (const key of keys) {
    // The value is a secret: the message says what is wrong, never the key itself.
    if (!/^[\x21-\x7e]{16,256}$/.test(key))
      throw ConfigError.invalid(
        'API_KEYS',
        'comma-separated keys of 16 to 256 printable ASCII characters',
        `(a key of ${key.length} characters)`,
      );
  }
  return Object.freeze(keys);
}

/** CLASSIC_SEPARATOR: 1 to 8 characters, any but line breaks and other control characters (a tab is fine). */
function classicSeparator(raw: string | undefined): string {
  if (raw === undefined || raw === '') return ',';
  if (!/^(?:[^\p{Cc}]|\t){1,8}$/u.test(raw))
    throw ConfigError.invalid(
      'CLASSIC_SEPARATOR',
      '1 to 8 characters, no line breaks or other control characters',
      raw,
    );
  return raw;
}

/** A comma-separated list, each entry checked by `valid`; empty or unset: []. */
function list(r: Reader, name: string, valid: RegExp, expected: string): readonly string[] {
  const entries = (r.raw(name) ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  for (const entry of entries) if (!valid.test(entry)) throw ConfigError.invalid(name, expected, entry);
  return Object.freeze(entries);
}

/** WEBHOOK_SECRET: 16 to 256 printable characters; never echoed. Required once a webhook host is allowed. */
function webhookSecret(r: Reader, hosts: readonly string[]): string | undefined {
  const secret = r.raw('WEBHOOK_SECRET');
  if (secret !== undefined && !/^[\x21-\x7e]{16,256}$/.test(secret)) {
    throw ConfigError.invalid(
      'WEBHOOK_SECRET',
      '16 to 256 printable ASCII characters',
      `(a value of ${secret.length} characters)`,
    );
  }
  if (secret === undefined && hosts.length > 0) {
    throw ConfigError.invalid(
      'WEBHOOK_SECRET',
      'set when WEBHOOK_ALLOWED_HOSTS is: every webhook call is signed with it',
      undefined,
    );
  }
  return secret;
}

function staticCredentials(r: Reader): Config['aws']['credentials'] {
  const accessKeyId = r.raw('AWS_ACCESS_KEY_ID');
  const secretAccessKey = r.raw('AWS_SECRET_ACCESS_KEY');
  if (accessKeyId === undefined && secretAccessKey === undefined) return undefined;
  if (accessKeyId === undefined || secretAccessKey === undefined) {
    const missing = accessKeyId === undefined ? 'AWS_ACCESS_KEY_ID' : 'AWS_SECRET_ACCESS_KEY';
    throw ConfigError.invalid(missing, 'set too: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together', undefined);
  }
  const sessionToken = r.raw('AWS_SESSION_TOKEN');
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}

export function loadConfig(env: Env = process.env): Config {
  const r = new Reader(env);

  const sharedEndpoint = r.url('AWS_ENDPOINT_URL');
  const sqsEndpoint = r.url('AWS_ENDPOINT_URL_SQS') ?? sharedEndpoint;
  const s3Endpoint = r.url('AWS_ENDPOINT_URL_S3') ?? sharedEndpoint;
  const requestedMode = r.oneOf('ENDPOINT_MODE', 'auto', ['auto', 'embedded', 'aws'] as const);
  const mode: EndpointMode =
    requestedMode === 'embedded'
      ? 'embedded'
      : requestedMode === 'aws' || sqsEndpoint || s3Endpoint || hasAwsCredentialSource(r)
        ? 'external'
        : 'embedded';

  for (const old of ['EMBEDDED_SQS_PORT', 'EMBEDDED_S3_PORT']) {
    if (r.raw(old) !== undefined)
      throw ConfigError.invalid(old, 'unset: one port serves SQS and S3 now, set EMBEDDED_PORT instead', r.raw(old));
  }
  const embedded = { host: '127.0.0.1', port: r.int('EMBEDDED_PORT', 9324, 0, 65535) };
  const embeddedUrl = `http://${embedded.host}:${embedded.port}`;

  const maxBatch = r.int('MAX_BATCH', 8, 1, 256);
  const config: Config = {
    http: {
      host: r.string('HOST', '127.0.0.1'),
      port: r.int('PORT', 3000, 0, 65535),
      // An Application Load Balancer's idle timeout is 1..4000 s.
      keepAlive:
        r.raw('LB_IDLE_TIMEOUT_SECONDS') === undefined
          ? undefined
          : keepAliveTimeouts(r.int('LB_IDLE_TIMEOUT_SECONDS', 60, 1, 4000)),
    },
    aws: {
      region: r.string(
        'AWS_REGION',
        r.raw('AWS_DEFAULT_REGION') ?? 'us-east-1',
        /^[a-z]{2}(-[a-z]+)+-\d+$/,
        'an AWS region such as us-east-1',
      ),
      mode,
      sqsEndpoint: mode === 'embedded' ? embeddedUrl : sqsEndpoint,
      s3Endpoint: mode === 'embedded' ? embeddedUrl : s3Endpoint,
      s3ForcePathStyle: mode === 'embedded' || s3Endpoint !== undefined,
      credentials: staticCredentials(r),
      profile: r.raw('AWS_PROFILE'),
    },
    embedded,
    names: {
      inputBucket: r.string('INPUT_BUCKET', 'image-recognition-input', BUCKET, 'a valid S3 bucket name'),
      outputBucket: r.string('OUTPUT_BUCKET', 'image-recognition-output', BUCKET, 'a valid S3 bucket name'),
      requestQueue: r.string('REQUEST_QUEUE', 'image-recognition-requests', QUEUE, 'a valid SQS queue name'),
      deadLetterQueue: r.string(
        'DEAD_LETTER_QUEUE',
        `${r.raw('REQUEST_QUEUE') ?? 'image-recognition-requests'}-dlq`,
        QUEUE,
        'a valid SQS queue name',
      ),
      maxReceives: r.int('MAX_RECEIVES', 3, 1, 1000),
      batchQueuePrefix: r.string(
        'BATCH_QUEUE_PREFIX',
        'image-recognition-batch-',
        /^[A-Za-z0-9_-]{1,40}$/,
        'up to 40 letters, digits, hyphens or underscores',
      ),
      responseQueuePrefix: r.string(
        'RESPONSE_QUEUE_PREFIX',
        'image-recognition-responses-',
        /^[A-Za-z0-9_-]{1,40}$/,
        'up to 40 letters, digits, hyphens or underscores',
      ),
    },
    model: {
      source: r.string('MODEL', DEFAULT_MODEL_ID),
      modelsDir: resolve(r.string('MODELS_DIR', resolve(projectRoot, '..', 'shared', 'models'))),
      cacheDir: resolve(r.string('MODEL_CACHE_DIR', join(r.raw('DATA_DIR') ?? join(projectRoot, 'data'), 'models'))),
      threads: r.int('MODEL_THREADS', 1, 1, 64),
      device: r.oneOf('MODEL_DEVICE', 'cpu', ['cpu', 'cuda'] as const),
    },
    worker: {
      count: r.raw('WORKERS') === undefined ? undefined : r.int('WORKERS', 0, 0, 256),
      min: r.int('WORKERS_MIN', 0, 0, 256),
      max: r.int('WORKERS_MAX', availableParallelism(), 1, 256),
      policyFile: r.raw('SCALING_POLICY') === undefined ? undefined : resolve(r.raw('SCALING_POLICY')!),
      receiveBatch: r.int('RECEIVE_BATCH', 10, 1, 10),
      pollers: r.int('RECEIVE_POLLERS', 2, 1, 16),
      maxBatch,
      maxBatchWaitMs: r.int('MAX_BATCH_WAIT_MS', 5, 0, 10_000),
      // Short, with a heartbeat every third of it: a crashed worker's messages come back within
      // this many seconds, while a live worker keeps extending what it holds. Longer than the SQS
      // client's read timeout, which a long poll needs longer than its wait (sqsReadTimeoutSeconds):
      // 10 s with the embedded endpoint's 2 s polls, 30 s with 20 s polls elsewhere.
      visibilityTimeoutSeconds: r.int('VISIBILITY_TIMEOUT_SECONDS', mode === 'embedded' ? 10 : 30, 3, 43_200),
      // Long polls save money on AWS; locally they only make Ctrl-C wait.
      receiveWaitSeconds: r.int('RECEIVE_WAIT_SECONDS', mode === 'embedded' ? 2 : 20, 0, 20),
    },
    limits: {
      maxUploadBytes: r.int('MAX_UPLOAD_BYTES', 10 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
      maxFilesPerRequest: r.int('MAX_FILES', 16, 1, 1000),
      requestTimeoutMs: r.int('REQUEST_TIMEOUT_MS', 120_000, 100, 3_600_000),
      answerWaitMs: r.int('ANSWER_WAIT_MS', 30_000, 0, 3_600_000),
      outageRetryMs: r.int('OUTAGE_RETRY_MS', 30_000, 0, 3_600_000),
    },
    ec2: {
      autoScalingGroup: r.raw('AUTO_SCALING_GROUP'),
      webAutoScalingGroup: r.raw('WEB_AUTO_SCALING_GROUP'),
      terminateHook: r.raw('LIFECYCLE_HOOK_TERMINATE'),
      launchHook: r.raw('LIFECYCLE_HOOK_LAUNCH'),
      imdsEndpoint: r.url('IMDS_ENDPOINT') ?? 'http://169.254.169.254',
    },
    scaler: {
      mode: r.oneOf('SCALER', r.raw('AUTO_SCALING_GROUP') ? 'aws' : 'local', ['local', 'aws', 'off'] as const),
      periodSeconds: r.int('SCALER_PERIOD_SECONDS', 2, 1, 60),
    },
    classic: {
      field: r.string(
        'CLASSIC_FIELD',
        'myfile',
        /^[A-Za-z0-9_.[\]-]{1,100}$/,
        'a form field name of up to 100 letters, digits, or . _ - [ ]',
      ),
      // Read untrimmed: a separator may be a space or a tab.
      separator: classicSeparator(env.CLASSIC_SEPARATOR),
    },
    sources: { buckets: list(r, 'SOURCE_BUCKETS', BUCKET, 'comma-separated S3 bucket names') },
    batches: {
      pageSize: r.int('BATCH_PAGE_SIZE', 1000, 1, 1000),
      leaseSeconds: r.int('BATCH_LEASE_SECONDS', 15, 2, 3600),
    },
    webhooks: (() => {
      const allowedHosts = list(
        r,
        'WEBHOOK_ALLOWED_HOSTS',
        WEBHOOK_HOST,
        'comma-separated host names, host:port or *.domain',
      );
      return { allowedHosts, secret: webhookSecret(r, allowedHosts) };
    })(),
    resultCache: r.bool('RESULT_CACHE', true),
    auth: { apiKeys: apiKeys(r), classicRequiresKey: r.bool('CLASSIC_REQUIRES_KEY', false) },
    dataDir: resolve(r.raw('DATA_DIR') ?? join(projectRoot, 'data')),
    logLevel: r.oneOf('LOG_LEVEL', 'info', ['debug', 'info', 'warn', 'error'] as const),
    env: { ...env },
  };
  if (mode === 'embedded' && config.limits.maxUploadBytes > EMBEDDED_MAX_OBJECT_BYTES) {
    throw ConfigError.invalid(
      'MAX_UPLOAD_BYTES',
      `at most ${EMBEDDED_MAX_OBJECT_BYTES} with the embedded endpoint (its largest object)`,
      String(config.limits.maxUploadBytes),
    );
  }
  if (config.scaler.mode === 'aws' && config.ec2.autoScalingGroup === undefined) {
    throw ConfigError.invalid('AUTO_SCALING_GROUP', "the app tier group's name when SCALER=aws", undefined);
  }
  const { receiveWaitSeconds, visibilityTimeoutSeconds } = config.worker;
  if (visibilityTimeoutSeconds < receiveWaitSeconds + MIN_VISIBILITY_OVER_WAIT_SECONDS) {
    throw ConfigError.invalid(
      'VISIBILITY_TIMEOUT_SECONDS',
      `at least RECEIVE_WAIT_SECONDS + ${MIN_VISIBILITY_OVER_WAIT_SECONDS} (${receiveWaitSeconds + MIN_VISIBILITY_OVER_WAIT_SECONDS}): longer than the SQS client's read timeout, which outlasts a long poll`,
      String(visibilityTimeoutSeconds),
    );
  }
  if (config.worker.min > config.worker.max) {
    throw ConfigError.invalid('WORKERS_MIN', `at most WORKERS_MAX (${config.worker.max})`, String(config.worker.min));
  }
  return Object.freeze(config);
}

/**
 * The environment a child process (worker, endpoint) needs to see the same configuration,
 * with the embedded endpoint's real addresses filled in.
 */
export function childEnv(config: Config, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...config.env, DATA_DIR: config.dataDir };
  if (config.aws.mode === 'embedded') {
    env.ENDPOINT_MODE = 'embedded';
    env.EMBEDDED_PORT = String(config.embedded.port);
  }
  return { ...env, ...extra };
}
