/**
 * The worker's service time and its cold start, from the inference batches of one run.
 *
 *  - Batches: the stored results of one batch share its worker (`<host>:<pid>`), its size and its
 *    inference time (0.01 ms); its end is the earliest `completedAt` of its images (stamped right
 *    after the inference, before persisting; later images of the batch may wait for a persist slot),
 *    its start = end − infer.
 *  - Workers: each result names the worker process that classified it, so a worker's batches are
 *    known exactly; only its ready time comes from elsewhere (the status, `calibrate.ts`). The
 *    workers are matched to the ready times in order: the k-th worker to start a batch is the k-th to
 *    have come into service (a worker classifies nothing before it is ready, and a new worker takes
 *    the backlog that launched it). A started worker that classified nothing shifts the match: every
 *    worker after it is given an earlier ready time than its own, so its batches look older (warmer)
 *    than they were — the report shows `workers` (classifying) / `started` so such a run can be told
 *    apart. More workers than ready times (a crashed worker replaced without a scaling decision)
 *    cannot be aged and fail the calibration.
 *  - Warm service: batch of n takes overhead + perImage × n, least squares over the warm batches;
 *    when the fit is undetermined or unphysical (one batch size only; a negative overhead or slope,
 *    as noise easily gives) the overhead is 0 and the per-image time is Σ infer / Σ n.
 *  - Cold start (the simulator's `coldServiceSeconds`): a worker runs at 1 / factor speed during its
 *    first `seconds` in service. `seconds` and `factor` minimise the squared error of all predicted
 *    batch durations, the warm fit being redone on the batches started after the window; `seconds`
 *    is searched over 0 and every batch end (age), `factor` ≥ 1 by golden section. 0 s, factor 1
 *    unless the best window lowers the Bayesian information criterion n·ln(SSE) + k·ln(n) (it adds
 *    two parameters): a few early batches that happen to be slow do not make a cold start. The window holds at most half of the
 *    batches: the warm fit must rest on most of the run (a fit on two batches is exact, and would
 *    win on error alone).
 */
import { coldServiceSeconds } from '../simulator.js';
import { ValidateError } from './errors.js';
import type { StoredResult } from './stored.js';

/** One inference batch; times in seconds after the replay's origin. */
export interface Batch {
  /** The worker process that ran it, `<host>:<pid>`. */
  readonly worker: string;
  readonly n: number;
  readonly inferSeconds: number;
  readonly start: number;
  readonly end: number;
  /** Request ids of its images. */
  readonly ids: readonly string[];
}

/** A batch with what its worker tells about it. */
export interface AgedBatch extends Batch {
  /** start − its worker's ready time, ≥ 0 (+∞ on a worker in service before the origin). */
  readonly ageSeconds: number;
  /** When its worker came into service, seconds after the origin (−∞: before it). */
  readonly workerReadyAt: number;
  /** End of its worker's previous batch (−∞ for the worker's first). */
  readonly previousEnd: number;
}

export interface Attribution {
  readonly batches: readonly AgedBatch[];
  /** Worker processes that classified something. */
  readonly workers: number;
  /** Workers in service at the origin or started during the run (ready times given). */
  readonly started: number;
  /** Batches that started before their worker's previous one ended (a batch rebuilt wrong; should be 0). */
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
}

/** completedAt is stamped to the millisecond: consecutive batches of one worker may seem to overlap by that much. */
const CLOCK_SLACK_SECONDS = 0.002;
/** `infer` is recorded to 0.01 ms: squared errors below that per batch are rounding, not signal. */
const INFER_RESOLUTION_SECONDS = 1e-5;

/**
 * Whether a window (two more parameters) explains `n` batches better than none, by the Bayesian
 * information criterion: n·ln(SSE_none / SSE_window) > 2·ln(n).
 */
export function windowExplainsBetter(n: number, noneError: number, windowError: number): boolean {
  if (noneError <= 0) return false;
  if (windowError <= 0) return true;
  return n * Math.log(noneError / windowError) > 2 * Math.log(n);
}

export function batchesOf(stored: readonly StoredResult[], originEpoch: number): Batch[] {
  const groups = new Map<string, StoredResult[]>();
  for (const r of stored) {
    const infer = r.timings.infer;
    if (infer === undefined || r.batch < 1) continue;
    const key = `${r.worker}|${r.batch}|${infer}`;
    const group = groups.get(key);
    if (group) group.push(r);
    else groups.set(key, [r]);
  }
  const out: Batch[] = [];
  for (const images of groups.values()) {
    // Batches of one worker can share a size and an inference time (single images often do): split by time.
    const sorted = [...images].sort((a, b) => a.completedAt - b.completedAt);
    const first = sorted[0]!;
    const inferSeconds = first.timings.infer! / 1000;
    for (let i = 0; i < sorted.length; i += first.batch) {
      const members = sorted.slice(i, i + first.batch);
      const end = members[0]!.completedAt - originEpoch;
      out.push({
        worker: first.worker,
        n: first.batch,
        inferSeconds,
        start: end - inferSeconds,
        end,
        ids: members.map((r) => r.id),
      });
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

/** Each worker's batches in order of start, the workers in order of their first batch. */
function byWorker(batches: readonly Batch[]): Batch[][] {
  const groups = new Map<string, Batch[]>();
  for (const b of [...batches].sort((x, y) => x.start - y.start)) {
    const group = groups.get(b.worker);
    if (group) group.push(b);
    else groups.set(b.worker, [b]);
  }
  return [...groups.values()];
}

/**
 * Ages every batch on the worker that ran it; `readyTimes` are the ready times of the workers in
 * service at the origin (−∞) and of every worker started, in any order (see the module comment).
 */
export function attributeBatches(batches: readonly Batch[], readyTimes: readonly number[]): Attribution {
  const workers = byWorker(batches);
  if (workers.length > readyTimes.length) {
    throw new ValidateError(
      'CALIBRATION',
      `${workers.length} worker processes classified images but only ${readyTimes.length} ready times are known (a start the status never saw settle, or a worker replaced after a crash)`,
      {
        workers: workers.map((w) => w[0]!.worker),
        readyTimes: [...readyTimes],
      },
    );
  }
  const ready = [...readyTimes].sort((a, b) => a - b);
  const out: AgedBatch[] = [];
  let overlapping = 0;
  workers.forEach((own, k) => {
    const workerReadyAt = ready[k]!;
    let previousEnd = Number.NEGATIVE_INFINITY;
    for (const b of own) {
      if (b.start < previousEnd - CLOCK_SLACK_SECONDS) overlapping++;
      // The recorded ready time can lag the worker's first receive by a status poll: age 0 then.
      out.push({ ...b, ageSeconds: Math.max(0, b.start - workerReadyAt), workerReadyAt, previousEnd });
      previousEnd = b.end;
    }
  });
  return {
    batches: out.sort((a, b) => a.start - b.start),
    workers: workers.length,
    started: readyTimes.length,
    overlapping,
  };
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
    if (slope > 0 && intercept >= 0)
      return { overheadSeconds: intercept, perImageSeconds: slope, kind: 'least-squares' };
  }
  const perImage = batches.reduce((s, b) => s + b.inferSeconds, 0) / batches.reduce((s, b) => s + b.n, 0);
  return { overheadSeconds: 0, perImageSeconds: perImage, kind: 'ratio' };
}

const warmSeconds = (fit: ServiceFit, n: number): number => fit.overheadSeconds + fit.perImageSeconds * n;

function squaredError(batches: readonly AgedBatch[], warm: ServiceFit, seconds: number, factor: number): number {
  const env = { coldStartSeconds: seconds, coldStartFactor: factor };
  return batches.reduce(
    (s, b) => s + (b.inferSeconds - coldServiceSeconds(warmSeconds(warm, b.n), b.ageSeconds, env)) ** 2,
    0,
  );
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

/** Needs at least one batch. */
export function fitColdStart(batches: readonly AgedBatch[]): ColdStartFit {
  const candidates = [...new Set(batches.map((b) => b.ageSeconds + b.inferSeconds))]
    .filter((w) => Number.isFinite(w) && w > 0)
    .sort((a, b) => a - b);
  const allWarm = fitService(batches);
  const none = { seconds: 0, factor: 1, warm: allWarm, error: squaredError(batches, allWarm, 0, 1) };
  let window: typeof none | undefined;
  for (const seconds of candidates) {
    const warmBatches = batches.filter((b) => b.ageSeconds >= seconds);
    if (warmBatches.length < batches.length / 2) break;
    const warm = fitService(warmBatches);
    const cold = batches.filter((b) => b.ageSeconds < seconds);
    const factor = bestFactor(cold, warm, seconds);
    const error = squaredError(batches, warm, seconds, factor);
    if (error < (window?.error ?? Number.POSITIVE_INFINITY)) window = { seconds, factor, warm, error };
  }
  const floor = batches.length * INFER_RESOLUTION_SECONDS ** 2;
  const explained =
    window !== undefined &&
    none.error > floor &&
    windowExplainsBetter(batches.length, none.error, Math.max(window.error, floor));
  const best = explained ? window! : none;
  return {
    seconds: best.seconds,
    factor: best.factor,
    warm: best.warm,
    coldBatches: batches.filter((b) => b.ageSeconds < best.seconds).length,
  };
}
