/**
 * Discrete-event simulation of the elastic app tier: a queue, instances that boot and process
 * batches, and a CloudWatch-like metric pipeline feeding the same pure `decide` the local
 * autoscaler uses.
 *
 * Model
 *  - Requests arrive at the trace's times and reach the queue (visible) `ingestSeconds` later: the
 *    web tier's handling before the message is enqueued (upload, storing, enqueuing). Their answer
 *    reaches the client `deliverSeconds` after their batch is processed (fetch/decode/persist around
 *    the slot, the answer's way back). Both are constants, 0 in the presets.
 *  - Measured overhead (optional `overheadSamples`): each request also draws one (ingest, deliver)
 *    pair, uniformly from the sample, added to the constants. The pair is drawn whole because one
 *    request's two parts are not independent (they share the machine's load of that moment), and
 *    the draws come from their own seeded stream, so a sample never changes the service times.
 *  - An instance is in service `bootSeconds` after launch. It has `concurrency` worker slots; an idle
 *    slot receives up to `batchSize` messages (they become in flight) and finishes them together after
 *    work = (batchOverheadSeconds + perImageSeconds × n) × U(1 − jitter, 1 + jitter) seconds.
 *  - Cold start: during its first `coldStartSeconds` in service a launched instance works at
 *    1 / `coldStartFactor` of its speed (a fresh process: cold code paths, first model runs, and the CPU
 *    it shares with instances booting beside it), so a batch started at age a takes
 *    `coldServiceSeconds(work, a, env)`: slow until the window ends, full speed after. An instance
 *    loses at most coldStartSeconds × (1 − 1 / coldStartFactor) of work, however its batches fall.
 *    The minCapacity instances in service at t = 0 are warm. Presets: 0 s and factor 1 (none).
 *  - Metrics: one datapoint per period [t − P, t) with the *maximum* visible and in-flight counts and
 *    the instances in service at its end. The scaler sees it `metricLagPeriods` periods later
 *    (CloudWatch delivery and alarm-evaluation delay; 0 for the local autoscaler).
 *  - At every period boundary the scaler folds the visible datapoint into its signals and calls
 *    `decide`. Capacity changes apply at once: launches start booting; scale-in removes booting
 *    instances first, then idle ones, then busy ones (newest first). Messages of a terminated busy
 *    instance become visible again after `visibilityTimeoutSeconds`, like SQS.
 *  - The run ends when every request is served and capacity has settled at its floor (minCapacity,
 *    or max(1, minCapacity) without scale-to-zero), or at the horizon.
 * Deterministic: all randomness comes from a seeded PRNG.
 */

import { percentiles } from '../../pipeline/stats.js';
import { decide, NO_SIGNALS, trackSignals, type Datapoint, type DecisionRule, type Signals } from '../core/decide.js';
import { ScalingError } from '../core/errors.js';
import type { ScalingPolicy } from '../core/policy.js';
import { MinHeap } from './heap.js';
import { mulberry32 } from './rng.js';

export type SimMode = 'aws' | 'local';

export interface SimEnvironment {
  /** Launch → in service, seconds. */
  readonly bootSeconds: number;
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
  /** Periods between the end of a datapoint's period and the scaler seeing it. */
  readonly metricLagPeriods: number;
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

type NumericField = { [K in keyof SimEnvironment]-?: SimEnvironment[K] extends number ? K : never }[keyof SimEnvironment];

/**
 * Environment presets. Service time and concurrency come from the policy's own estimates
 * (secondsPerMessage, messagesPerInstance), so the policy is simulated against what it assumes.
 */
export function environmentPreset(mode: SimMode, policy: ScalingPolicy): SimEnvironment {
  const common = {
    perImageSeconds: policy.backlog.secondsPerMessage,
    batchOverheadSeconds: 0,
    batchSize: 1,
    concurrency: policy.backlog.messagesPerInstance,
    jitter: 0.1,
    seed: 1,
    horizonAfterLastArrivalSeconds: 86_400,
    ingestSeconds: 0,
    deliverSeconds: 0,
    // Measured per run by scaling:validate for local workers; not measured on AWS yet.
    coldStartSeconds: 0,
    coldStartFactor: 1,
  };
  return mode === 'aws'
    ? { ...common, bootSeconds: 90, visibilityTimeoutSeconds: 60, metricLagPeriods: 1 }
    : { ...common, bootSeconds: 2, visibilityTimeoutSeconds: 30, metricLagPeriods: 0 };
}

export function validateEnvironment(env: SimEnvironment): SimEnvironment {
  const rules: [NumericField, (v: number) => boolean, string][] = [
    ['bootSeconds', (v) => v >= 0, 'must be >= 0'],
    ['perImageSeconds', (v) => v > 0, 'must be > 0'],
    ['batchOverheadSeconds', (v) => v >= 0, 'must be >= 0'],
    ['batchSize', (v) => Number.isInteger(v) && v >= 1 && v <= 10, 'must be an integer 1-10'],
    ['concurrency', (v) => Number.isInteger(v) && v >= 1, 'must be an integer >= 1'],
    ['jitter', (v) => v >= 0 && v < 1, 'must be in [0, 1)'],
    ['visibilityTimeoutSeconds', (v) => v >= 0, 'must be >= 0'],
    ['metricLagPeriods', (v) => Number.isInteger(v) && v >= 0, 'must be an integer >= 0'],
    ['seed', (v) => Number.isInteger(v), 'must be an integer'],
    ['horizonAfterLastArrivalSeconds', (v) => v > 0, 'must be > 0'],
    ['ingestSeconds', (v) => v >= 0, 'must be >= 0'],
    ['deliverSeconds', (v) => v >= 0, 'must be >= 0'],
    ['coldStartSeconds', (v) => v >= 0, 'must be >= 0'],
    ['coldStartFactor', (v) => v >= 1, 'must be >= 1'],
  ];
  for (const [field, ok, reason] of rules) {
    const value = env[field];
    if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
      throw new ScalingError('INVALID_SIMULATION', `Invalid simulation environment: ${field} ${reason} (got ${String(value)})`, { field, value });
    }
  }
  if (env.overheadSamples !== undefined) validateOverheadSamples(env.overheadSamples);
  return env;
}

function validateOverheadSamples(samples: readonly RequestOverhead[]): void {
  if (samples.length === 0) {
    throw new ScalingError('INVALID_SIMULATION', 'Invalid simulation environment: overheadSamples must not be empty (omit it for constants only)', {
      field: 'overheadSamples',
    });
  }
  samples.forEach((sample, i) => {
    for (const part of ['ingestSeconds', 'deliverSeconds'] as const) {
      const value = sample[part];
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        const field = `overheadSamples[${i}].${part}`;
        throw new ScalingError('INVALID_SIMULATION', `Invalid simulation environment: ${field} must be >= 0 (got ${String(value)})`, { field, value });
      }
    }
  });
}

/** Keeps the overhead draws apart from the service-time jitter's stream of the same seed. */
const OVERHEAD_STREAM = 0x9e3779b9;

/**
 * Each request's overhead, in the order of `count` sorted arrivals: the constants plus, with a
 * sample, one pair drawn uniformly with replacement (a pair, not two independent draws).
 */
export function requestOverheads(count: number, env: SimEnvironment): RequestOverhead[] {
  const constant = { ingestSeconds: env.ingestSeconds, deliverSeconds: env.deliverSeconds };
  const samples = env.overheadSamples;
  if (samples === undefined) return Array.from({ length: count }, () => constant);
  const rand = mulberry32((env.seed ^ OVERHEAD_STREAM) >>> 0);
  return Array.from({ length: count }, () => {
    const drawn = samples[Math.floor(rand() * samples.length)]!;
    return { ingestSeconds: constant.ingestSeconds + drawn.ingestSeconds, deliverSeconds: constant.deliverSeconds + drawn.deliverSeconds };
  });
}

export interface TimelinePoint {
  readonly t: number;
  readonly visible: number;
  readonly inFlight: number;
  readonly inService: number;
  /** Desired capacity = launched and not terminated. */
  readonly capacity: number;
}

export interface ScalingAction {
  readonly t: number;
  readonly from: number;
  readonly to: number;
  readonly rule: DecisionRule;
  readonly reason: string;
}

export interface LatencyStats {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly mean: number;
  readonly max: number;
}

export interface SimSummary {
  readonly requests: number;
  readonly served: number;
  /** Arrival → answered (ingest + queue wait + processing + deliver), seconds. */
  readonly latency: LatencyStats;
  /** First arrival → last answer (the latest of every request's completion + its deliver time), seconds. */
  readonly makespanSeconds: number;
  /** Σ over instances of (termination or end − launch), in minutes; booting time included. */
  readonly instanceMinutes: number;
  /** Maximum visible messages. */
  readonly peakQueueDepth: number;
  readonly peakCapacity: number;
  readonly scaleOuts: number;
  readonly scaleIns: number;
  readonly finalCapacity: number;
  /** Simulated time when the run stopped. */
  readonly endSeconds: number;
  /** True when every request was served and capacity settled before the horizon. */
  readonly drained: boolean;
}

export interface SimResult {
  readonly summary: SimSummary;
  readonly timeline: TimelinePoint[];
  readonly actions: ScalingAction[];
  readonly datapoints: Datapoint[];
  /** Per request latency, in arrival order. */
  readonly latencies: number[];
}

export interface SimInput {
  readonly arrivals: readonly number[];
  readonly policy: ScalingPolicy;
  readonly env: SimEnvironment;
}

// ---------------------------------------------------------------------------------------------

interface Message {
  readonly id: number;
  readonly arrival: number;
}

interface Slot {
  batch: Message[];
  token: number;
}

interface Instance {
  readonly id: number;
  readonly launchAt: number;
  readonly readyAt: number;
  /** Its cold start counts from here; −∞ for the instances already warm at t = 0. */
  readonly coldFrom: number;
  ready: boolean;
  terminatedAt: number | null;
  readonly slots: Slot[];
}

type SimEvent =
  | { kind: 'tick'; time: number; seq: number }
  | { kind: 'arrival'; time: number; seq: number; message: Message }
  | { kind: 'reappear'; time: number; seq: number; messages: Message[] }
  | { kind: 'done'; time: number; seq: number; instance: Instance; slot: Slot; token: number }
  | { kind: 'ready'; time: number; seq: number; instance: Instance };

/** Order of events at the same instant: close the period first, then the rest. */
const PRIORITY: Readonly<Record<SimEvent['kind'], number>> = { tick: 0, arrival: 1, reappear: 2, done: 3, ready: 4 };

function before(a: SimEvent, b: SimEvent): boolean {
  if (a.time !== b.time) return a.time < b.time;
  if (PRIORITY[a.kind] !== PRIORITY[b.kind]) return PRIORITY[a.kind] < PRIORITY[b.kind];
  return a.seq < b.seq;
}

/**
 * Wall time of `work` seconds of warm service started `ageSeconds` after the instance came into
 * service: at 1 / coldStartFactor speed until coldStartSeconds, at full speed after.
 */
export function coldServiceSeconds(work: number, ageSeconds: number, env: Pick<SimEnvironment, 'coldStartSeconds' | 'coldStartFactor'>): number {
  const slowWall = Math.max(0, env.coldStartSeconds - ageSeconds);
  if (work * env.coldStartFactor <= slowWall) return work * env.coldStartFactor;
  return slowWall + (work - slowWall / env.coldStartFactor);
}

export function simulate(input: SimInput): SimResult {
  const { policy } = input;
  const env = validateEnvironment(input.env);
  const arrivals = [...input.arrivals].sort((a, b) => a - b);
  if (arrivals.length === 0) throw new ScalingError('INVALID_SIMULATION', 'The trace has no arrivals', { field: 'arrivals' });
  const P = policy.periodSeconds;
  const rand = mulberry32(env.seed);
  const lastArrival = arrivals[arrivals.length - 1] ?? 0;
  const horizon = lastArrival + env.horizonAfterLastArrivalSeconds;
  const settled = policy.scaleToZero.enabled ? policy.minCapacity : Math.max(1, policy.minCapacity);

  const events = new MinHeap<SimEvent>(before);
  let seq = 0;
  const schedule = (e: DistributiveOmit<SimEvent, 'seq'>): void => events.push({ ...e, seq: seq++ } as SimEvent);

  // State
  const queue: Message[] = [];
  let inFlight = 0;
  const instances: Instance[] = [];
  let nextInstanceId = 0;
  let served = 0;
  let lastAnswer = 0;
  const overheads = requestOverheads(arrivals.length, env);
  const latencies: number[] = new Array<number>(arrivals.length).fill(Number.NaN);

  const active = (): Instance[] => instances.filter((i) => i.terminatedAt === null);
  const inService = (): number => instances.reduce((n, i) => n + (i.terminatedAt === null && i.ready ? 1 : 0), 0);

  const launch = (now: number, bootSeconds: number, warm: boolean): void => {
    const inst: Instance = {
      id: nextInstanceId++,
      launchAt: now,
      readyAt: now + bootSeconds,
      coldFrom: warm ? Number.NEGATIVE_INFINITY : now + bootSeconds,
      ready: bootSeconds === 0,
      terminatedAt: null,
      slots: Array.from({ length: env.concurrency }, () => ({ batch: [], token: 0 })),
    };
    instances.push(inst);
    if (!inst.ready) schedule({ kind: 'ready', time: inst.readyAt, instance: inst });
  };

  const terminate = (now: number, count: number): void => {
    const candidates = active();
    const busy = (i: Instance): boolean => i.slots.some((s) => s.batch.length > 0);
    const newestFirst = (list: Instance[]): Instance[] => list.sort((a, b) => b.id - a.id);
    const victims = [
      ...newestFirst(candidates.filter((i) => !i.ready)),
      ...newestFirst(candidates.filter((i) => i.ready && !busy(i))),
      ...newestFirst(candidates.filter((i) => i.ready && busy(i))),
    ].slice(0, count);
    for (const inst of victims) {
      inst.terminatedAt = now;
      for (const slot of inst.slots) {
        if (slot.batch.length > 0) {
          // Still in flight until the visibility timeout, then visible again.
          schedule({ kind: 'reappear', time: now + env.visibilityTimeoutSeconds, messages: slot.batch });
          slot.batch = [];
          slot.token++;
        }
      }
    }
  };

  const dispatch = (now: number): void => {
    for (const inst of instances) {
      if (inst.terminatedAt !== null || !inst.ready) continue;
      for (const slot of inst.slots) {
        if (slot.batch.length > 0 || queue.length === 0) continue;
        const batch = queue.splice(0, env.batchSize);
        slot.batch = batch;
        slot.token++;
        inFlight += batch.length;
        const noise = 1 + env.jitter * (2 * rand() - 1);
        const work = (env.batchOverheadSeconds + env.perImageSeconds * batch.length) * noise;
        const duration = coldServiceSeconds(work, now - inst.coldFrom, env);
        schedule({ kind: 'done', time: now + duration, instance: inst, slot, token: slot.token });
      }
    }
  };

  // Timeline and period maxima
  const timeline: TimelinePoint[] = [];
  const record = (t: number): void => {
    const point: TimelinePoint = { t, visible: queue.length, inFlight, inService: inService(), capacity: active().length };
    const last = timeline[timeline.length - 1];
    if (last && last.t === t) timeline[timeline.length - 1] = point;
    else if (
      !last ||
      last.visible !== point.visible ||
      last.inFlight !== point.inFlight ||
      last.inService !== point.inService ||
      last.capacity !== point.capacity
    ) {
      timeline.push(point);
    }
  };
  let periodMaxVisible = 0;
  let periodMaxInFlight = 0;
  const observe = (): void => {
    periodMaxVisible = Math.max(periodMaxVisible, queue.length);
    periodMaxInFlight = Math.max(periodMaxInFlight, inFlight);
  };

  // Scaler state
  const datapoints: Datapoint[] = [];
  let signals: Signals = NO_SIGNALS;
  let folded = 0;
  let lastScaleOut: number | null = null;
  let lastScaleIn: number | null = null;
  const actions: ScalingAction[] = [];
  let peakQueue = 0;
  let peakCapacity = 0;

  // Initial capacity: minCapacity instances already in service, past their cold start.
  for (let i = 0; i < policy.minCapacity; i++) launch(0, 0, true);
  // A request reaches the queue its ingest time after it arrives; its latency counts from arrival.
  arrivals.forEach((time, id) => schedule({ kind: 'arrival', time: time + overheads[id]!.ingestSeconds, message: { id, arrival: time } }));
  let tickIndex = 1;
  schedule({ kind: 'tick', time: P });
  record(0);

  let now = 0;
  let drained = false;
  for (;;) {
    const event = events.pop();
    if (!event) break;
    now = event.time;

    if (event.kind === 'tick') {
      // Close the period [now − P, now).
      datapoints.push({ start: now - P, end: now, visible: periodMaxVisible, inFlight: periodMaxInFlight, running: inService() });
      // The state at `now` belongs to the new period; it is observed once every event at `now` is done.
      periodMaxVisible = 0;
      periodMaxInFlight = 0;
      // Fold the datapoints the scaler can see by now.
      while (folded < datapoints.length - env.metricLagPeriods) {
        const dp = datapoints[folded++];
        if (dp) signals = trackSignals(signals, dp, policy);
      }
      const seen = datapoints[folded - 1];
      const capacity = active().length;
      if (seen && folded === datapoints.length - env.metricLagPeriods) {
        const d = decide(policy, {
          now,
          visible: seen.visible,
          inFlight: seen.inFlight,
          running: seen.running,
          desired: capacity,
          lastScaleOut,
          lastScaleIn,
          idleSince: signals.idleSince,
          backlogSince: signals.backlogSince,
        });
        if (d.desired > capacity) {
          for (let i = capacity; i < d.desired; i++) launch(now, env.bootSeconds, false);
          lastScaleOut = now;
          actions.push({ t: now, from: capacity, to: d.desired, rule: d.rule, reason: d.reason });
        } else if (d.desired < capacity) {
          terminate(now, capacity - d.desired);
          lastScaleIn = now;
          actions.push({ t: now, from: capacity, to: d.desired, rule: d.rule, reason: d.reason });
        }
      }
      const allServed = served === arrivals.length;
      const finalCapacity = active().length;
      if (allServed && finalCapacity === settled && active().every((i) => i.ready)) {
        drained = true;
        record(now);
        break;
      }
      if (now >= horizon) {
        record(now);
        break;
      }
      tickIndex++;
      schedule({ kind: 'tick', time: tickIndex * P });
    } else if (event.kind === 'arrival') {
      queue.push(event.message);
    } else if (event.kind === 'reappear') {
      inFlight -= event.messages.length;
      queue.unshift(...event.messages);
    } else if (event.kind === 'ready') {
      if (event.instance.terminatedAt === null) event.instance.ready = true;
    } else {
      // done
      if (event.instance.terminatedAt === null && event.slot.token === event.token) {
        for (const m of event.slot.batch) {
          const answeredAt = now + overheads[m.id]!.deliverSeconds;
          latencies[m.id] = answeredAt - m.arrival;
          // With drawn deliver times the last completion need not be the last answer.
          lastAnswer = Math.max(lastAnswer, answeredAt);
          served++;
        }
        inFlight -= event.slot.batch.length;
        event.slot.batch = [];
      }
    }

    dispatch(now);
    // Observe the state once all events of this instant are processed.
    const next = events.peek();
    if (!next || next.time > now) {
      observe();
      peakQueue = Math.max(peakQueue, queue.length);
      peakCapacity = Math.max(peakCapacity, active().length);
      record(now);
    }
  }

  const end = now;
  const instanceSeconds = instances.reduce((sum, i) => sum + ((i.terminatedAt ?? end) - i.launchAt), 0);
  const done = latencies.filter((l) => !Number.isNaN(l));
  const sorted = [...done].sort((a, b) => a - b);
  // Nearest rank; 0 when nothing was served.
  const [p50, p95, p99] = sorted.length > 0 ? (percentiles(sorted, [50, 95, 99], { sorted: true }) as [number, number, number]) : [0, 0, 0];
  const firstArrival = arrivals[0] ?? 0;
  return {
    summary: {
      requests: arrivals.length,
      served,
      latency: {
        p50,
        p95,
        p99,
        mean: sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : 0,
        max: sorted[sorted.length - 1] ?? 0,
      },
      makespanSeconds: served > 0 ? lastAnswer - firstArrival : 0,
      instanceMinutes: instanceSeconds / 60,
      peakQueueDepth: peakQueue,
      peakCapacity,
      scaleOuts: actions.filter((a) => a.to > a.from).length,
      scaleIns: actions.filter((a) => a.to < a.from).length,
      finalCapacity: active().length,
      endSeconds: end,
      drained,
    },
    timeline,
    actions,
    datapoints,
    latencies,
  };
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
