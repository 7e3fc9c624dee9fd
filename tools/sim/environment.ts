/**
 * What the simulator simulates besides the policy: the environment (`SimEnvironment`), its presets
 * per mode, and the policy each mode runs with.
 *
 * Modes
 *  - `alarms`: CloudWatch alarms and target tracking, as `npm run scaling:setup` configures them —
 *    60 s metric periods, each datapoint seen one period late; instances boot from scratch.
 *  - `controller`: an active controller that every `CONTROLLER_POLICY.periodSeconds` (2 s) reads the
 *    request queue and the group itself (no CloudWatch delay) and sets the desired capacity;
 *    instances still boot from scratch.
 *  - `controller+warm`: the same controller over an Auto Scaling warm pool: a scale-out starts a
 *    stopped, pre-initialized instance (`warmStartSeconds`) instead of launching one.
 *  - `as-deployed`: what the stack deploys, scaling included: the controller of `controller+warm`,
 *    sending its heartbeat, and beside it the group's CloudWatch policies, run from the very requests
 *    the stack's resources are made of (`scalingRequests` with the stack's default names and its
 *    `fallbackPolicy`), standing aside while the heartbeat comes (docs/scaling.md › One scaling authority).
 *  - `controller-dies`: the same, but the controller dies at `controllerDiesAt` (`--compare`: half-way
 *    through the `as-deployed` run of the trace): the CloudWatch policies finish the work.
 *  - `local`: the local autoscaler's worker processes (`npm start`), calibrated by scaling:validate.
 *
 * The AWS modes share one environment, `AWS_ENVIRONMENT`, whose defaults come from published
 * measurements (sources in docs/scaling.md › Simulator › Parameters); each AWS mode's policy takes
 * its backlog estimate (seconds per image, slots per instance) from that environment, so every mode
 * is tuned to the same service time and the modes differ only in how they see the queue and start
 * instances.
 */

import { resolveDeployConfig } from '../../deploy/config.js';
import { type SetupTarget, scalingRequests } from '../../scaling/aws/aws-requests.js';
import { ScalingError } from '../../scaling/core/errors.js';
import {
  CONTROLLER_POLICY,
  DEFAULT_POLICY,
  fallbackPolicy,
  LOCAL_POLICY,
  type ScalingPolicy,
  validatePolicy,
} from '../../scaling/core/policy.js';
import type { AuthorityInput } from './scalers.js';

export const AWS_MODES = ['alarms', 'controller', 'controller+warm', 'as-deployed', 'controller-dies'] as const;
/** The modes that run the stack's scaling: the controller and its CloudWatch policies together. */
export const AUTHORITY_MODES = ['as-deployed', 'controller-dies'] as const;
export type AwsMode = (typeof AWS_MODES)[number];
export const SIM_MODES = [...AWS_MODES, 'local'] as const;
export type SimMode = (typeof SIM_MODES)[number];

export interface SimEnvironment {
  /** Launch → worker ready (in service), seconds. */
  readonly bootSeconds: number;
  /** A stopped warm-pool instance started → worker ready, seconds (used when warmPoolSize > 0). */
  readonly warmStartSeconds: number;
  /**
   * Stopped, pre-initialized instances in the warm pool at t = 0 (0: no warm pool). A scale-out
   * takes from the pool while it has any, then launches; a scale-in puts instances back (reuse on
   * scale in) up to this size, terminates the rest.
   */
  readonly warmPoolSize: number;
  /**
   * Each start of an instance (launch, or start from the warm pool) is billed at least this many
   * seconds, then per second: instance-minutes count max(this, seconds it ran) per start.
   */
  readonly minimumBilledSeconds: number;
  /** Processing time per image, seconds. */
  readonly perImageSeconds: number;
  /** Fixed cost per batch (model call, round trips), seconds. */
  readonly batchOverheadSeconds: number;
  /** Messages received and processed together by one slot (1-10, like SQS ReceiveMessage). */
  readonly batchSize: number;
  /** Worker slots per instance. */
  readonly concurrency: number;
  /** Relative service-time noise: × U(1 − jitter, 1 + jitter), 0 ≤ jitter < 1. */
  readonly jitter: number;
  /** Seconds before messages of a terminated instance become visible again. */
  readonly visibilityTimeoutSeconds: number;
  /**
   * A busy instance chosen for scale-in stops taking messages, finishes the ones it holds, then
   * leaves (a termination lifecycle hook; SIGTERM to the worker). false: it is terminated at once and
   * its messages come back after the visibility timeout.
   */
  readonly drainOnScaleIn: boolean;
  /**
   * What one datapoint holds: `period-max`, the maximum visible and in-flight counts during the
   * period (CloudWatch's Maximum; the local autoscaler's sampled readings plus worker activity);
   * `instant`, one reading at the period's end (a single GetQueueAttributes per period).
   */
  readonly observation: 'period-max' | 'instant';
  /** Periods between the end of a datapoint's period and the scaler seeing it. */
  readonly metricLagPeriods: number;
  /**
   * Where the scaler's periods end, seconds after the trace's origin: at tickPhaseSeconds + k × period
   * (0: at the period's multiples). A controller's grid starts when the controller does, not with the
   * trace: `scaling:validate` measures it, as a decision (a tick) is up to a whole period late or early
   * against a grid on the origin.
   */
  readonly tickPhaseSeconds: number;
  readonly seed: number;
  /** Stop after this many seconds past the last arrival even if not drained. */
  readonly horizonAfterLastArrivalSeconds: number;
  /**
   * Per-request handling before the queue: arrival → its message visible in the queue (HTTP upload,
   * storing, enqueuing), seconds. Counts in latency; does not occupy an instance.
   */
  readonly ingestSeconds: number;
  /**
   * Per-request handling after the slot: its batch processed → its client answered (fetch/decode/
   * persist around the slot, the answer's way back), seconds. Counts in latency and makespan; does
   * not occupy the slot. ingestSeconds + deliverSeconds is the request overhead outside the queue.
   */
  readonly deliverSeconds: number;
  /**
   * Seconds after an instance comes into service during which it works at 1 / coldStartFactor of its
   * speed (see coldServiceSeconds). Not `warmupSeconds`: that is the policy's scale-in hold.
   */
  readonly coldStartSeconds: number;
  /** Slowdown of an instance during its first coldStartSeconds in service, ≥ 1 (1: no cold start). */
  readonly coldStartFactor: number;
  /**
   * Measured per-request overhead: each request draws one pair (uniformly, seeded) and adds it to
   * ingestSeconds and deliverSeconds. Absent: every request has the constants only.
   */
  readonly overheadSamples?: readonly RequestOverhead[];
}

/** One request's time outside the queue and the slot, seconds (see SimEnvironment). */
export interface RequestOverhead {
  readonly ingestSeconds: number;
  readonly deliverSeconds: number;
}

type NumericField = {
  [K in keyof SimEnvironment]-?: SimEnvironment[K] extends number ? K : never;
}[keyof SimEnvironment];

const NO_EXTRAS = {
  batchOverheadSeconds: 0,
  jitter: 0.1,
  seed: 1,
  horizonAfterLastArrivalSeconds: 86_400,
  tickPhaseSeconds: 0,
  ingestSeconds: 0,
  deliverSeconds: 0,
  coldStartSeconds: 0,
  coldStartFactor: 1,
  observation: 'period-max',
} as const;

/**
 * The AWS app tier, shared by the three AWS modes. Sources (docs/scaling.md › Parameters):
 *  - bootSeconds 33 = 25.8 s EC2 launch → SSH (Amazon Linux 2023, m7i.large, measured) + 7.2 s from
 *    the start of the release's unpack to its first answer (the hermetic release of `npm run
 *    deploy:package`, booted with no network: `npm run deploy:boot-time`, median of 5 on the
 *    project's 2-core machine, 2026-12-05; docs/benchmarks.md › The release's boot). Not in it: the group's reaction and
 *    the 94 MB download from S3.
 *  - warmStartSeconds 25 = 2 s (assumption) + 21.2 s EC2 start of a stopped instance → SSH
 *    (same measurement) + 2 s worker start, model already on the volume (assumption).
 *  - perImageSeconds 0.021: worker CPU per image, `npm run bench` (docs/benchmarks.md › The pipeline under bursts);
 *    concurrency 2: a 2-vCPU instance with one worker per vCPU, each vCPU as fast as one core of the
 *    machine measured (assumption); batchSize 8: the worker's MAX_BATCH.
 *  - visibilityTimeoutSeconds 10: VISIBILITY_TIMEOUT_SECONDS (the worker's heartbeat extends it).
 *  - minimumBilledSeconds 60: EC2 bills every start of a Linux instance at least one minute, then
 *    per second (StartInstances, EC2 API reference).
 *  - metricLagPeriods (alarms) 1: SQS pushes its metrics to CloudWatch once a minute, so a period's
 *    datapoint is evaluated one period after it ends at the earliest.
 */
const AWS_ENVIRONMENT = {
  ...NO_EXTRAS,
  bootSeconds: 33,
  warmStartSeconds: 25,
  perImageSeconds: 0.021,
  batchSize: 8,
  concurrency: 2,
  visibilityTimeoutSeconds: 10,
  minimumBilledSeconds: 60,
  drainOnScaleIn: true,
} as const;

/**
 * The environment of a mode. AWS modes: `AWS_ENVIRONMENT`, the metric lag of the alarms, and for
 * `controller+warm` a warm pool of `policy.maxCapacity` instances (Auto Scaling's default pool size
 * is maximum − desired capacity). `local`: service time and slots from the policy's own estimates
 * (secondsPerMessage, messagesPerInstance), 2 s process start, no lag — `scaling:validate` replaces
 * them with what it measures.
 */
export function environmentPreset(mode: SimMode, policy: ScalingPolicy): SimEnvironment {
  switch (mode) {
    case 'alarms':
      return { ...AWS_ENVIRONMENT, metricLagPeriods: 1, warmPoolSize: 0 };
    case 'controller':
      return { ...AWS_ENVIRONMENT, metricLagPeriods: 0, warmPoolSize: 0 };
    case 'controller+warm':
    case 'as-deployed':
    case 'controller-dies':
      // The stack's default app tier has a warm pool (deploy/config.ts appTier.warmPool).
      return { ...AWS_ENVIRONMENT, metricLagPeriods: 0, warmPoolSize: policy.maxCapacity };
    case 'local':
      return {
        ...NO_EXTRAS,
        perImageSeconds: policy.backlog.secondsPerMessage,
        batchSize: 1,
        concurrency: policy.backlog.messagesPerInstance,
        bootSeconds: 2,
        warmStartSeconds: 0,
        warmPoolSize: 0,
        visibilityTimeoutSeconds: 30,
        minimumBilledSeconds: 0,
        drainOnScaleIn: false,
        metricLagPeriods: 0,
      };
  }
}

export interface PolicyOptions {
  /** Replaces every preset's maxCapacity (the product's bound is 20). */
  readonly maxCapacity?: number;
  /** The controller's period, seconds (controller modes only). */
  readonly controllerPeriodSeconds?: number;
  /** When the controller dies, seconds (`controller-dies` only, where it is required). */
  readonly controllerDiesAt?: number;
}

/**
 * The policy a mode runs with before any policy file: `DEFAULT_POLICY` (what scaling:setup
 * configures) for `alarms`, `CONTROLLER_POLICY` for the controller modes, `LOCAL_POLICY` locally.
 * In the AWS modes the backlog estimate follows the environment simulated — secondsPerMessage =
 * perImageSeconds, messagesPerInstance = concurrency (one instance clears concurrency /
 * perImageSeconds images a second, whatever the batch) — so each mode is tuned to the same service.
 */
export function policyPreset(
  mode: SimMode,
  env: Pick<SimEnvironment, 'perImageSeconds' | 'concurrency'>,
  options: PolicyOptions = {},
): ScalingPolicy {
  const max = options.maxCapacity === undefined ? {} : { maxCapacity: options.maxCapacity };
  if (mode === 'local') return validatePolicy({ ...LOCAL_POLICY, ...max });
  const controller = mode !== 'alarms';
  if (options.controllerPeriodSeconds !== undefined && !controller) {
    throw new ScalingError(
      'INVALID_SIMULATION',
      'The controller period applies to the controller modes only (alarms evaluate 60 s periods)',
      {
        field: 'periodSeconds',
        mode,
      },
    );
  }
  const base = controller ? CONTROLLER_POLICY : DEFAULT_POLICY;
  return validatePolicy({
    ...base,
    ...max,
    ...(options.controllerPeriodSeconds === undefined ? {} : { periodSeconds: options.controllerPeriodSeconds }),
    backlog: { ...base.backlog, secondsPerMessage: env.perImageSeconds, messagesPerInstance: env.concurrency },
  });
}

export function validateEnvironment(env: SimEnvironment): SimEnvironment {
  const rules: [NumericField, (v: number) => boolean, string][] = [
    ['bootSeconds', (v) => v >= 0, 'must be >= 0'],
    ['warmStartSeconds', (v) => v >= 0, 'must be >= 0'],
    ['warmPoolSize', (v) => Number.isInteger(v) && v >= 0, 'must be an integer >= 0'],
    ['minimumBilledSeconds', (v) => v >= 0, 'must be >= 0'],
    ['perImageSeconds', (v) => v > 0, 'must be > 0'],
    ['batchOverheadSeconds', (v) => v >= 0, 'must be >= 0'],
    ['batchSize', (v) => Number.isInteger(v) && v >= 1 && v <= 10, 'must be an integer 1-10'],
    ['concurrency', (v) => Number.isInteger(v) && v >= 1, 'must be an integer >= 1'],
    ['jitter', (v) => v >= 0 && v < 1, 'must be in [0, 1)'],
    ['visibilityTimeoutSeconds', (v) => v >= 0, 'must be >= 0'],
    ['metricLagPeriods', (v) => Number.isInteger(v) && v >= 0, 'must be an integer >= 0'],
    ['tickPhaseSeconds', (v) => v >= 0, 'must be >= 0 (and less than the period)'],
    ['seed', (v) => Number.isInteger(v), 'must be an integer'],
    ['horizonAfterLastArrivalSeconds', (v) => v > 0, 'must be > 0'],
    ['ingestSeconds', (v) => v >= 0, 'must be >= 0'],
    ['deliverSeconds', (v) => v >= 0, 'must be >= 0'],
    ['coldStartSeconds', (v) => v >= 0, 'must be >= 0'],
    ['coldStartFactor', (v) => v >= 1, 'must be >= 1'],
  ];
  const invalid = (field: string, reason: string, value: unknown): ScalingError =>
    new ScalingError(
      'INVALID_SIMULATION',
      `Invalid simulation environment: ${field} ${reason} (got ${String(value)})`,
      { field, value },
    );
  for (const [field, ok, reason] of rules) {
    const value = env[field];
    if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) throw invalid(field, reason, value);
  }
  if (typeof env.drainOnScaleIn !== 'boolean')
    throw invalid('drainOnScaleIn', 'must be true or false', env.drainOnScaleIn);
  if (env.observation !== 'period-max' && env.observation !== 'instant')
    throw invalid('observation', 'must be period-max or instant', env.observation);
  if (env.overheadSamples !== undefined) validateOverheadSamples(env.overheadSamples);
  return env;
}

function validateOverheadSamples(samples: readonly RequestOverhead[]): void {
  if (samples.length === 0) {
    throw new ScalingError(
      'INVALID_SIMULATION',
      'Invalid simulation environment: overheadSamples must not be empty (omit it for constants only)',
      {
        field: 'overheadSamples',
      },
    );
  }
  samples.forEach((sample, i) => {
    for (const part of ['ingestSeconds', 'deliverSeconds'] as const) {
      const value = sample[part];
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        const field = `overheadSamples[${i}].${part}`;
        throw new ScalingError(
          'INVALID_SIMULATION',
          `Invalid simulation environment: ${field} must be >= 0 (got ${String(value)})`,
          { field, value },
        );
      }
    }
  });
}

export interface ModeSetup {
  readonly mode: SimMode;
  readonly policy: ScalingPolicy;
  readonly env: SimEnvironment;
  /** The stack's CloudWatch policies beside the controller (`as-deployed`, `controller-dies`). */
  readonly authority?: AuthorityInput;
}

/** The stack's app-tier group and request queue, by their default names (deploy/config.ts). */
export function stackTarget(): SetupTarget {
  const { names } = resolveDeployConfig({ env: {} });
  return { asg: names.appTierGroup, queueName: names.requestQueue };
}

/**
 * What the stack deploys beside a controller with `controller` as its policy: `fallbackPolicy` (what
 * deploy/config.ts `stackPolicy` gives without a policy file) and the requests `deploy/stack.ts`
 * makes its resources of. CloudWatch sees each minute one minute late (SQS pushes once a minute).
 */
export function stackAuthority(
  controller: ScalingPolicy,
  options: Pick<PolicyOptions, 'controllerDiesAt'> = {},
): AuthorityInput {
  const fallback = fallbackPolicy(controller);
  return {
    fallback: { policy: fallback, requests: scalingRequests(stackTarget(), fallback) },
    lagPeriods: 1,
    controller: true,
    ...(options.controllerDiesAt === undefined ? {} : { controllerDiesAt: options.controllerDiesAt }),
  };
}

/**
 * A mode's policy and environment: `policy` (default: the mode's `policyPreset` for the environment
 * after `overrides`; a policy file is loaded over that preset), and the mode's environment with
 * `overrides` over it — the warm pool follows the policy's maxCapacity unless
 * `overrides.warmPoolSize` says otherwise.
 */
export function modeSetup(
  mode: SimMode,
  overrides: Partial<SimEnvironment> = {},
  options: PolicyOptions = {},
  policy: ScalingPolicy = policyPreset(mode, { ...presetService(mode), ...overrides }, options),
): ModeSetup {
  const env = validateEnvironment({ ...environmentPreset(mode, policy), ...overrides });
  if (options.controllerDiesAt !== undefined && mode !== 'controller-dies')
    throw new ScalingError('INVALID_SIMULATION', 'A controller dies in the controller-dies mode only', {
      field: 'controllerDiesAt',
      mode,
    });
  if (mode === 'controller-dies' && options.controllerDiesAt === undefined)
    throw new ScalingError('INVALID_SIMULATION', 'The controller-dies mode needs the time the controller dies', {
      field: 'controllerDiesAt',
      mode,
    });
  if (mode !== 'as-deployed' && mode !== 'controller-dies') return { mode, policy, env };
  return { mode, policy, env, authority: stackAuthority(policy, options) };
}

/** The service numbers of a mode's environment before any policy (policyPreset ignores them locally). */
function presetService(mode: SimMode): Pick<SimEnvironment, 'perImageSeconds' | 'concurrency'> {
  const { perImageSeconds, concurrency } = environmentPreset(mode, mode === 'local' ? LOCAL_POLICY : CONTROLLER_POLICY);
  return { perImageSeconds, concurrency };
}
