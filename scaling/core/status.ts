/**
 * The status document: what the scaling controller reports (`ScalingController.status()`) and what
 * `GET /api/v1/status` answers (`ServiceStatus`: the same, plus the runtime). One set of types for
 * the producer (`service/service.ts`) and its readers (the calibration, `sim/calibrate/status.ts`).
 * Times are epoch seconds (`t`) or ISO strings (`at`, `sampledAt`).
 */
import type { DecisionRule, Observation } from './decide.js';
import type { QueueDepth } from './queue-depth.js';

/**
 * Everything `decide` saw, except the time (see `DecisionRecord.t`). `visible` and `inFlight` are
 * the maxima of the period's samples. Times are epoch seconds.
 */
export type DecisionInputs = Omit<Observation, 'now'>;

/**
 * What became of the `pool.resize` a decision issued: `ms` = decision → resize settled (for a
 * scale-out, the new workers are ready), `attempts` counts the retries at later ticks too.
 */
export type ResizeOutcome =
  | { readonly state: 'pending'; readonly attempts: number }
  | { readonly state: 'done'; readonly attempts: number; readonly ms: number }
  /** Failed; issued again at the next tick unless another decision comes first. */
  | {
      readonly state: 'failed';
      readonly attempts: number;
      readonly ms: number;
      readonly error: Record<string, unknown>;
    }
  /** It failed after a later decision had already changed the count again (e.g. a booting worker retired). */
  | {
      readonly state: 'superseded';
      readonly attempts: number;
      readonly ms: number;
      readonly error: Record<string, unknown>;
    };

export interface DecisionRecord {
  /** ISO time of the decision. */
  readonly at: string;
  /** The decision clock: epoch seconds. */
  readonly t: number;
  readonly inputs: DecisionInputs;
  readonly from: number;
  readonly to: number;
  readonly action: 'scale-out' | 'scale-in';
  readonly rule: DecisionRule;
  readonly reason: string;
  readonly resize: ResizeOutcome;
}

/** The policy figures the status shows. */
export interface PolicySummary {
  readonly minCapacity: number;
  readonly maxCapacity: number;
  readonly periodSeconds: number;
  readonly targetBacklogPerInstance: number;
}

/** A queue depth reading and when it was taken (`null` before the first). */
export interface QueueSample extends QueueDepth {
  readonly sampledAt: string | null;
}

/** Pool counts: workers wanted, and workers up and receiving. */
export interface WorkerCounts {
  readonly desired: number;
  readonly running: number;
}

/** What a controller copy did at its last tick. */
export const CONTROLLER_ROLES = ['leader', 'standby', 'handover'] as const;

/**
 * Which controller this is: what it moves, and whether it acts (`standby`: another copy leads;
 * `handover`: this copy leads but holds while the CloudWatch policies may still act —
 * `scaling/core/handover.ts`).
 */
export interface ControllerInfo {
  readonly actuator: string;
  readonly role: (typeof CONTROLLER_ROLES)[number];
}

export interface AutoscalerStatus {
  /** The last depth sample (zeros and `sampledAt: null` before the first). */
  readonly queue: QueueSample;
  /** Live pool counts. */
  readonly workers: WorkerCounts;
  readonly policy: PolicySummary;
  /** Decisions that changed the desired count, oldest first (the last `historySize`). */
  readonly decisions: readonly DecisionRecord[];
  readonly controller: ControllerInfo;
}

/** The process that answers, and the Node.js versions its worker processes run. */
export interface RuntimeInfo {
  /** `process.version` of the web tier's process. */
  readonly node: string;
  /** One entry per worker process. */
  readonly workers: readonly string[];
}

/**
 * `GET /api/v1/status`. With the local autoscaler on, its `status()` plus `runtime`. With a fixed
 * pool (`WORKERS` set) there is no policy and no decision: `policy` is absent, `decisions` empty,
 * and `queue` is a depth read for the answer (`sampledAt` absent).
 */
export interface ServiceStatus {
  readonly queue: QueueDepth & { readonly sampledAt?: string | null };
  readonly workers: WorkerCounts;
  readonly policy?: PolicySummary;
  readonly decisions: readonly DecisionRecord[];
  /** Absent when no controller runs here (a fixed pool, SCALER=off). */
  readonly controller?: ControllerInfo;
  readonly runtime: RuntimeInfo;
}
