/** Measured vs simulated: the same arrivals, the same policy, the environment measured in the run. */

import { percentiles } from '../../../lib/stats.js';
import type { ScalingPolicy } from '../../../scaling/core/policy.js';
import { environmentPreset, type SimEnvironment, type SimResult, simulate } from '../simulator.js';
import { type Calibration, calibrate, environmentFrom } from './calibrate.js';
import { ValidateError } from './errors.js';
import type { Measurement } from './measure.js';

export interface Outcome {
  readonly makespanSeconds: number;
  readonly p95Seconds: number;
  readonly p50Seconds: number;
  readonly peakWorkers: number;
  /** First time a worker was in service, seconds after the first arrival (undefined: never). */
  readonly firstInServiceSeconds: number | undefined;
  readonly scaleOuts: number;
  readonly scaleIns: number;
}

/** The k-th slowest latency, measured and predicted, seconds. */
export interface TailPoint {
  readonly rank: number;
  /** This rank is the p95's. */
  readonly p95: boolean;
  readonly measured: number;
  readonly predicted: number;
}

export interface Comparison {
  readonly trace: string;
  readonly scale: number;
  readonly requests: number;
  readonly answered: number;
  readonly predicted: Outcome;
  readonly measured: Outcome;
  readonly calibration: Calibration;
  readonly env: SimEnvironment;
  readonly simulation: SimResult;
  /** Where the slowest requests part: the cold start's backlog first, then the steady state's spread. */
  readonly tail: readonly TailPoint[];
}

/** (predicted − measured) / measured, in percent. */
export const errorPercent = (predicted: number, measured: number): number => ((predicted - measured) / measured) * 100;

function measuredOutcome(m: Measurement): Outcome {
  const answered = m.requests.filter((r) => r.done !== undefined);
  if (answered.length === 0)
    throw new ValidateError('CALIBRATION', `trace ${m.name}: no request was answered`, { trace: m.name });
  const start = Math.min(...m.requests.map((r) => r.sent));
  const end = Math.max(...answered.map((r) => r.done ?? 0));
  const [p50Seconds, p95Seconds] = percentiles(
    answered.map((r) => (r.done ?? 0) - r.sent),
    [50, 95],
  ) as [number, number];
  const inRun = m.decisions.filter((d) => d.t - m.originEpoch <= end);
  const firstRunning = m.timeline.find((s) => s.running > 0);
  return {
    makespanSeconds: end - start,
    p95Seconds,
    p50Seconds,
    peakWorkers: Math.max(0, ...m.timeline.filter((s) => s.t <= end).map((s) => s.desired)),
    firstInServiceSeconds: firstRunning === undefined ? undefined : firstRunning.t - start,
    scaleOuts: inRun.filter((d) => d.to > d.from).length,
    scaleIns: inRun.filter((d) => d.to < d.from).length,
  };
}

function predictedOutcome(sim: SimResult, firstArrival: number): Outcome {
  const s = sim.summary;
  const end = firstArrival + s.makespanSeconds;
  const inRun = sim.actions.filter((a) => a.t <= end);
  const firstInService = sim.timeline.find((p) => p.inService > 0);
  return {
    makespanSeconds: s.makespanSeconds,
    p95Seconds: s.latency.p95,
    p50Seconds: s.latency.p50,
    peakWorkers: Math.max(0, ...sim.timeline.filter((p) => p.t <= end).map((p) => p.capacity)),
    firstInServiceSeconds: firstInService === undefined ? undefined : firstInService.t - firstArrival,
    scaleOuts: inRun.filter((a) => a.to > a.from).length,
    scaleIns: inRun.filter((a) => a.to < a.from).length,
  };
}

const TAIL_RANKS = [1, 10, 20, 30, 40];

/** k-th slowest at a few ranks and at the p95's own rank (nearest rank, as `percentile`). */
export function latencyTail(measured: readonly number[], predicted: readonly number[]): TailPoint[] {
  const slowestFirst = (xs: readonly number[]) => [...xs].sort((a, b) => b - a);
  const m = slowestFirst(measured);
  const p = slowestFirst(predicted);
  const count = Math.min(m.length, p.length);
  // percentile(sorted, 95) takes ascending rank ceil(0.95 n): the (n − that + 1)-th slowest.
  const p95Rank = count - Math.max(1, Math.ceil(0.95 * count)) + 1;
  const ranks = [...new Set([...TAIL_RANKS, p95Rank])].filter((k) => k <= count).sort((a, b) => a - b);
  return ranks.map((rank) => ({ rank, p95: rank === p95Rank, measured: m[rank - 1]!, predicted: p[rank - 1]! }));
}

/** Checks that the service ran the policy that is simulated (bounds, period, target). */
function checkSamePolicy(m: Measurement, policy: ScalingPolicy, target: number): void {
  const p = m.policy;
  const same =
    p.minCapacity === policy.minCapacity &&
    p.maxCapacity === policy.maxCapacity &&
    p.periodSeconds === policy.periodSeconds &&
    Math.abs(p.targetBacklogPerInstance - target) < 1e-9;
  if (!same) {
    throw new ValidateError(
      'CALIBRATION',
      `trace ${m.name}: the service reports another policy than the one simulated`,
      {
        service: p,
        simulated: {
          minCapacity: policy.minCapacity,
          maxCapacity: policy.maxCapacity,
          periodSeconds: policy.periodSeconds,
          targetBacklogPerInstance: target,
        },
      },
    );
  }
}

export function compare(m: Measurement, scale: number, policy: ScalingPolicy, target: number): Comparison {
  checkSamePolicy(m, policy, target);
  const calibration = calibrate(m);
  const env = environmentFrom(
    environmentPreset('local', policy),
    calibration,
    m.config.worker.visibilityTimeoutSeconds,
  );
  const simulation = simulate({ arrivals: m.arrivals, policy, env });
  const measuredLatencies = m.requests.flatMap((r) => (r.done === undefined ? [] : [r.done - r.sent]));
  return {
    trace: m.name,
    scale,
    requests: m.requests.length,
    answered: m.requests.filter((r) => r.done !== undefined).length,
    predicted: predictedOutcome(simulation, Math.min(...m.arrivals)),
    measured: measuredOutcome(m),
    calibration,
    env,
    simulation,
    tail: latencyTail(
      measuredLatencies,
      simulation.latencies.filter((l) => !Number.isNaN(l)),
    ),
  };
}
