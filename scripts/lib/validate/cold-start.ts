/**
 * The worker's service time and its cold start, from the inference batches of one run.
 *
 *  - Batches: the stored results of one batch share its size and its inference time (0.01 ms);
 *    its end is the earliest `completedAt` of its images (stamped right after the inference, before
 *    persisting; later images of the batch may wait for a persist slot), its start = end − infer.
 *  - Workers: the results do not say which worker ran a batch, so each batch is attributed to a
 *    worker in service whose previous batch had ended (a worker runs one inference at a time); if
 *    several qualify, to the one idle longest (the longest-waiting receive gets the next message).
 *    `ambiguous` counts the batches whose cold-start status depended on that choice.
 *  - Warm service: batch of n takes overhead + perImage × n, least squares over the warm batches;
 *    when the fit is undetermined or unphysical (one batch size only; a negative overhead or slope,
 *    as noise easily gives) the overhead is 0 and the per-image time is Σ infer / Σ n.
 *  - Cold start (the simulator's `coldServiceSeconds`): a worker runs at 1 / factor speed during its
 *    first `seconds` in service. `seconds` and `factor` minimise the squared error of all predicted
 *    batch durations, the warm fit being redone on the batches started after the window; `seconds`
 *    is searched over 0 and every batch end (age), `factor` ≥ 1 by golden section. 0 s, factor 1
 *    when no window explains the batches better than none (by more than the 0.01 ms the inference
 *    time is recorded to). The window holds at most half of the
 *    batches: the warm fit must rest on most of the run (a fit on two batches is exact, and would
 *    win on error alone).
 */
import { coldServiceSeconds } from '../../../scaling/simulator.js';
import type { StoredResult } from './stored.js';

/** One inference batch; times in seconds after the replay's origin. */
export interface Batch {
  readonly n: number;
  readonly inferSeconds: number;
  readonly start: number;
  readonly end: number;
}

/** One worker process; seconds after the origin (−∞: in service before it, +∞: never retired). */
export interface WorkerSpan {
  readonly readyAt: number;
  readonly retiredAt: number;
}

/** A batch with the age of the worker it is attributed to (start − ready, ≥ 0; +∞ for a worker warm before the origin). */
export interface AgedBatch extends Batch {
  readonly ageSeconds: number;
  /** Ages the batch would have had on the other workers that were just as free. */
  readonly alternativeAges: readonly number[];
}

export interface Attribution {
  readonly batches: readonly AgedBatch[];
  /** Batches that overlapped the previous batch of every worker in service (clock or attribution error). */
  readonly overlapping: number;
}

export interface ServiceFit {
  readonly overheadSeconds: number;
  readonly perImageSeconds: number;
  readonly kind: 'least-squares' | 'ratio';
}

export interface ColdStartFit {
  readonly seconds: number;
  readonly factor: number;
  /** The warm service time, fitted on the batches started after the window. */
  readonly warm: ServiceFit;
  /** Batches started in a worker's window. */
  readonly coldBatches: number;
  /** Batches whose cold-start status would differ on another worker that was just as free. */
  readonly ambiguous: number;
}

/** completedAt is stamped to the millisecond: consecutive batches of one worker may seem to overlap by that much. */
const CLOCK_SLACK_SECONDS = 0.002;
/** `infer` is recorded to 0.01 ms: a window must lower the error by more than that per batch. */
const INFER_RESOLUTION_SECONDS = 1e-5;

export function batchesOf(stored: readonly StoredResult[], originEpoch: number): Batch[] {
  const groups = new Map<string, StoredResult[]>();
  for (const r of stored) {
    const infer = r.timings['infer'];
    if (infer === undefined || r.batch < 1) continue;
    const key = `${r.batch}|${infer}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const out: Batch[] = [];
  for (const images of groups.values()) {
    // Different batches can share a size and an inference time (single images often do): split by time.
    const sorted = [...images].sort((a, b) => a.completedAt - b.completedAt);
    const n = sorted[0]!.batch;
    const inferSeconds = sorted[0]!.timings['infer']! / 1000;
    for (let i = 0; i < sorted.length; i += n) {
      const end = sorted[i]!.completedAt - originEpoch;
      out.push({ n, inferSeconds, start: end - inferSeconds, end });
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

export function attributeBatches(batches: readonly Batch[], workers: readonly WorkerSpan[]): Attribution {
  const lastEnd = workers.map(() => Number.NEGATIVE_INFINITY);
  const ageOn = (w: number, b: Batch): number => Math.max(0, b.start - workers[w]!.readyAt);
  const out: AgedBatch[] = [];
  let overlapping = 0;
  for (const b of [...batches].sort((x, y) => x.start - y.start)) {
    const all = workers.map((_, w) => w);
    const free = all.filter((w) => lastEnd[w]! <= b.start + CLOCK_SLACK_SECONDS);
    // A retiring worker still finishes what it holds: it is a candidate only when no active one is free.
    const active = free.filter((w) => workers[w]!.retiredAt > b.start);
    const pool = active.length > 0 ? active : free;
    // The recorded ready time can lag the worker's first receive by a status poll.
    const ready = pool.filter((w) => workers[w]!.readyAt <= b.start);
    let chosen: number;
    let alternatives: number[] = [];
    if (ready.length > 0) {
      chosen = ready.reduce((best, w) => (lastEnd[w]! < lastEnd[best]! ? w : best));
      alternatives = ready.filter((w) => w !== chosen);
    } else if (pool.length > 0) {
      chosen = pool.reduce((best, w) => (workers[w]!.readyAt < workers[best]!.readyAt ? w : best));
    } else {
      overlapping++;
      chosen = all.reduce((best, w) => (lastEnd[w]! < lastEnd[best]! ? w : best));
    }
    lastEnd[chosen] = b.end;
    out.push({ ...b, ageSeconds: ageOn(chosen, b), alternativeAges: alternatives.map((w) => ageOn(w, b)) });
  }
  return { batches: out, overlapping };
}

export function fitService(batches: readonly Batch[]): ServiceFit {
  const k = batches.length;
  const meanN = batches.reduce((s, b) => s + b.n, 0) / k;
  const meanT = batches.reduce((s, b) => s + b.inferSeconds, 0) / k;
  const sxx = batches.reduce((s, b) => s + (b.n - meanN) ** 2, 0);
  const sxy = batches.reduce((s, b) => s + (b.n - meanN) * (b.inferSeconds - meanT), 0);
  if (sxx > 0) {
    const slope = sxy / sxx;
    const intercept = meanT - slope * meanN;
    if (slope > 0 && intercept >= 0) return { overheadSeconds: intercept, perImageSeconds: slope, kind: 'least-squares' };
  }
  const perImage = batches.reduce((s, b) => s + b.inferSeconds, 0) / batches.reduce((s, b) => s + b.n, 0);
  return { overheadSeconds: 0, perImageSeconds: perImage, kind: 'ratio' };
}

const warmSeconds = (fit: ServiceFit, n: number): number => fit.overheadSeconds + fit.perImageSeconds * n;

function squaredError(batches: readonly AgedBatch[], warm: ServiceFit, seconds: number, factor: number): number {
  const env = { coldStartSeconds: seconds, coldStartFactor: factor };
  return batches.reduce((s, b) => s + (b.inferSeconds - coldServiceSeconds(warmSeconds(warm, b.n), b.ageSeconds, env)) ** 2, 0);
}

/** Golden-section search of f in [1, fMax] on a log scale (the error is unimodal in practice, not provably). */
function bestFactor(cold: readonly AgedBatch[], warm: ServiceFit, seconds: number): number {
  const fMax = Math.max(1, ...cold.map((b) => b.inferSeconds / warmSeconds(warm, b.n)));
  const error = (logF: number) => squaredError(cold, warm, seconds, Math.exp(logF));
  const phi = (Math.sqrt(5) - 1) / 2;
  let lo = 0;
  let hi = Math.log(fMax);
  for (let i = 0; i < 60 && hi - lo > 1e-6; i++) {
    const a = hi - phi * (hi - lo);
    const b = lo + phi * (hi - lo);
    if (error(a) <= error(b)) hi = b;
    else lo = a;
  }
  return Math.exp((lo + hi) / 2);
}

/** Needs at least one batch; `ambiguous` is counted against the chosen window. */
export function fitColdStart(batches: readonly AgedBatch[]): ColdStartFit {
  const candidates = [...new Set(batches.map((b) => b.ageSeconds + b.inferSeconds))].filter((w) => Number.isFinite(w) && w > 0).sort((a, b) => a - b);
  const allWarm = fitService(batches);
  const noise = batches.length * INFER_RESOLUTION_SECONDS ** 2;
  let best = { seconds: 0, factor: 1, warm: allWarm, error: squaredError(batches, allWarm, 0, 1) };
  for (const seconds of candidates) {
    const warmBatches = batches.filter((b) => b.ageSeconds >= seconds);
    if (warmBatches.length < batches.length / 2) break;
    const warm = fitService(warmBatches);
    const cold = batches.filter((b) => b.ageSeconds < seconds);
    const factor = bestFactor(cold, warm, seconds);
    const error = squaredError(batches, warm, seconds, factor);
    if (error < best.error - noise) best = { seconds, factor, warm, error };
  }
  const inWindow = (age: number) => age < best.seconds;
  return {
    seconds: best.seconds,
    factor: best.factor,
    warm: best.warm,
    coldBatches: batches.filter((b) => inWindow(b.ageSeconds)).length,
    ambiguous: batches.filter((b) => b.alternativeAges.some((a) => inWindow(a) !== inWindow(b.ageSeconds))).length,
  };
}
