/**
 * Discrete-event simulation of the elastic app tier: a queue, instances that boot and process
 * batches, and a metric pipeline feeding the same pure `decide` the local autoscaler uses — late
 * CloudWatch datapoints (the `alarms` mode) or the queue read directly (the controller modes).
 *
 * Model
 *  - Requests arrive at the trace's times, or, for closed-loop clients, each client's next request
 *    `thinkSeconds` after its previous answer (see `ClosedLoop`). They reach the queue (visible)
 *    `ingestSeconds` later: the web tier's handling before the message is enqueued (upload, storing,
 *    enqueuing). Their answer reaches the client `deliverSeconds` after their batch is processed
 *    (fetch/decode/persist around the slot, the answer's way back). Both are constants, 0 in the
 *    presets.
 *  - Measured overhead (optional `overheadSamples`): each request also draws one (ingest, deliver)
 *    pair, uniformly from the sample, added to the constants. The pair is drawn whole because one
 *    request's two parts are not independent (they share the machine's load of that moment), and
 *    the draws come from their own seeded stream, so a sample never changes the service times.
 *  - An instance is in service `bootSeconds` after launch, or `warmStartSeconds` after it is started
 *    from the warm pool (`warmPoolSize` stopped instances at t = 0; a scale-out takes from the pool
 *    while it has any, a scale-in puts instances back up to its size). It has `concurrency` worker
 *    slots; an idle slot receives up to `batchSize` messages (they become in flight) and finishes
 *    them together after work = (batchOverheadSeconds + perImageSeconds × n) × U(1 − jitter,
 *    1 + jitter) seconds.
 *  - Cold start: during its first `coldStartSeconds` in service a launched instance works at
 *    1 / `coldStartFactor` of its speed (a fresh process: cold code paths, first model runs, and the CPU
 *    it shares with instances booting beside it), so a batch started at age a takes
 *    `coldServiceSeconds(work, a, env)`: slow until the window ends, full speed after. An instance
 *    loses at most coldStartSeconds × (1 − 1 / coldStartFactor) of work, however its batches fall.
 *    The minCapacity instances in service at t = 0 are warm. Presets: 0 s and factor 1 (none).
 *  - Metrics: one datapoint per period [t − P, t) with the *maximum* visible and in-flight counts
 *    (`observation: 'instant'`: the counts at t) and the instances in service at its end. The scaler
 *    sees it `metricLagPeriods` periods later (CloudWatch delivery and alarm evaluation; 0 for the
 *    controller and the local autoscaler).
 *  - At every period boundary the scaler folds the visible datapoint into its signals and calls
 *    `decide`. Capacity changes apply at once: launches start booting; scale-in removes booting
 *    instances first, then idle ones, then busy ones (newest first). A busy one drains with
 *    `drainOnScaleIn` (takes nothing new, finishes what it holds, then leaves and stops being billed);
 *    without it, it is terminated at once and its messages become visible again after
 *    `visibilityTimeoutSeconds`, like SQS.
 *  - The run ends when every request is served and capacity has settled at its floor (minCapacity,
 *    or max(1, minCapacity) without scale-to-zero), or at the horizon.
 * Deterministic: all randomness comes from a seeded PRNG.
 */

import { percentiles } from '../../lib/stats.js';
import {
  type Datapoint,
  type DecisionRule,
  decide,
  NO_SIGNALS,
  type Signals,
  trackSignals,
} from '../../scaling/core/decide.js';
import { ScalingError } from '../../scaling/core/errors.js';
import type { ScalingPolicy } from '../../scaling/core/policy.js';
import { type RequestOverhead, type SimEnvironment, validateEnvironment } from './environment.js';
import { MinHeap } from './heap.js';
import { mulberry32 } from './rng.js';
import { checkClosedLoop, requestCount, type Workload } from './trace.js';

export {
  AWS_MODES,
  type AwsMode,
  environmentPreset,
  type ModeSetup,
  modeSetup,
  type PolicyOptions,
  policyPreset,
  type RequestOverhead,
  SIM_MODES,
  type SimEnvironment,
  type SimMode,
  validateEnvironment,
} from './environment.js';

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
    return {
      ingestSeconds: constant.ingestSeconds + drawn.ingestSeconds,
      deliverSeconds: constant.deliverSeconds + drawn.deliverSeconds,
    };
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
  /** Instances in service holding messages when the decision was applied. */
  readonly busy: number;
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
  /**
   * Σ over instance starts of the seconds billed: max(minimumBilledSeconds, launch or start →
   * termination, return to the pool or end), in minutes; booting included.
   */
  readonly instanceMinutes: number;
  /** Maximum visible messages. */
  readonly peakQueueDepth: number;
  /** Maximum desired capacity (instances launched or started and not terminated). */
  readonly peakCapacity: number;
  readonly scaleOuts: number;
  readonly scaleIns: number;
  readonly finalCapacity: number;
  /** First arrival → the first scale-out, seconds (null: none): what the scaler's view of the queue costs. */
  readonly firstScaleOutSeconds: number | null;
  /** First arrival → the first instance started by a scale-out in service, seconds (null: none). */
  readonly firstInServiceSeconds: number | null;
  /**
   * Last answer → the running instances back at the floor capacity for good, seconds (0 when they
   * were there already; null when not back by the end of the run).
   */
  readonly backToMinSeconds: number | null;
  /** Instances started from the warm pool, and launched from scratch. */
  readonly warmStarts: number;
  readonly launches: number;
  /** Messages given back to the queue by an instance terminated while it held them. */
  readonly redeliveries: number;
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
  /** Per request latency, by request: in arrival order for fixed arrivals, in sending order for closed-loop clients. */
  readonly latencies: number[];
  /** Per request arrival (sending) time, same order. */
  readonly arrivals: number[];
  /** Per request client (closed loop), same order; null for fixed arrivals. */
  readonly clients: number[] | null;
}

export type SimInput = {
  readonly policy: ScalingPolicy;
  readonly env: SimEnvironment;
} & Workload;

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
  /** Launched, or started from the warm pool: billed from here (a new start each time). */
  readonly launchAt: number;
  readonly readyAt: number;
  /** Its cold start counts from here; −∞ for the instances already warm at t = 0. */
  readonly coldFrom: number;
  ready: boolean;
  /** Out of the desired capacity (scale-in); a draining instance still finishes its batches. */
  terminatedAt: number | null;
  /** Stopped being billed: terminated, drained or back in the warm pool. */
  leftAt: number | null;
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
export function coldServiceSeconds(
  work: number,
  ageSeconds: number,
  env: Pick<SimEnvironment, 'coldStartSeconds' | 'coldStartFactor'>,
): number {
  const slowWall = Math.max(0, env.coldStartSeconds - ageSeconds);
  if (work * env.coldStartFactor <= slowWall) return work * env.coldStartFactor;
  return slowWall + (work - slowWall / env.coldStartFactor);
}

const holds = (i: Instance): boolean => i.slots.some((s) => s.batch.length > 0);

export function simulate(input: SimInput): SimResult {
  const { policy } = input;
  const env = validateEnvironment(input.env);
  const fixed = 'arrivals' in input ? [...input.arrivals].sort((a, b) => a - b) : null;
  const loop = 'closedLoop' in input ? checkClosedLoop(input.closedLoop, 'closedLoop') : null;
  const total = requestCount(fixed ? { arrivals: fixed } : input);
  if (total === 0) throw new ScalingError('INVALID_SIMULATION', 'The trace has no arrivals', { field: 'arrivals' });
  const P = policy.periodSeconds;
  const rand = mulberry32(env.seed);
  const firstArrival = fixed ? (fixed[0] ?? 0) : (loop?.startSeconds ?? 0);
  // The horizon counts from the last arrival so far (closed-loop clients keep sending).
  let lastArrival = fixed ? (fixed[fixed.length - 1] ?? 0) : firstArrival;
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
  const overheads = requestOverheads(total, env);
  const latencies: number[] = new Array<number>(total).fill(Number.NaN);
  const arrivals: number[] = new Array<number>(total).fill(Number.NaN);
  const clients: number[] | null = loop ? new Array<number>(total).fill(-1) : null;
  let sent = 0;
  let pool = env.warmPoolSize;
  let warmStarts = 0;
  let launches = 0;
  let redeliveries = 0;
  let firstScaleOut: number | null = null;
  let firstInService: number | null = null;
  // Running (billed) instances, and since when they have been back at the floor.
  let running = 0;
  let settledSince: number | null = 0;

  const active = (): Instance[] => instances.filter((i) => i.terminatedAt === null);
  const inService = (): number => instances.reduce((n, i) => n + (i.terminatedAt === null && i.ready ? 1 : 0), 0);

  /** Request `id` reaches the queue its ingest time after it is sent; its latency counts from `time`. */
  const send = (time: number, client: number | null): void => {
    const id = sent++;
    arrivals[id] = time;
    if (clients && client !== null) clients[id] = client;
    lastArrival = Math.max(lastArrival, time);
    schedule({ kind: 'arrival', time: time + overheads[id]!.ingestSeconds, message: { id, arrival: time } });
  };

  const billed = (now: number, delta: number): void => {
    running += delta;
    if (running > settled) settledSince = null;
    else settledSince ??= now;
  };

  /** An instance of the initial capacity (in service at t = 0, warm), or one started by a scale-out. */
  const launch = (now: number, initial: boolean): void => {
    const fromPool = !initial && pool > 0;
    if (fromPool) {
      pool--;
      warmStarts++;
    } else if (!initial) {
      launches++;
    }
    const startSeconds = initial ? 0 : fromPool ? env.warmStartSeconds : env.bootSeconds;
    const inst: Instance = {
      id: nextInstanceId++,
      launchAt: now,
      readyAt: now + startSeconds,
      coldFrom: initial ? Number.NEGATIVE_INFINITY : now + startSeconds,
      ready: startSeconds === 0,
      terminatedAt: null,
      leftAt: null,
      slots: Array.from({ length: env.concurrency }, () => ({ batch: [], token: 0 })),
    };
    instances.push(inst);
    billed(now, +1);
    if (!inst.ready) schedule({ kind: 'ready', time: inst.readyAt, instance: inst });
  };

  /** Stops billing an instance; with a warm pool it goes back to the pool while there is room. */
  const leave = (now: number, inst: Instance): void => {
    inst.leftAt = now;
    billed(now, -1);
    if (pool < env.warmPoolSize) pool++;
  };

  const terminate = (now: number, count: number): void => {
    const candidates = active();
    const newestFirst = (list: Instance[]): Instance[] => list.sort((a, b) => b.id - a.id);
    const victims = [
      ...newestFirst(candidates.filter((i) => !i.ready)),
      ...newestFirst(candidates.filter((i) => i.ready && !holds(i))),
      ...newestFirst(candidates.filter((i) => i.ready && holds(i))),
    ].slice(0, count);
    for (const inst of victims) {
      inst.terminatedAt = now;
      // Draining: it leaves when its last batch is done (see 'done').
      if (env.drainOnScaleIn && holds(inst)) continue;
      for (const slot of inst.slots) {
        if (slot.batch.length > 0) {
          // Still in flight until the visibility timeout, then visible again.
          schedule({ kind: 'reappear', time: now + env.visibilityTimeoutSeconds, messages: slot.batch });
          redeliveries += slot.batch.length;
          slot.batch = [];
          slot.token++;
        }
      }
      leave(now, inst);
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
    const point: TimelinePoint = {
      t,
      visible: queue.length,
      inFlight,
      inService: inService(),
      capacity: active().length,
    };
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
  for (let i = 0; i < policy.minCapacity; i++) launch(0, true);
  if (fixed) for (const time of fixed) send(time, null);
  else if (loop) for (let c = 0; c < Math.min(loop.clients, total); c++) send(loop.startSeconds, c);
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
      // Close the period [now − P, now): its maxima, or the counts at its end.
      const instant = env.observation === 'instant';
      datapoints.push({
        start: now - P,
        end: now,
        visible: instant ? queue.length : periodMaxVisible,
        inFlight: instant ? inFlight : periodMaxInFlight,
        running: inService(),
      });
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
        const busy = active().filter((i) => i.ready && holds(i)).length;
        if (d.desired > capacity) {
          for (let i = capacity; i < d.desired; i++) launch(now, false);
          lastScaleOut = now;
          firstScaleOut ??= now;
          actions.push({ t: now, from: capacity, to: d.desired, rule: d.rule, reason: d.reason, busy });
        } else if (d.desired < capacity) {
          terminate(now, capacity - d.desired);
          lastScaleIn = now;
          actions.push({ t: now, from: capacity, to: d.desired, rule: d.rule, reason: d.reason, busy });
        }
      }
      const allServed = served === total;
      const finalCapacity = active().length;
      if (allServed && finalCapacity === settled && active().every((i) => i.ready)) {
        drained = true;
        record(now);
        break;
      }
      if (now >= lastArrival + env.horizonAfterLastArrivalSeconds) {
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
      if (event.instance.terminatedAt === null) {
        event.instance.ready = true;
        firstInService ??= now;
      }
    } else {
      // done: a terminated instance's batch is void (its token moved on) unless it is draining.
      const { instance: inst, slot } = event;
      if (slot.token === event.token) {
        for (const m of slot.batch) {
          const answeredAt = now + overheads[m.id]!.deliverSeconds;
          latencies[m.id] = answeredAt - m.arrival;
          // With drawn deliver times the last completion need not be the last answer.
          lastAnswer = Math.max(lastAnswer, answeredAt);
          served++;
          // A closed-loop client sends its next request once it has the answer.
          if (loop && sent < total) send(answeredAt + loop.thinkSeconds, clients?.[m.id] ?? null);
        }
        inFlight -= slot.batch.length;
        slot.batch = [];
        if (inst.terminatedAt !== null && inst.leftAt === null && !holds(inst)) leave(now, inst);
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
  const instanceSeconds = instances.reduce(
    (sum, i) => sum + Math.max(env.minimumBilledSeconds, (i.leftAt ?? end) - i.launchAt),
    0,
  );
  const done = latencies.filter((l) => !Number.isNaN(l));
  const sorted = [...done].sort((a, b) => a - b);
  // Nearest rank; 0 when nothing was served.
  const [p50, p95, p99] =
    sorted.length > 0 ? (percentiles(sorted, [50, 95, 99], { sorted: true }) as [number, number, number]) : [0, 0, 0];
  const since = (t: number | null): number | null => (t === null ? null : t - firstArrival);
  return {
    summary: {
      requests: total,
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
      firstScaleOutSeconds: since(firstScaleOut),
      firstInServiceSeconds: since(firstInService),
      backToMinSeconds: served === 0 || settledSince === null ? null : Math.max(0, settledSince - lastAnswer),
      warmStarts,
      launches,
      redeliveries,
      endSeconds: end,
      drained,
    },
    timeline,
    actions,
    datapoints,
    latencies,
    arrivals,
    clients,
  };
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
