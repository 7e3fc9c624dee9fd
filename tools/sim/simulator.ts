/**
 * Discrete-event simulation of the elastic app tier: a queue, instances that boot and process
 * batches, and a metric pipeline feeding the same pure `decide` the local autoscaler uses — late
 * CloudWatch datapoints (the `alarms` mode) or the queue read directly (the controller modes) — or,
 * as the stack deploys it, the controller and the group's CloudWatch policies together, each
 * closing its own periods (`authority`: the `as-deployed` and `controller-dies` modes; `scalers.ts`,
 * `cloudwatch.ts`).
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
 *    `decide` (with `authority`: the controller every 2 s, the CloudWatch policies every minute; at
 *    the same instant the controller goes first). Capacity changes apply at once: launches start booting; scale-in removes booting
 *    instances first, then idle ones, then busy ones (newest first). A busy one drains with
 *    `drainOnScaleIn` (takes nothing new, finishes what it holds, then leaves and stops being billed);
 *    without it, it is terminated at once and its messages become visible again after
 *    `visibilityTimeoutSeconds`, like SQS.
 *  - The run ends when every request is served and capacity has settled at its floor (minCapacity,
 *    or max(1, minCapacity) without scale-to-zero) — with `authority`, and stayed there for as long
 *    as any CloudWatch alarm can still look back (so a late action of theirs shows) — or at the horizon.
 * Deterministic: all randomness comes from a seeded PRNG.
 */

import { percentiles } from '../../lib/stats.js';
import type { Datapoint, DecisionRule } from '../../scaling/core/decide.js';
import { ScalingError } from '../../scaling/core/errors.js';
import { HANDOVER } from '../../scaling/core/handover.js';
import type { ScalingPolicy } from '../../scaling/core/policy.js';
import { CloudWatchScaler } from './cloudwatch.js';
import { type RequestOverhead, type SimEnvironment, validateEnvironment } from './environment.js';
import { MinHeap } from './heap.js';
import { mulberry32 } from './rng.js';
import {
  type AuthorityInput,
  DecideScaler,
  type GroupView,
  HeartbeatStore,
  type Scaler,
  type ScalerName,
  SimulatedHeartbeat,
} from './scalers.js';
import { checkClosedLoop, requestCount, type Workload } from './trace.js';

export {
  AUTHORITY_MODES,
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
  stackAuthority,
  stackTarget,
  validateEnvironment,
} from './environment.js';
export type { AuthorityInput } from './scalers.js';

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
  /** Who set it: the run's only scaler, or, with `authority`, the controller or the CloudWatch policies. */
  readonly by: ScalerName;
}

/** One start of an instance: launched, or started from the warm pool. */
export interface InstanceStart {
  readonly t: number;
  readonly warm: boolean;
  /** When it stopped being billed (terminated, drained, back in the pool); null: still running at the end. */
  readonly ended: number | null;
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
  /**
   * Starts (warm or cold) that ended within `minimumBilledSeconds` of their start: billed for time
   * they did not run — churn, when a scaler undoes another's scale-out.
   */
  readonly shortStarts: number;
  /** The latest start, from the first arrival, seconds (null: none): its first billed minute ends 60 s later. */
  readonly lastStartSeconds: number | null;
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
  /** The datapoints of the run's scaler (with `authority`, the controller's; the policies' have their own periods). */
  readonly datapoints: Datapoint[];
  /** Every start of an instance by a scale-out, in order. */
  readonly starts: InstanceStart[];
  /** With `authority`: what each side did. */
  readonly authority?: AuthorityOutcome;
  /** Per request latency, by request: in arrival order for fixed arrivals, in sending order for closed-loop clients. */
  readonly latencies: number[];
  /** Per request arrival (sending) time, same order. */
  readonly arrivals: number[];
  /** Per request client (closed loop), same order; null for fixed arrivals. */
  readonly clients: number[] | null;
}

export interface AuthorityOutcome {
  /** Controller ticks spent holding (leading, but the CloudWatch policies could still act). */
  readonly controllerHeldTicks: number;
  readonly controllerDiedAt: number | null;
  /** Evaluations with an alarm in ALARM (the policies' own, and target tracking's), by time. */
  readonly alarms: readonly { readonly t: number; readonly names: readonly string[] }[];
}

export type SimInput = {
  readonly policy: ScalingPolicy;
  readonly env: SimEnvironment;
  readonly authority?: AuthorityInput;
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
  /** Started by a scale-out from the warm pool (false: launched, or part of the initial capacity). */
  readonly warm: boolean;
  /** Part of the capacity at t = 0, not started by a scale-out. */
  readonly initial: boolean;
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
  | { kind: 'tick'; time: number; seq: number; scaler: number }
  | { kind: 'arrival'; time: number; seq: number; message: Message }
  | { kind: 'reappear'; time: number; seq: number; messages: Message[] }
  | { kind: 'done'; time: number; seq: number; instance: Instance; slot: Slot; token: number }
  | { kind: 'ready'; time: number; seq: number; instance: Instance };

/** Order of events at the same instant: close the period first, then the rest. */
const PRIORITY: Readonly<Record<SimEvent['kind'], number>> = { tick: 0, arrival: 1, reappear: 2, done: 3, ready: 4 };

function before(a: SimEvent, b: SimEvent): boolean {
  if (a.time !== b.time) return a.time < b.time;
  if (PRIORITY[a.kind] !== PRIORITY[b.kind]) return PRIORITY[a.kind] < PRIORITY[b.kind];
  // Two scalers closing a period at the same instant: in their order (the controller first).
  if (a.kind === 'tick' && b.kind === 'tick' && a.scaler !== b.scaler) return a.scaler < b.scaler;
  return a.seq < b.seq;
}

/** The scalers of a run: `decide` alone, or the controller and the CloudWatch policies together. */
function scalersOf(input: SimInput, env: SimEnvironment): { scalers: Scaler[]; quietSeconds: number } {
  const a = input.authority;
  if (a === undefined)
    return {
      scalers: [
        new DecideScaler({
          name: 'scaler',
          policy: input.policy,
          lagPeriods: env.metricLagPeriods,
          phaseSeconds: env.tickPhaseSeconds,
        }),
      ],
      quietSeconds: 0,
    };
  const { policy: fallback, requests } = a.fallback;
  const store = new HeartbeatStore(fallback.periodSeconds);
  const scalers: Scaler[] = [];
  if (a.controller) {
    const timing = a.timing ?? HANDOVER;
    if (timing.periodSeconds !== fallback.periodSeconds)
      throw new ScalingError('INVALID_SIMULATION', 'The handover timing must use the CloudWatch policies’ period', {
        field: 'authority.timing.periodSeconds',
        value: timing.periodSeconds,
      });
    const heartbeat =
      a.heartbeat === false
        ? undefined
        : a.controllerStartsAt === undefined
          ? SimulatedHeartbeat.running(store, timing)
          : SimulatedHeartbeat.starting(store, timing);
    scalers.push(
      new DecideScaler({
        name: 'controller',
        policy: input.policy,
        lagPeriods: env.metricLagPeriods,
        ...(heartbeat === undefined ? {} : { heartbeat }),
        ...(a.controllerDiesAt === undefined ? {} : { diesAt: a.controllerDiesAt }),
        ...(a.controllerStartsAt === undefined ? {} : { startsAt: a.controllerStartsAt }),
        phaseSeconds: env.tickPhaseSeconds,
      }),
    );
  }
  const cloudwatch = new CloudWatchScaler({
    requests,
    periodSeconds: fallback.periodSeconds,
    lagPeriods: a.lagPeriods,
    minCapacity: fallback.minCapacity,
    maxCapacity: fallback.maxCapacity,
    heartbeats: store,
  });
  scalers.push(cloudwatch);
  return { scalers, quietSeconds: cloudwatch.reachSeconds };
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
  const { scalers, quietSeconds } = scalersOf(input, env);
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
      warm: fromPool,
      initial,
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
  // Each scaler's maxima over its current period.
  const periodMax = scalers.map(() => ({ visible: 0, inFlight: 0 }));
  const observe = (): void => {
    for (const m of periodMax) {
      m.visible = Math.max(m.visible, queue.length);
      m.inFlight = Math.max(m.inFlight, inFlight);
    }
  };

  const actions: ScalingAction[] = [];
  let peakQueue = 0;
  let peakCapacity = 0;

  /** The group as scalers see it at `now`: they set its desired capacity through it. */
  const groupAt = (now: number): GroupView => ({
    get capacity() {
      return active().length;
    },
    get inService() {
      return inService();
    },
    setCapacity(to: number, by: ScalerName, rule: DecisionRule, reason: string): void {
      const capacity = active().length;
      if (to === capacity) return;
      const busy = active().filter((i) => i.ready && holds(i)).length;
      if (to > capacity) {
        for (let i = capacity; i < to; i++) launch(now, false);
        firstScaleOut ??= now;
      } else {
        terminate(now, capacity - to);
      }
      actions.push({ t: now, from: capacity, to, rule, reason, busy, by });
    },
  });

  // Initial capacity: minCapacity instances already in service, past their cold start.
  for (let i = 0; i < policy.minCapacity; i++) launch(0, true);
  if (fixed) for (const time of fixed) send(time, null);
  else if (loop) for (let c = 0; c < Math.min(loop.clients, total); c++) send(loop.startSeconds, c);
  // Each scaler closes its k-th period at k × its period (integer multiples: no drift).
  for (const scaler of scalers) {
    if (scaler.phaseSeconds >= scaler.periodSeconds)
      throw new ScalingError(
        'INVALID_SIMULATION',
        'Invalid simulation environment: tickPhaseSeconds must be less than the period',
        {
          field: 'tickPhaseSeconds',
          value: scaler.phaseSeconds,
        },
      );
  }
  /** The k-th end of a scaler's periods (k ≥ 1): the first at its phase, or at one period with none. */
  const tickTime = (scaler: Scaler, k: number): number =>
    (scaler.phaseSeconds > 0 ? scaler.phaseSeconds : scaler.periodSeconds) + (k - 1) * scaler.periodSeconds;
  const ticks = scalers.map(() => 1);
  scalers.forEach((scaler, i) => {
    if (scaler.alive(tickTime(scaler, 1))) schedule({ kind: 'tick', time: tickTime(scaler, 1), scaler: i });
  });
  record(0);

  let now = 0;
  let drained = false;
  /** Since when every request is served and capacity sits at its floor (null: not now). */
  let quietSince: number | null = null;
  for (;;) {
    const event = events.pop();
    if (!event) break;
    now = event.time;

    if (event.kind === 'tick') {
      const i = event.scaler;
      const scaler = scalers[i]!;
      const m = periodMax[i]!;
      // Close the period [now − P, now): its maxima, or the counts at its end.
      const instant = env.observation === 'instant';
      const dp: Datapoint = {
        start: now - scaler.periodSeconds,
        end: now,
        visible: instant ? queue.length : m.visible,
        inFlight: instant ? inFlight : m.inFlight,
        running: inService(),
      };
      // The state at `now` belongs to the new period; it is observed once every event at `now` is done.
      m.visible = 0;
      m.inFlight = 0;
      scaler.tick(now, dp, groupAt(now));
      const finalCapacity = active().length;
      if (served === total && finalCapacity === settled && active().every((inst) => inst.ready)) {
        quietSince ??= now;
        if (now - quietSince >= quietSeconds) {
          drained = true;
          record(now);
          break;
        }
      } else {
        quietSince = null;
      }
      if (now >= lastArrival + env.horizonAfterLastArrivalSeconds) {
        record(now);
        break;
      }
      ticks[i]!++;
      const next = tickTime(scaler, ticks[i]!);
      if (scaler.alive(next)) schedule({ kind: 'tick', time: next, scaler: i });
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
  const starts: InstanceStart[] = instances
    .filter((i) => !i.initial)
    .map((i) => ({ t: i.launchAt, warm: i.warm, ended: i.leftAt }));
  const lastStart = starts.at(-1)?.t ?? null;
  const decider = scalers.find((x): x is DecideScaler => x instanceof DecideScaler);
  const cloudwatch = scalers.find((x): x is CloudWatchScaler => x instanceof CloudWatchScaler);
  const authority: AuthorityOutcome | undefined =
    input.authority === undefined
      ? undefined
      : {
          controllerHeldTicks: decider?.heldTicks ?? 0,
          controllerDiedAt: input.authority.controller ? (input.authority.controllerDiesAt ?? null) : null,
          alarms: cloudwatch?.alarmsInAlarm ?? [],
        };
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
      shortStarts: starts.filter((x) => x.ended !== null && x.ended - x.t < env.minimumBilledSeconds).length,
      lastStartSeconds: since(lastStart),
      redeliveries,
      endSeconds: end,
      drained,
    },
    timeline,
    actions,
    datapoints: decider?.datapoints ?? [],
    starts,
    ...(authority === undefined ? {} : { authority }),
    latencies,
    arrivals,
    clients,
  };
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
