/**
 * The scaling policy: one typed object that drives the AWS setup (`scaling/aws/setup.ts`), the local
 * autoscaler (processes instead of instances) and the simulator (`tools/sim/simulator.ts`).
 *
 * ## Target backlog per instance
 *
 * AWS's guidance for queue workers is target tracking on *backlog per instance*:
 *
 *     backlog per instance = ApproximateNumberOfMessagesVisible / GroupInServiceInstances
 *
 * and the target is "how many waiting messages one instance can clear within the latency we accept":
 *
 *     target = acceptableLatencySeconds / secondsPerMessage × messagesPerInstance
 *
 *   - `acceptableLatencySeconds`: the longest a message should wait in the queue (seconds).
 *   - `secondsPerMessage`: the average time one worker slot needs for one message (download, decode,
 *     classify, upload), measured on the instance type the group launches.
 *   - `messagesPerInstance`: how many messages one instance works on at the same time (batch size ×
 *     concurrent workers). 1 for a single sequential worker.
 *
 * Example (the defaults): 30 s acceptable latency, 3 s per image, 1 at a time → target 10 messages per
 * instance; a burst of 100 waiting messages asks for ceil(100 / 10) = 10 instances.
 * `backlog.override` replaces the formula with an explicit number.
 *
 * Everything in seconds. `periodSeconds` is the metric period and decision interval: 60 on AWS
 * (the SQS and Auto Scaling group metrics are 1-minute metrics), about 1 for the local autoscaler.
 */

import { PolicyValidationError } from './errors.js';
import { isObject, type JsonObject } from './values.js';

export interface BacklogTarget {
  /** Longest acceptable wait in the queue, seconds (> 0). */
  readonly acceptableLatencySeconds: number;
  /** Average processing time of one message by one worker slot, seconds (> 0). */
  readonly secondsPerMessage: number;
  /** Messages one instance processes at once: batch size × concurrent workers (integer ≥ 1). */
  readonly messagesPerInstance: number;
  /** Explicit target backlog per instance (> 0); `null` computes it from the three fields above. */
  readonly override: number | null;
}

export interface ScaleFromZeroPolicy {
  /**
   * Target tracking cannot act on an empty group (backlog ÷ 0 instances has no value), so an alarm
   * on "visible ≥ threshold while no instance is in service" sets the capacity directly.
   */
  readonly enabled: boolean;
  /** Visible messages that count as "work waiting" (≥ 1). */
  readonly threshold: number;
  /** Consecutive breaching periods before acting (alarm EvaluationPeriods = DatapointsToAlarm). */
  readonly evaluationPeriods: number;
}

export interface ScaleToZeroPolicy {
  /** Set the capacity to `minCapacity` once the queue has been completely empty for a while. */
  readonly enabled: boolean;
  /** Consecutive periods with visible + in-flight = 0 before acting (integer ≥ 1). */
  readonly emptyPeriods: number;
}

export interface ScalingPolicy {
  /** Free text, ignored by the code. */
  readonly description?: string;
  /** Lowest capacity (instances or processes), integer ≥ 0. */
  readonly minCapacity: number;
  /** Highest capacity, integer ≥ max(1, minCapacity). */
  readonly maxCapacity: number;
  /** Metric period and decision interval, seconds (> 0). AWS needs a multiple of 60. */
  readonly periodSeconds: number;
  readonly backlog: BacklogTarget;
  readonly scaleFromZero: ScaleFromZeroPolicy;
  readonly scaleToZero: ScaleToZeroPolicy;
  /** Seconds after a launch before a new instance counts in the metrics; no scale-in meanwhile. */
  readonly warmupSeconds: number;
  /**
   * No scale-in of any kind (target tracking or scale to zero) within this many seconds of the last
   * scale-out: EC2 bills every start of an instance at least a minute, so removing it sooner saves
   * nothing, and work that arrives in the rest of that minute would pay for another start. 0: no
   * such hold. Only the controller honours it: CloudWatch's policies cannot hold a scale-in after a
   * scale-out, and their scale-to-zero window (emptyPeriods whole minutes) is longer anyway.
   */
  readonly minimumRunSeconds: number;
  /** Minimum seconds between two target-tracking scale-outs. */
  readonly scaleOutCooldownSeconds: number;
  /** Minimum seconds between two target-tracking scale-ins. */
  readonly scaleInCooldownSeconds: number;
}

/** Defaults for the AWS app tier (EC2 instances, 1-minute CloudWatch metrics). */
export const DEFAULT_POLICY: ScalingPolicy = Object.freeze({
  minCapacity: 0,
  maxCapacity: 10,
  periodSeconds: 60,
  backlog: Object.freeze({
    acceptableLatencySeconds: 30,
    secondsPerMessage: 3,
    messagesPerInstance: 1,
    override: null,
  }),
  scaleFromZero: Object.freeze({ enabled: true, threshold: 1, evaluationPeriods: 1 }),
  scaleToZero: Object.freeze({ enabled: true, emptyPeriods: 5 }),
  warmupSeconds: 120,
  minimumRunSeconds: 0,
  scaleOutCooldownSeconds: 60,
  scaleInCooldownSeconds: 300,
});

/** Defaults for the local autoscaler (worker processes on one machine, 1-second periods). */
export const LOCAL_POLICY: ScalingPolicy = Object.freeze({
  ...DEFAULT_POLICY,
  maxCapacity: 4,
  periodSeconds: 1,
  scaleToZero: Object.freeze({ enabled: true, emptyPeriods: 10 }),
  warmupSeconds: 5,
  scaleOutCooldownSeconds: 2,
  scaleInCooldownSeconds: 15,
});

/**
 * Defaults for the active controller on AWS: a loop that every 2 s reads the request queue's
 * attributes (no CloudWatch delay) and the group, runs `decide` and sets the desired capacity.
 *
 *  - `periodSeconds` 2: `SCALER_PERIOD_SECONDS`' default; scale from zero (DEFAULT_POLICY's: threshold
 *    1, evaluationPeriods 1) reacts at the first period end that saw a message.
 *  - `backlog`: 21 ms of worker CPU per image (the workers' CPU per image in a burst, as
 *    `npm run bench` measures it: docs/benchmarks.md › The pipeline under bursts) and 2 worker
 *    processes per instance (a 2-vCPU instance, one worker per vCPU — an assumption), so the target
 *    is 30 / 0.021 × 2 ≈ 2857 waiting messages per instance: another instance pays only when one
 *    cannot clear the backlog within a start.
 *  - `scaleToZero.emptyPeriods` 3: back to `minCapacity` 6 s after the last period with a message
 *    visible or in flight; never while one is in flight (that period is not empty).
 *  - No scale-out cooldown (the decision is absolute, ceil(visible / target), not a step); scale-in
 *    held 10 s after a scale-out and between two target-tracking scale-ins.
 *  - `minimumRunSeconds` 60: an instance it started is kept for its first billed minute (EC2 bills
 *    every start at least a minute): scale to zero comes 3 empty periods after the work, but not
 *    before the last scale-out is a minute old.
 *  - `maxCapacity` 20: the product's bound on app-tier instances.
 * The simulator (`tools/sim/`) runs it in its `controller` and `controller+warm` modes.
 */
export const CONTROLLER_POLICY: ScalingPolicy = Object.freeze({
  ...DEFAULT_POLICY,
  maxCapacity: 20,
  periodSeconds: 2,
  backlog: Object.freeze({ ...DEFAULT_POLICY.backlog, secondsPerMessage: 0.021, messagesPerInstance: 2 }),
  scaleToZero: Object.freeze({ enabled: true, emptyPeriods: 3 }),
  warmupSeconds: 10,
  minimumRunSeconds: 60,
  scaleOutCooldownSeconds: 0,
  scaleInCooldownSeconds: 10,
});

/**
 * The CloudWatch policies that back a controller up (docs/scaling.md › One scaling authority): the
 * AWS setup's windows and periods (`base`), the controller's bounds and its backlog target, so that
 * whichever of the two acts, a backlog asks for the same number of instances.
 */
export function fallbackPolicy(controller: ScalingPolicy, base: ScalingPolicy = DEFAULT_POLICY): ScalingPolicy {
  return validatePolicy({
    ...base,
    minCapacity: controller.minCapacity,
    maxCapacity: controller.maxCapacity,
    backlog: controller.backlog,
  });
}

/** The target-tracking target: messages waiting per instance (see the module comment). */
export function targetBacklogPerInstance(policy: ScalingPolicy): number {
  const b = policy.backlog;
  if (b.override !== null) return b.override;
  return (b.acceptableLatencySeconds / b.secondsPerMessage) * b.messagesPerInstance;
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

const TOP_KEYS = [
  'description',
  'minCapacity',
  'maxCapacity',
  'periodSeconds',
  'backlog',
  'scaleFromZero',
  'scaleToZero',
  'warmupSeconds',
  'minimumRunSeconds',
  'scaleOutCooldownSeconds',
  'scaleInCooldownSeconds',
] as const;
const NESTED_KEYS: Readonly<Record<string, readonly string[]>> = {
  backlog: ['acceptableLatencySeconds', 'secondsPerMessage', 'messagesPerInstance', 'override'],
  scaleFromZero: ['enabled', 'threshold', 'evaluationPeriods'],
  scaleToZero: ['enabled', 'emptyPeriods'],
};

function rejectUnknownKeys(obj: JsonObject, allowed: readonly string[], prefix: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw PolicyValidationError.of(
        `${prefix}${key}`,
        `is not a known field (known: ${allowed.join(', ')})`,
        obj[key],
      );
    }
  }
}

function num(
  obj: JsonObject,
  key: string,
  path: string,
  rule: 'positive' | 'nonNegative' | 'int>=0' | 'int>=1',
): number {
  const v = obj[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw PolicyValidationError.of(path, 'must be a finite number', v);
  switch (rule) {
    case 'positive':
      if (v <= 0) throw PolicyValidationError.of(path, 'must be > 0', v);
      break;
    case 'nonNegative':
      if (v < 0) throw PolicyValidationError.of(path, 'must be >= 0', v);
      break;
    case 'int>=0':
      if (!Number.isInteger(v) || v < 0) throw PolicyValidationError.of(path, 'must be an integer >= 0', v);
      break;
    case 'int>=1':
      if (!Number.isInteger(v) || v < 1) throw PolicyValidationError.of(path, 'must be an integer >= 1', v);
      break;
  }
  return v;
}

function bool(obj: JsonObject, key: string, path: string): boolean {
  const v = obj[key];
  if (typeof v !== 'boolean') throw PolicyValidationError.of(path, 'must be true or false', v);
  return v;
}

function section(obj: JsonObject, key: string): JsonObject {
  const v = obj[key];
  if (!isObject(v)) throw PolicyValidationError.of(key, 'must be an object', v);
  rejectUnknownKeys(v, NESTED_KEYS[key] ?? [], `${key}.`);
  return v;
}

/**
 * Checks a complete policy object (no defaults applied) and returns it typed and frozen.
 * Throws `PolicyValidationError` whose `field` names the first bad field (dotted path).
 */
export function validatePolicy(input: unknown): ScalingPolicy {
  if (!isObject(input)) throw PolicyValidationError.of('(policy)', 'must be a JSON object', input);
  rejectUnknownKeys(input, TOP_KEYS, '');

  const description = input.description;
  if (description !== undefined && typeof description !== 'string') {
    throw PolicyValidationError.of('description', 'must be a string', description);
  }
  const minCapacity = num(input, 'minCapacity', 'minCapacity', 'int>=0');
  const maxCapacity = num(input, 'maxCapacity', 'maxCapacity', 'int>=1');
  if (maxCapacity < minCapacity) {
    throw PolicyValidationError.of('maxCapacity', `must be >= minCapacity (${minCapacity})`, maxCapacity);
  }
  const periodSeconds = num(input, 'periodSeconds', 'periodSeconds', 'positive');

  const b = section(input, 'backlog');
  const override = b.override;
  if (override !== null && (typeof override !== 'number' || !Number.isFinite(override) || override <= 0)) {
    throw PolicyValidationError.of('backlog.override', 'must be null or a number > 0', override);
  }
  const backlog: BacklogTarget = Object.freeze({
    acceptableLatencySeconds: num(b, 'acceptableLatencySeconds', 'backlog.acceptableLatencySeconds', 'positive'),
    secondsPerMessage: num(b, 'secondsPerMessage', 'backlog.secondsPerMessage', 'positive'),
    messagesPerInstance: num(b, 'messagesPerInstance', 'backlog.messagesPerInstance', 'int>=1'),
    override,
  });

  const fz = section(input, 'scaleFromZero');
  const scaleFromZero: ScaleFromZeroPolicy = Object.freeze({
    enabled: bool(fz, 'enabled', 'scaleFromZero.enabled'),
    threshold: num(fz, 'threshold', 'scaleFromZero.threshold', 'positive'),
    evaluationPeriods: num(fz, 'evaluationPeriods', 'scaleFromZero.evaluationPeriods', 'int>=1'),
  });
  if (scaleFromZero.threshold < 1) {
    throw PolicyValidationError.of(
      'scaleFromZero.threshold',
      'must be >= 1 (a count of visible messages)',
      scaleFromZero.threshold,
    );
  }

  const tz = section(input, 'scaleToZero');
  const scaleToZero: ScaleToZeroPolicy = Object.freeze({
    enabled: bool(tz, 'enabled', 'scaleToZero.enabled'),
    emptyPeriods: num(tz, 'emptyPeriods', 'scaleToZero.emptyPeriods', 'int>=1'),
  });

  const policy: ScalingPolicy = Object.freeze({
    ...(description === undefined ? {} : { description }),
    minCapacity,
    maxCapacity,
    periodSeconds,
    backlog,
    scaleFromZero,
    scaleToZero,
    warmupSeconds: num(input, 'warmupSeconds', 'warmupSeconds', 'nonNegative'),
    minimumRunSeconds: num(input, 'minimumRunSeconds', 'minimumRunSeconds', 'nonNegative'),
    scaleOutCooldownSeconds: num(input, 'scaleOutCooldownSeconds', 'scaleOutCooldownSeconds', 'nonNegative'),
    scaleInCooldownSeconds: num(input, 'scaleInCooldownSeconds', 'scaleInCooldownSeconds', 'nonNegative'),
  });

  if (minCapacity === 0 && !scaleFromZero.enabled) {
    throw PolicyValidationError.of(
      'scaleFromZero.enabled',
      'must be true when minCapacity is 0 (target tracking alone cannot scale out from zero instances)',
      false,
    );
  }
  const target = targetBacklogPerInstance(policy);
  if (!Number.isFinite(target) || target <= 0) {
    throw PolicyValidationError.of('backlog', 'must give a finite target backlog per instance > 0', target);
  }
  return policy;
}

/**
 * Applies a partial policy (e.g. parsed from a JSON file) over `base`, one level deep for the nested
 * sections, then validates the result. Unknown fields are rejected so that typos do not go unnoticed.
 */
export function resolvePolicy(partial: unknown, base: ScalingPolicy = DEFAULT_POLICY): ScalingPolicy {
  if (!isObject(partial)) throw PolicyValidationError.of('(policy)', 'must be a JSON object', partial);
  rejectUnknownKeys(partial, TOP_KEYS, '');
  const merged: JsonObject = { ...base };
  for (const [key, value] of Object.entries(partial)) {
    const baseSection: unknown = (base as unknown as JsonObject)[key];
    if (key in NESTED_KEYS) {
      if (!isObject(value)) throw PolicyValidationError.of(key, 'must be an object', value);
      merged[key] = { ...(isObject(baseSection) ? baseSection : {}), ...value };
    } else {
      merged[key] = value;
    }
  }
  return validatePolicy(merged);
}
