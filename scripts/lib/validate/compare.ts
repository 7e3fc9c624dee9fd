/** Measured vs simulated: the same arrivals, the same policy, the environment measured in the run. */
import type { ScalingPolicy } from '../../../scaling/policy.js';
import { environmentPreset, percentile, simulate, type SimEnvironment, type SimResult } from '../../../scaling/simulator.js';
import { calibrate, environmentFrom, type Calibration } from './calibrate.js';
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
}

/** (predicted − measured) / measured, in percent. */
export const errorPercent = (predicted: number, measured: number): number => ((predicted - measured) / measured) * 100;

function measuredOutcome(m: Measurement): Outcome {
  const answered = m.requests.filter((r) => r.done !== undefined);
  if (answered.length === 0) throw new ValidateError('CALIBRATION', `trace ${m.name}: no request was answered`, { trace: m.name });
  const start = Math.min(...m.requests.map((r) => r.sent));
  const end = Math.max(...answered.map((r) => r.done ?? 0));
  const latencies = answered.map((r) => (r.done ?? 0) - r.sent).sort((a, b) => a - b);
  const inRun = m.decisions.filter((d) => d.t - m.originEpoch <= end);
  const firstRunning = m.timeline.find((s) => s.running > 0);
  return {
    makespanSeconds: end - start,
    p95Seconds: percentile(latencies, 95),
    p50Seconds: percentile(latencies, 50),
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

/** Checks that the service ran the policy that is simulated (bounds, period, target). */
function checkSamePolicy(m: Measurement, policy: ScalingPolicy, target: number): void {
  const p = m.policy;
  const same =
    p.minCapacity === policy.minCapacity &&
    p.maxCapacity === policy.maxCapacity &&
    p.periodSeconds === policy.periodSeconds &&
    Math.abs(p.targetBacklogPerInstance - target) < 1e-9;
  if (!same) {
    throw new ValidateError('CALIBRATION', `trace ${m.name}: the service reports another policy than the one simulated`, {
      service: p,
      simulated: { minCapacity: policy.minCapacity, maxCapacity: policy.maxCapacity, periodSeconds: policy.periodSeconds, targetBacklogPerInstance: target },
    });
  }
}

export function compare(m: Measurement, scale: number, policy: ScalingPolicy, target: number): Comparison {
  checkSamePolicy(m, policy, target);
  const calibration = calibrate(m);
  const env = environmentFrom(environmentPreset('local', policy), calibration, m.config.worker.visibilityTimeoutSeconds);
  const simulation = simulate({ arrivals: m.arrivals, policy, env });
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
  };
}
