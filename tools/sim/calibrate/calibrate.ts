/**
 * The simulator's environment, measured in the same run it is compared against.
 *
 *  - Worker start (`bootSeconds`): for every scale-out decision from a to b, the time from the
 *    decision until the polled status shows a+1, ..., b workers running (before the next decision),
 *    or until its `pool.resize` settled (all of its workers ready) if that is earlier: a status
 *    sample lags by up to a poll. One start time per new worker; mean over all of them. Without
 *    status samples for a scale-out, the resize settled time stands in for each of its workers.
 *  - Service time: a worker's serial bottleneck is the inference loop (one batch at a time); fetch,
 *    decode, persist and respond run concurrently around it. So one worker = one slot whose batch
 *    of n images takes `batchOverheadSeconds + perImageSeconds × n`, fitted on the inference
 *    batches of the run (`timings.infer` of the batch, `batch` = its size, `completedAt`, from the
 *    stored results). Under CPU contention the measured inference time already includes the time
 *    lost to decoding and to the other processes.
 *  - Cold start (`coldStartSeconds`, `coldStartFactor`): each stored result names its worker, whose
 *    ready time (above, matched in order of coming into service) gives its batches' ages; the window
 *    and the slowdown that best predict every batch's duration, with the warm fit above on the
 *    batches after the window (`cold-start.ts`).
 *  - Batch size: the workers' MAX_BATCH (at most 10, the simulator's receive limit).
 *  - Time outside the queue and the slot (`overhead.ts`): per answered request, ingest = client send
 *    → message in the queue (the wait before the web tier reads the upload, upload, S3 put, enqueue)
 *    and deliver = inference done → answer at the client (the part of the web tier's `total` that is
 *    neither ingest nor queue wait nor inference). The requests that ran without waiting in a backlog
 *    give the simulator a sample of (ingest, deliver) pairs, one drawn per simulated request, when
 *    they are at least half of the answered requests. Otherwise (a burst: every request waited) each
 *    simulated request draws its ingest from every answered request's — when the first message
 *    reaches the queue starts the scale-out, which a median for all would delay — and deliver is
 *    the median over all answered requests, as the few unhindered requests of a loaded run say
 *    little about the others' deliver, which grows with the load.
 *  - Tick phase (`tickPhaseSeconds`): the autoscaler's periods end on its own grid, which starts
 *    with the service, not with the trace; its first decision, modulo the period, says where (a
 *    decision is taken at the first depth sample past a grid point, a few tens of ms late). Against
 *    a grid on the origin a scale-out can come up to a period early or late: a second of a burst's
 *    four, or a few more requests in the steady trace's cold-start backlog.
 */
import { percentile } from '../../../lib/stats.js';
import type { RequestOverhead, SimEnvironment } from '../simulator.js';
import { type AgedBatch, attributeBatches, batchesOf, fitColdStart } from './cold-start.js';
import { ValidateError } from './errors.js';
import type { Measurement } from './measure.js';
import { estimateOverhead, type OverheadSpread, overheadSpread, rankCorrelation } from './overhead.js';

/** The time outside the queue and the slot, as measured and as simulated. */
export interface OverheadCalibration {
  /**
   * `sample`: each simulated request draws a pair from `sample`; `ingest`: each draws its ingest from
   * `ingest` (every answered request's), with the median deliver of all for deliver.
   */
  readonly simulated: 'sample' | 'ingest';
  /** The ingest of every answered request, seconds: what the `ingest` way draws from. */
  readonly ingest: readonly number[];
  /** (ingest, deliver) of each request that ran without waiting in a backlog, in arrival order. */
  readonly sample: readonly RequestOverhead[];
  /** p50/p95 of the sample (undefined: empty). */
  readonly sampleSpread: OverheadSpread | undefined;
  /** Spearman correlation of ingest and deliver in the sample: why a pair is drawn whole. */
  readonly sampleRankCorrelation: number | undefined;
  /** p50/p95 over every directly answered request. */
  readonly answered: OverheadSpread;
  /** Of ingest: median wait before the web tier reads the upload (client-side remainder), seconds. */
  readonly beforeServerSeconds: number;
  /** Of deliver: median of s3Get + decode + persist, seconds. */
  readonly workerPathSeconds: number;
}

export interface Calibration {
  readonly bootSeconds: number;
  /** Where the autoscaler's periods end, seconds after the origin, modulo the period. */
  readonly tickPhaseSeconds: number;
  readonly perImageSeconds: number;
  readonly batchOverheadSeconds: number;
  readonly batchSize: number;
  /** A new worker's first seconds in service, during which it runs `coldStartFactor` times slower. */
  readonly coldStartSeconds: number;
  readonly coldStartFactor: number;
  readonly overhead: OverheadCalibration;
  readonly basis: {
    readonly scaleOuts: number;
    /** One per started worker. */
    readonly bootsSeconds: readonly number[];
    /** Workers that started at once with each of them (1: alone), to read the boot times against. */
    readonly bootsAtOnce: readonly number[];
    readonly batches: number;
    readonly batchSizes: { readonly min: number; readonly mean: number; readonly max: number };
    /** Of the warm service time (the batches started after the cold-start window). */
    readonly fit: 'least-squares' | 'ratio';
    /** Batches started in a worker's cold-start window. */
    readonly coldBatches: number;
    /** Worker processes that classified something, and workers in service at the origin or started. */
    readonly workers: number;
    readonly startedWorkers: number;
    /** Batches that overlapped their worker's previous batch (should be 0). */
    readonly overlappingBatches: number;
  };
}

const WORKER_STAGES = ['s3Get', 'decode', 'persist'] as const;

/** Per-request sums of `stages` of the answered requests, seconds. */
function stageSums(m: Measurement, stages: readonly string[]): number[] {
  const persisted = new Map(m.stored.map((r) => [r.id, r.timings.persist]));
  return m.requests.flatMap((r) => {
    if (r.id === undefined || r.done === undefined) return [];
    const timings: Record<string, number | undefined> = {
      ...r.timings,
      persist: r.timings.persist ?? persisted.get(r.id),
    };
    return [stages.reduce((sum, stage) => sum + (timings[stage] ?? 0), 0) / 1000];
  });
}

/** Nearest-rank median; 0 for no value. */
const median = (xs: readonly number[]): number => (xs.length > 0 ? percentile(xs, 50) : 0);

interface WorkerStart {
  /** Decision → in service, seconds. */
  readonly bootSeconds: number;
  /** Workers the same decision started. */
  readonly atOnce: number;
}

/** Start time of each worker a scale-out decision added (see the module comment). */
function startsOf(m: Measurement, i: number): number[] {
  const d = m.decisions[i]!;
  const at = d.t - m.originEpoch;
  const next = m.decisions[i + 1];
  const until = next === undefined ? Number.POSITIVE_INFINITY : next.t - m.originEpoch;
  const settled = d.resize.state === 'done' ? d.resize.ms / 1000 : undefined;
  const samples = m.timeline.filter((s) => s.t >= at && s.t < until);
  const starts: number[] = [];
  for (let k = d.from + 1; k <= d.to; k++) {
    const first = samples.find((s) => s.running >= k);
    if (first) starts.push(Math.min(first.t - at, settled ?? Number.POSITIVE_INFINITY));
  }
  if (starts.length === d.to - d.from || settled === undefined) return starts; // what was seen, if not all
  return Array.from({ length: d.to - d.from }, () => settled);
}

/**
 * Every worker of the run: those in service at the origin (the service settled at minCapacity
 * first), then one per worker a scale-out started. `readyTimes` in seconds after the origin (−∞:
 * in service before it).
 */
function workersOf(m: Measurement): { starts: WorkerStart[]; readyTimes: number[] } {
  const readyTimes: number[] = Array.from({ length: m.policy.minCapacity }, () => Number.NEGATIVE_INFINITY);
  const starts: WorkerStart[] = [];
  m.decisions.forEach((d, i) => {
    if (d.to <= d.from) return;
    const at = d.t - m.originEpoch;
    const boots = startsOf(m, i);
    for (const bootSeconds of boots) {
      readyTimes.push(at + bootSeconds);
      starts.push({ bootSeconds, atOnce: boots.length });
    }
  });
  return { starts, readyTimes };
}

/**
 * At least this share of the answered requests must have run without waiting for their pairs to
 * stand for the run's overhead (module comment).
 */
const MIN_CALM_SHARE = 0.5;

function overheadOf(m: Measurement, batches: readonly AgedBatch[]): OverheadCalibration {
  const batchOf = new Map(batches.flatMap((b) => b.ids.map((id) => [id, b] as const)));
  const estimate = estimateOverhead(m.name, m.requests, batchOf);
  const sample = estimate.calm;
  return {
    simulated: sample.length >= MIN_CALM_SHARE * estimate.answered.requests ? 'sample' : 'ingest',
    ingest: estimate.ingest,
    sample,
    sampleSpread: sample.length > 0 ? overheadSpread(sample) : undefined,
    sampleRankCorrelation: rankCorrelation(sample),
    answered: estimate.answered,
    beforeServerSeconds: estimate.beforeServerSeconds,
    workerPathSeconds: median(stageSums(m, WORKER_STAGES)),
  };
}

/** The phase of the autoscaler's grid against the trace's origin, from its first decision (0: none). */
export function tickPhase(m: Pick<Measurement, 'decisions' | 'originEpoch' | 'policy'>): number {
  const first = m.decisions[0];
  if (first === undefined) return 0;
  const P = m.policy.periodSeconds;
  const phase = (((first.t - m.originEpoch) % P) + P) % P;
  return phase < P ? phase : 0;
}

export function calibrate(m: Measurement): Calibration {
  const { starts, readyTimes } = workersOf(m);
  const boots = starts.map((s) => s.bootSeconds);
  if (boots.length === 0) {
    throw new ValidateError(
      'CALIBRATION',
      `trace ${m.name}: no completed scale-out, so no measured worker start time`,
      {
        trace: m.name,
        decisions: m.decisions.length,
      },
    );
  }
  const batches = batchesOf(m.stored, m.originEpoch);
  if (batches.length === 0)
    throw new ValidateError('CALIBRATION', `trace ${m.name}: no inference batch in the stored results`, {
      trace: m.name,
    });
  const attribution = attributeBatches(batches, readyTimes);
  const cold = fitColdStart(attribution.batches);
  const sizes = batches.map((b) => b.n);
  return {
    bootSeconds: boots.reduce((a, b) => a + b, 0) / boots.length,
    tickPhaseSeconds: tickPhase(m),
    perImageSeconds: cold.warm.perImageSeconds,
    batchOverheadSeconds: cold.warm.overheadSeconds,
    batchSize: Math.min(10, Math.max(1, m.config.worker.maxBatch)),
    coldStartSeconds: cold.seconds,
    coldStartFactor: cold.factor,
    overhead: overheadOf(m, attribution.batches),
    basis: {
      scaleOuts: m.decisions.filter((d) => d.to > d.from).length,
      bootsSeconds: boots,
      bootsAtOnce: starts.map((s) => s.atOnce),
      batches: batches.length,
      batchSizes: {
        min: Math.min(...sizes),
        mean: sizes.reduce((a, b) => a + b, 0) / sizes.length,
        max: Math.max(...sizes),
      },
      fit: cold.warm.kind,
      coldBatches: cold.coldBatches,
      workers: attribution.workers,
      startedWorkers: attribution.started,
      overlappingBatches: attribution.overlapping,
    },
  };
}

/**
 * The time outside the queue the simulator gets: the measured pairs; or, when most requests waited,
 * every request's own ingest (when its message reached the queue: the first one starts the scale-out,
 * so a median for all would start it late) and the median deliver (theirs holds the wait for a slot,
 * which the simulated queue counts already).
 */
function overheadEnvironment(
  o: OverheadCalibration,
): Pick<SimEnvironment, 'ingestSeconds' | 'deliverSeconds' | 'overheadSamples'> {
  if (o.simulated === 'sample') return { ingestSeconds: 0, deliverSeconds: 0, overheadSamples: o.sample };
  return {
    ingestSeconds: 0,
    deliverSeconds: o.answered.deliverSeconds.p50,
    overheadSamples: o.ingest.map((ingestSeconds) => ({ ingestSeconds, deliverSeconds: 0 })),
  };
}

/** The local preset with the measured values in place of the policy's own estimates. */
export function environmentFrom(
  preset: SimEnvironment,
  c: Calibration,
  visibilityTimeoutSeconds: number,
): SimEnvironment {
  return {
    ...preset,
    bootSeconds: c.bootSeconds,
    tickPhaseSeconds: c.tickPhaseSeconds,
    perImageSeconds: c.perImageSeconds,
    batchOverheadSeconds: c.batchOverheadSeconds,
    batchSize: c.batchSize,
    concurrency: 1,
    coldStartSeconds: c.coldStartSeconds,
    coldStartFactor: c.coldStartFactor,
    visibilityTimeoutSeconds,
    // Time outside the queue and the inference slot, measured per request in the same run.
    ...overheadEnvironment(c.overhead),
  };
}
