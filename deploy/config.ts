/**
 * The deployment's parameters: one typed, validated object from a JSON file (`-c config=FILE`, or
 * `deploy/config.json` when it exists) with CDK context values over it (`-c appTier.max=10`: the
 * same dotted paths). Every field has a default, so `cdk synth` needs nothing at all; a bad value
 * stops the synth with a `DeployError` naming the field. See `deploy/config.example.json`.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { InstanceArchitecture, InstanceType } from 'aws-cdk-lib/aws-ec2';
import { MIN_VISIBILITY_OVER_WAIT_SECONDS, projectRoot } from '../lib/config.js';
import { readJsonFile } from '../lib/json-file.js';
import { BUILTIN_MODEL_IDS, DEFAULT_MODEL_ID } from '../models/registry.js';
import { validatePolicyForAws } from '../scaling/aws/aws-requests.js';
import {
  CONTROLLER_POLICY,
  fallbackPolicy,
  type ScalingPolicy,
  targetBacklogPerInstance,
} from '../scaling/core/policy.js';
import { loadPolicy } from '../scaling/core/policy-file.js';
import { DeployError } from './errors.js';

export interface DeployConfig {
  readonly stackName: string;
  /** Undefined: the account of the credentials `cdk deploy` runs with (the template stays account-agnostic). */
  readonly account: string | undefined;
  readonly region: string;
  readonly vpc: {
    /** An existing VPC; undefined creates one. */
    readonly id: string | undefined;
    /** A new VPC's AZs and NAT gateways (0: instances in public subnets, with no inbound rule). */
    readonly maxAzs: number;
    readonly natGateways: number;
    /** An existing VPC described here instead of looked up (works offline): its AZs and subnets. */
    readonly availabilityZones: readonly string[] | undefined;
    readonly publicSubnetIds: readonly string[] | undefined;
    readonly privateSubnetIds: readonly string[] | undefined;
    /**
     * A new VPC whose instances sit in private subnets with no route to the internet (no NAT): they
     * reach S3 through its gateway endpoint and SQS, EC2 Auto Scaling and CloudWatch through interface
     * endpoints (deploy/network.ts), which the hermetic release makes enough.
     */
    readonly isolated: boolean;
  };
  readonly appTier: {
    readonly instanceType: string;
    readonly min: number;
    readonly max: number;
    readonly warmPool: boolean;
    readonly warmPoolMinSize: number;
    /** Instances prepared (in service + warm) at most; undefined: the group's max. */
    readonly warmPoolMaxPrepared: number | undefined;
    /**
     * Instances scaled in go back to the warm pool (stopped) instead of being terminated. Off by
     * default: such an instance passes the termination hook with the target state Warmed:Stopped,
     * not Terminated, so the worker drains on its unit's SIGTERM only (safe, but it keeps receiving
     * until the hook times out).
     */
    readonly reuseOnScaleIn: boolean;
  };
  readonly webTier: {
    readonly instanceType: string;
    readonly min: number;
    readonly max: number;
    readonly port: number;
    /** REQUEST_TIMEOUT_MS of the web tier, in seconds; the load balancer's idle timeout is longer. */
    readonly requestTimeoutSeconds: number;
    /**
     * The load balancer's idle timeout, and LB_IDLE_TIMEOUT_SECONDS of the web tier, which keeps idle
     * connections open longer (lib/config.ts keepAliveTimeouts). Default: the request timeout + 10 s.
     */
    readonly idleTimeoutSeconds: number;
  };
  /** MODEL: a registry id, an https:// URL or an s3:// location (cached on the instance). */
  readonly model: string;
  /**
   * How long an instance may take to boot (download and unpack the release, load the model, report ready):
   * the app tier's launch hook timeout and the web tier's health check grace period.
   */
  readonly bootTimeoutSeconds: number;
  /** Who may reach the load balancer. */
  readonly clientCidr: string;
  /**
   * An ACM certificate (in the stack's region) for the load balancer: HTTPS on 443, and HTTP on 80
   * answers with a redirect to it. Undefined: HTTP on 80 only.
   */
  readonly certificateArn: string | undefined;
  /** What the stack records, and where (deploy/storage.ts, deploy/network.ts, deploy/load-balancer.ts). */
  readonly logging: {
    /** The load balancer's and the buckets' access logs, into a log bucket. */
    readonly accessLogs: boolean;
    /** A new VPC's flow log (all traffic), into the log bucket. */
    readonly flowLogs: boolean;
    /** Days the log bucket keeps what it receives. */
    readonly expireDays: number;
  };
  /** Buckets whose objects the service may classify where they are (SOURCE_BUCKETS): read by both tiers. */
  readonly sources: { readonly buckets: readonly string[] };
  /** SNS topics a batch's or an image's `notify` may publish to (the web tier's role may publish to these only). */
  readonly notify: { readonly topics: readonly string[] };
  readonly names: {
    readonly prefix: string;
    /** Undefined: `<prefix>-input-<account>-<suffix of the stack's id>` (bucket names are global; deploy/storage.ts). */
    readonly inputBucket: string | undefined;
    readonly outputBucket: string | undefined;
    readonly requestQueue: string;
    readonly deadLetterQueue: string;
    readonly responseQueuePrefix: string;
    /** A batch's answers queue is `<prefix><batch id>` (BATCH_QUEUE_PREFIX). */
    readonly batchQueuePrefix: string;
    readonly appTierGroup: string;
    readonly webTierGroup: string;
    readonly terminateHook: string;
    readonly launchHook: string;
  };
  readonly queue: {
    readonly maxReceives: number;
    readonly visibilityTimeoutSeconds: number;
    readonly receiveWaitSeconds: number;
  };
  readonly scaling: {
    /** A partial scaling policy (docs/scaling.md) over the AWS defaults; its bounds are appTier.min/max. */
    readonly policyFile: string | undefined;
    /** SCALER_PERIOD_SECONDS of the controller in the web tier. */
    readonly controllerPeriodSeconds: number;
  };
  readonly alarms: {
    /** The "oldest message too old" alarm's threshold. */
    readonly oldestMessageSeconds: number;
    /** Alarm notifications by e-mail (an SNS topic and subscription), if given. */
    readonly email: string | undefined;
  };
  /** Keep the buckets (and what they hold) when the stack is destroyed. */
  readonly retainBuckets: boolean;
  /**
   * Use existing buckets, names.inputBucket and names.outputBucket (e.g. those a destroyed stack
   * retained), instead of creating them: the stack adds their TLS-only policies and nothing else.
   */
  readonly importBuckets: boolean;
  /** The release artifact (`npm run deploy:package`). */
  readonly release: string;
}

type Raw = Readonly<Record<string, unknown>>;
type Parse<T> = (value: unknown, field: string) => T;

// ---------------------------------------------------------------------------------------------
// Value parsers: each takes a JSON value or a context string (`-c field=value` gives strings)
// ---------------------------------------------------------------------------------------------

function text(pattern: RegExp, expected: string): Parse<string> {
  return (value, field) => {
    if (typeof value !== 'string' || !pattern.test(value)) throw DeployError.invalid(field, expected, value);
    return value;
  };
}

function integer(min: number, max: number): Parse<number> {
  return (value, field) => {
    const n = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max)
      throw DeployError.invalid(field, `an integer in ${min}..${max}`, value);
    return n;
  };
}

const bool: Parse<boolean> = (value, field) => {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw DeployError.invalid(field, 'true or false', value);
};

/** A JSON array of strings, or (from the command line) a comma-separated string. */
function list(item: RegExp, expected: string): Parse<readonly string[]> {
  return (value, field) => {
    const items =
      typeof value === 'string'
        ? value
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== '')
        : value;
    if (
      !Array.isArray(items) ||
      items.length === 0 ||
      !items.every((s): s is string => typeof s === 'string' && item.test(s))
    ) {
      throw DeployError.invalid(field, `a non-empty list of ${expected}`, value);
    }
    return Object.freeze([...items]);
  };
}

const INSTANCE_TYPE = text(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'an EC2 instance type such as c7a.medium');
const QUEUE_NAME = text(/^[A-Za-z0-9_-]{1,80}$/, 'an SQS queue name (1-80 letters, digits, "-" or "_")');
const BUCKET_NAME = text(
  /^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
  'an S3 bucket name (3-63 lowercase letters, digits, "." or "-")',
);
const GROUP_NAME = text(/^[A-Za-z0-9_.-]{1,255}$/, 'an Auto Scaling group name (letters, digits, ".", "-" or "_")');
const HOOK_NAME = text(/^[A-Za-z0-9_./-]{1,255}$/, 'a lifecycle hook name (letters, digits, ".", "/", "-" or "_")');
const SUBNET = /^subnet-[0-9a-f]{8,17}$/;

/** An IPv4 CIDR block such as 203.0.113.0/24. */
const cidr: Parse<string> = (value, field) => {
  const match =
    typeof value === 'string' ? /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value) : null;
  if (!match || match.slice(1, 5).some((o) => Number(o) > 255) || Number(match[5]) > 32) {
    throw DeployError.invalid(field, 'an IPv4 CIDR block such as 203.0.113.0/24 (0.0.0.0/0: anyone)', value);
  }
  return value as string;
};

/** MODEL on an instance: a registry id, an https:// URL or an s3:// location (no local path exists there). */
const model: Parse<string> = (value, field) => {
  const expected = `a registry id (${BUILTIN_MODEL_IDS.join(', ')}), an https:// URL or an s3://bucket/key location`;
  if (typeof value !== 'string' || /[\s'"\\$`]/.test(value)) throw DeployError.invalid(field, expected, value);
  if (BUILTIN_MODEL_IDS.includes(value)) return value;
  if (/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/.+$/.test(value)) return value;
  try {
    if (new URL(value).protocol === 'https:') return value;
  } catch {
    // not a URL: refused below
  }
  throw DeployError.invalid(field, expected, value);
};

// ---------------------------------------------------------------------------------------------
// The fields: dotted path → parser (undefined default = optional)
// ---------------------------------------------------------------------------------------------

const FIELDS = {
  stackName: text(
    /^[A-Za-z][A-Za-z0-9-]{0,127}$/,
    'a CloudFormation stack name (a letter, then letters, digits or "-")',
  ),
  account: text(/^\d{12}$/, 'a 12-digit AWS account id'),
  region: text(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'an AWS region such as us-east-1'),
  'vpc.id': text(/^vpc-[0-9a-f]{8,17}$/, 'a VPC id such as vpc-0123456789abcdef0'),
  'vpc.maxAzs': integer(1, 6),
  'vpc.natGateways': integer(0, 6),
  'vpc.availabilityZones': list(/^[a-z]{2}(-[a-z]+)+-\d+[a-z]$/, 'availability zones such as us-east-1a'),
  'vpc.publicSubnetIds': list(SUBNET, 'subnet ids'),
  'vpc.privateSubnetIds': list(SUBNET, 'subnet ids'),
  'vpc.isolated': bool,
  'appTier.instanceType': INSTANCE_TYPE,
  'appTier.min': integer(0, 1000),
  'appTier.max': integer(1, 1000),
  'appTier.warmPool': bool,
  'appTier.warmPoolMinSize': integer(0, 1000),
  'appTier.warmPoolMaxPrepared': integer(0, 1000),
  'appTier.reuseOnScaleIn': bool,
  'webTier.instanceType': INSTANCE_TYPE,
  'webTier.min': integer(1, 100),
  'webTier.max': integer(1, 100),
  'webTier.port': integer(1024, 65535),
  'webTier.requestTimeoutSeconds': integer(1, 3600),
  'webTier.idleTimeoutSeconds': integer(1, 4000),
  bootTimeoutSeconds: integer(60, 7200),
  model,
  clientCidr: cidr,
  'names.prefix': text(
    /^[a-z][a-z0-9-]{0,23}$/,
    'a lowercase letter, then up to 23 lowercase letters, digits or "-" (bucket and queue names start with it)',
  ),
  'names.inputBucket': BUCKET_NAME,
  'names.outputBucket': BUCKET_NAME,
  'names.requestQueue': QUEUE_NAME,
  'names.deadLetterQueue': QUEUE_NAME,
  'names.responseQueuePrefix': text(/^[A-Za-z0-9_-]{1,40}$/, 'up to 40 letters, digits, "-" or "_"'),
  'names.batchQueuePrefix': text(/^[A-Za-z0-9_-]{1,40}$/, 'up to 40 letters, digits, "-" or "_"'),
  'sources.buckets': list(/^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'S3 bucket names'),
  'notify.topics': list(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/, 'SNS topic ARNs'),
  'names.appTierGroup': GROUP_NAME,
  'names.webTierGroup': GROUP_NAME,
  'names.terminateHook': HOOK_NAME,
  'names.launchHook': HOOK_NAME,
  'queue.maxReceives': integer(1, 1000),
  'queue.visibilityTimeoutSeconds': integer(3, 43_200),
  'queue.receiveWaitSeconds': integer(0, 20),
  'scaling.policyFile': text(/^\S(.*\S)?$/, 'a path to a JSON scaling policy'),
  'scaling.controllerPeriodSeconds': integer(1, 60),
  'alarms.oldestMessageSeconds': integer(60, 86_400),
  'alarms.email': text(/^[^\s@'"]+@[^\s@'"]+\.[^\s@'"]+$/, 'an e-mail address'),
  retainBuckets: bool,
  importBuckets: bool,
  certificateArn: text(
    /^arn:aws[a-z-]*:acm:[a-z]{2}(-[a-z]+)+-\d+:\d{12}:certificate\/[0-9a-f-]{36}$/,
    'an ACM certificate ARN such as arn:aws:acm:us-east-1:123456789012:certificate/<uuid>',
  ),
  'logging.accessLogs': bool,
  'logging.flowLogs': bool,
  'logging.expireDays': integer(1, 3650),
  release: text(/^\S(.*\S)?$/, 'the path of the release artifact (npm run deploy:package)'),
} as const satisfies Record<string, Parse<unknown>>;

type Field = keyof typeof FIELDS;
const SECTIONS = new Set(Object.keys(FIELDS).map((f) => f.split('.')[0]!));

/** `{ appTier: { max: 10 } }` → `{ 'appTier.max': 10 }`; unknown fields are refused by name. */
function flatten(value: unknown, prefix: string, out: Record<string, unknown>): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw DeployError.invalid(prefix || '(config)', 'a JSON object', value);
  }
  for (const [key, inner] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (path === '$comment' || key.startsWith('//')) continue;
    if (Object.hasOwn(FIELDS, path)) out[path] = inner;
    else if (SECTIONS.has(path) && inner !== null && typeof inner === 'object' && !Array.isArray(inner))
      flatten(inner, path, out);
    else throw DeployError.invalid(path, `a known field (${knownUnder(prefix)})`, inner);
  }
  return out;
}

function knownUnder(prefix: string): string {
  const fields = Object.keys(FIELDS).filter((f) => (prefix ? f.startsWith(`${prefix}.`) : true));
  return fields
    .map((f) => (prefix ? f.slice(prefix.length + 1) : f.split('.')[0]!))
    .filter((f, i, all) => all.indexOf(f) === i)
    .join(', ');
}

/** The context keys that are ours: a field's dotted path (or its section as an object). */
function fromContext(context: Raw): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(context)) {
    const section = key.split('.')[0]!;
    if (!SECTIONS.has(section)) continue; // CDK's own context (feature flags, lookups...)
    if (Object.hasOwn(FIELDS, key)) out[key] = value;
    else if (!key.includes('.') && value !== null && typeof value === 'object') flatten(value, key, out);
    else throw DeployError.invalid(key, `a known field (${knownUnder(section)})`, value);
  }
  return out;
}

/** `ImageRecognition` → `image-recognition`. */
export function kebab(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .toLowerCase()
    .replace(/^-+|-+$/g, '')
    .slice(0, 24)
    .replace(/-+$/, '');
}

export interface ConfigSources {
  /** The config file's parsed contents (nested, like config.example.json). */
  readonly file?: unknown;
  /** CDK context (`-c key=value`, cdk.json); keys that are not ours are ignored. */
  readonly context?: Raw;
  /** CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION, as the cdk CLI sets them when it has credentials. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** Validates everything and fills in the defaults; throws `DeployError` naming the first bad field. */
export function resolveDeployConfig(sources: ConfigSources = {}): DeployConfig {
  const given: Record<string, unknown> = {
    ...(sources.file === undefined ? {} : flatten(sources.file, '', {})),
    ...fromContext(sources.context ?? {}),
  };
  const env = sources.env ?? {};
  function get<F extends Field>(field: F): ReturnType<(typeof FIELDS)[F]> | undefined;
  function get<F extends Field>(field: F, fallback: ReturnType<(typeof FIELDS)[F]>): ReturnType<(typeof FIELDS)[F]>;
  function get<F extends Field>(field: F, fallback?: ReturnType<(typeof FIELDS)[F]>) {
    const value = given[field];
    if (value === undefined || value === null || value === '') return fallback;
    return FIELDS[field](value, field) as ReturnType<(typeof FIELDS)[F]>;
  }

  const stackName = get('stackName', 'ImageRecognition');
  const prefix = get('names.prefix') ?? kebab(stackName);
  if (!/^[a-z][a-z0-9-]{0,23}$/.test(prefix)) {
    throw DeployError.invalid(
      'names.prefix',
      'set when stackName gives no usable default (a lowercase letter, then up to 23 lowercase letters, digits or "-")',
      prefix,
    );
  }
  const requestQueue = get('names.requestQueue', `${prefix}-requests`);
  const requestTimeoutSeconds = get('webTier.requestTimeoutSeconds', 120);
  const envAccount = env.CDK_DEFAULT_ACCOUNT;
  const config: DeployConfig = {
    stackName,
    account: get('account') ?? (envAccount && /^\d{12}$/.test(envAccount) ? envAccount : undefined),
    region: get('region') ?? FIELDS.region(env.CDK_DEFAULT_REGION ?? 'us-east-1', 'region (from CDK_DEFAULT_REGION)'),
    vpc: {
      id: get('vpc.id'),
      maxAzs: get('vpc.maxAzs', 2),
      natGateways: get('vpc.natGateways', 0),
      availabilityZones: get('vpc.availabilityZones'),
      publicSubnetIds: get('vpc.publicSubnetIds'),
      privateSubnetIds: get('vpc.privateSubnetIds'),
      isolated: get('vpc.isolated', false),
    },
    appTier: {
      instanceType: get('appTier.instanceType', 'c7a.medium'),
      min: get('appTier.min', 0),
      max: get('appTier.max', 20),
      warmPool: get('appTier.warmPool', true),
      warmPoolMinSize: get('appTier.warmPoolMinSize', 0),
      warmPoolMaxPrepared: get('appTier.warmPoolMaxPrepared'),
      reuseOnScaleIn: get('appTier.reuseOnScaleIn', false),
    },
    webTier: {
      instanceType: get('webTier.instanceType', 't3.small'),
      min: get('webTier.min', 1),
      max: get('webTier.max', 2),
      port: get('webTier.port', 3000),
      requestTimeoutSeconds,
      idleTimeoutSeconds: get('webTier.idleTimeoutSeconds', requestTimeoutSeconds + 10),
    },
    bootTimeoutSeconds: get('bootTimeoutSeconds', 900),
    model: get('model', DEFAULT_MODEL_ID),
    clientCidr: get('clientCidr', '0.0.0.0/0'),
    certificateArn: get('certificateArn'),
    sources: { buckets: get('sources.buckets', []) },
    notify: { topics: get('notify.topics', []) },
    logging: {
      accessLogs: get('logging.accessLogs', true),
      flowLogs: get('logging.flowLogs', true),
      expireDays: get('logging.expireDays', 90),
    },
    names: {
      prefix,
      inputBucket: get('names.inputBucket'),
      outputBucket: get('names.outputBucket'),
      requestQueue,
      deadLetterQueue: get('names.deadLetterQueue', `${requestQueue}-dlq`),
      responseQueuePrefix: get('names.responseQueuePrefix', `${prefix}-responses-`),
      batchQueuePrefix: get('names.batchQueuePrefix', `${prefix}-batch-`),
      appTierGroup: get('names.appTierGroup', `${prefix}-app`),
      webTierGroup: get('names.webTierGroup', `${prefix}-web`),
      terminateHook: get('names.terminateHook', `${prefix}-drain`),
      launchHook: get('names.launchHook', `${prefix}-warm-up`),
    },
    queue: {
      maxReceives: get('queue.maxReceives', 3),
      // Longer than the instances' SQS read timeout, which outlasts the 20 s long polls (lib/config.ts
      // sqsReadTimeoutSeconds); the worker's heartbeat extends it while a batch is worked on.
      visibilityTimeoutSeconds: get('queue.visibilityTimeoutSeconds', 30),
      receiveWaitSeconds: get('queue.receiveWaitSeconds', 20),
    },
    scaling: {
      policyFile: get('scaling.policyFile'),
      controllerPeriodSeconds: get('scaling.controllerPeriodSeconds', 2),
    },
    alarms: {
      oldestMessageSeconds: get('alarms.oldestMessageSeconds', 300),
      email: get('alarms.email'),
    },
    retainBuckets: get('retainBuckets', true),
    importBuckets: get('importBuckets', false),
    release: get('release', DEFAULT_RELEASE),
  };
  checkTogether(config);
  return deepFreeze(config);
}

/** Where `npm run deploy:package` writes the artifact, relative to the project root. */
export const DEFAULT_RELEASE = '.tmp/release/image-recognition.tgz';

/** Rules between fields. */
function checkTogether(c: DeployConfig): void {
  if (c.appTier.max < c.appTier.min)
    throw DeployError.invalid('appTier.max', `at least appTier.min (${c.appTier.min})`, c.appTier.max);
  if (c.webTier.max < c.webTier.min)
    throw DeployError.invalid('webTier.max', `at least webTier.min (${c.webTier.min})`, c.webTier.max);
  const { receiveWaitSeconds, visibilityTimeoutSeconds } = c.queue;
  if (visibilityTimeoutSeconds < receiveWaitSeconds + MIN_VISIBILITY_OVER_WAIT_SECONDS) {
    throw DeployError.invalid(
      'queue.visibilityTimeoutSeconds',
      `at least queue.receiveWaitSeconds + ${MIN_VISIBILITY_OVER_WAIT_SECONDS} (${receiveWaitSeconds + MIN_VISIBILITY_OVER_WAIT_SECONDS}): longer than the SQS read timeout of the instances, which outlasts a long poll (SQS: the visibility timeout longer than the SDK read timeout)`,
      visibilityTimeoutSeconds,
    );
  }
  if (c.webTier.idleTimeoutSeconds <= c.webTier.requestTimeoutSeconds) {
    // The web tier answers a request that waited its full time before the load balancer gives up on it.
    throw DeployError.invalid(
      'webTier.idleTimeoutSeconds',
      `longer than webTier.requestTimeoutSeconds (${c.webTier.requestTimeoutSeconds})`,
      c.webTier.idleTimeoutSeconds,
    );
  }
  const prepared = c.appTier.warmPoolMaxPrepared;
  if (prepared !== undefined && prepared < c.appTier.warmPoolMinSize) {
    throw DeployError.invalid(
      'appTier.warmPoolMaxPrepared',
      `at least appTier.warmPoolMinSize (${c.appTier.warmPoolMinSize})`,
      prepared,
    );
  }
  if (c.names.inputBucket !== undefined && c.names.inputBucket === c.names.outputBucket) {
    throw DeployError.invalid('names.outputBucket', 'another bucket than names.inputBucket', c.names.outputBucket);
  }
  if (c.names.deadLetterQueue === c.names.requestQueue) {
    throw DeployError.invalid(
      'names.deadLetterQueue',
      'another queue than names.requestQueue',
      c.names.deadLetterQueue,
    );
  }
  if (
    c.names.requestQueue.startsWith(c.names.responseQueuePrefix) ||
    c.names.deadLetterQueue.startsWith(c.names.responseQueuePrefix)
  ) {
    // The web tier may delete queues under the prefix (the janitor): never the request queues.
    throw DeployError.invalid(
      'names.responseQueuePrefix',
      'a prefix that neither names.requestQueue nor names.deadLetterQueue starts with',
      c.names.responseQueuePrefix,
    );
  }
  checkServing(c);
  const { id, availabilityZones, publicSubnetIds, privateSubnetIds } = c.vpc;
  if (id !== undefined && c.vpc.isolated) {
    throw DeployError.invalid(
      'vpc.isolated',
      'false with vpc.id (it builds a new VPC with its endpoints; an existing VPC brings its own routes or endpoints)',
      true,
    );
  }
  if (id === undefined) {
    if (c.vpc.maxAzs < 2) throw DeployError.invalid('vpc.maxAzs', `at least 2 (${TWO_ZONES})`, c.vpc.maxAzs);
    if (c.vpc.isolated && c.vpc.natGateways > 0) {
      throw DeployError.invalid(
        'vpc.natGateways',
        '0 with vpc.isolated (its instances have no route to the internet)',
        c.vpc.natGateways,
      );
    }
    for (const field of ['availabilityZones', 'publicSubnetIds', 'privateSubnetIds'] as const) {
      if (c.vpc[field] !== undefined)
        throw DeployError.invalid(`vpc.${field}`, 'given only with vpc.id (an existing VPC)', c.vpc[field]);
    }
    return;
  }
  const described = availabilityZones !== undefined || publicSubnetIds !== undefined || privateSubnetIds !== undefined;
  if (described) {
    // Described here: no lookup, so synth works offline. The load balancer needs public subnets.
    if (availabilityZones === undefined)
      throw DeployError.invalid('vpc.availabilityZones', "the VPC's availability zones, one per subnet", undefined);
    if (new Set(availabilityZones).size < 2)
      throw DeployError.invalid('vpc.availabilityZones', `two zones or more (${TWO_ZONES})`, availabilityZones);
    if (publicSubnetIds?.length !== availabilityZones.length) {
      throw DeployError.invalid(
        'vpc.publicSubnetIds',
        `one public subnet per availability zone (${availabilityZones.length})`,
        publicSubnetIds,
      );
    }
    if (privateSubnetIds !== undefined && privateSubnetIds.length !== availabilityZones.length) {
      throw DeployError.invalid(
        'vpc.privateSubnetIds',
        `one private subnet per availability zone (${availabilityZones.length})`,
        privateSubnetIds,
      );
    }
  } else if (c.account === undefined) {
    // Vpc.fromLookup needs a concrete environment (and credentials, once; cdk.context.json keeps the answer).
    throw DeployError.invalid(
      'account',
      'set (or credentials for cdk to find it) when vpc.id is looked up; or describe the VPC with vpc.availabilityZones and vpc.publicSubnetIds',
      undefined,
    );
  }
}

/** Why a load balancer's VPC needs two zones (Elastic Load Balancing: subnets from at least two Availability Zones). */
const TWO_ZONES = 'an Application Load Balancer needs subnets in at least two availability zones';

/** The load balancer's certificate, the instances' architecture, the buckets to import. */
function checkServing(c: DeployConfig): void {
  const arn = c.certificateArn;
  const certificateRegion = arn?.split(':')[3];
  if (arn !== undefined && certificateRegion !== c.region) {
    // A load balancer uses certificates of its own region only (ACM certificates are regional).
    throw DeployError.invalid('certificateArn', `a certificate in the stack's region ${c.region}`, arn);
  }
  for (const tier of ['appTier', 'webTier'] as const) {
    const type = c[tier].instanceType;
    if (new InstanceType(type).architecture !== InstanceArchitecture.X86_64) {
      throw DeployError.invalid(
        `${tier}.instanceType`,
        'an x86_64 instance type (the release is built for linux-x64: its Node.js, ONNX Runtime and image libraries)',
        type,
      );
    }
  }
  if (c.importBuckets) {
    for (const field of ['inputBucket', 'outputBucket'] as const) {
      if (c.names[field] === undefined)
        throw DeployError.invalid(
          `names.${field}`,
          'the name of the bucket to import (importBuckets is true)',
          undefined,
        );
    }
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** The config file: `-c config=FILE`, else `deploy/config.json` when it exists, else none. */
export async function readConfigFile(context: Raw): Promise<unknown> {
  const given = context.config;
  if (given !== undefined && (typeof given !== 'string' || given.trim() === ''))
    throw DeployError.invalid('config', 'the path of a JSON config file', given);
  const file = given === undefined ? resolve(projectRoot, 'deploy', 'config.json') : resolve(given);
  if (given === undefined && !existsSync(file)) return undefined;
  return readJsonFile(file, {
    what: 'deployment config file',
    fail: (message, cause) => new DeployError('DEPLOY_CONFIG_FILE', message, { file }, { cause }),
  });
}

/**
 * The app tier's CloudWatch scaling policy, the web tier's controller's fallback
 * (`fallbackPolicy`): the AWS defaults with the controller's backlog target, the policy file over
 * them, bounds from appTier.min/max (a policy file that sets other bounds, or another backlog
 * target than the controller's, is refused: one place for each).
 */
export async function stackPolicy(config: DeployConfig): Promise<ScalingPolicy> {
  const controller = { ...CONTROLLER_POLICY, minCapacity: config.appTier.min, maxCapacity: config.appTier.max };
  const base = fallbackPolicy(controller);
  const file = config.scaling.policyFile;
  let policy: ScalingPolicy;
  try {
    policy = file === undefined ? base : await loadPolicy(resolve(file), base);
    validatePolicyForAws(policy);
  } catch (err) {
    const field = (err as { context?: { field?: unknown } }).context?.field;
    throw new DeployError(
      'INVALID_DEPLOY_CONFIG',
      `scaling.policyFile: ${(err as Error).message}`,
      { field: 'scaling.policyFile', policyField: field ?? null, file: file ?? null },
      { cause: err },
    );
  }
  if (policy.minCapacity !== config.appTier.min || policy.maxCapacity !== config.appTier.max) {
    throw DeployError.invalid(
      'scaling.policyFile',
      `a policy without its own bounds (appTier.min/max, ${config.appTier.min}..${config.appTier.max}, are the group's and the policy's)`,
      `minCapacity ${policy.minCapacity}, maxCapacity ${policy.maxCapacity}`,
    );
  }
  if (targetBacklogPerInstance(policy) !== targetBacklogPerInstance(controller)) {
    throw DeployError.invalid(
      'scaling.policyFile',
      `a policy without its own backlog target (the web tier's controller and these policies share one, ${targetBacklogPerInstance(controller)} waiting messages per instance)`,
      `${targetBacklogPerInstance(policy)} per instance`,
    );
  }
  return policy;
}
