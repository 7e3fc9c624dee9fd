/**
 * The simulator's environment, measured in the same run it is compared against.
 *
 *  - Worker start (`bootSeconds`): for every scale-out decision from a to b, the time from the
 *    decision until the polled status shows a+1, ..., b workers running (before the next decision),
 *    i.e. one start time per new worker; mean over all of them. Without status samples for a
 *    scale-out, its decision → `pool.resize` settled time (all of its workers ready) stands in.
 *  - Service time: a worker's serial bottleneck is the inference loop (one batch at a time); fetch,
 *    decode, persist and respond run concurrently around it. So one worker = one slot whose batch
 *    of n images takes `batchOverheadSeconds + perImageSeconds × n`, fitted by least squares on the
 *    inference batches of the run (`timings.infer` of the batch, `batch` = its size, both from the
 *    stored results). Under CPU contention the measured inference time already includes the time
 *    lost to decoding and to the other processes. When the fit is undetermined or unphysical (one
 *    batch size only; a negative overhead or slope, as noise easily gives) the overhead is 0 and
 *    the per-image time is the ratio estimate Σ infer / Σ n: total slot busy time per image.
 *  - Batch size: the workers' MAX_BATCH (at most 10, the simulator's receive limit).
 *  - Time outside the queue and the slot (`overhead.ts`): per answered request, `ingestSeconds` =
 *    client send → message in the queue (the wait before the web tier reads the upload, upload,
 *    S3 put, enqueue) and `deliverSeconds` = inference done → answer at the client (the part of the
 *    web tier's `total` that is neither ingest nor queue wait nor inference); medians go to the
 *    simulator, p95s are reported to read the p95 errors against.
 */
import type { SimEnvironment } from '../../../scaling/simulator.js';
import { percentile } from '../../../scaling/simulator.js';
import { ValidateError } from './errors.js';
import type { Measurement } from './measure.js';
import { estimateOverhead, type Spread } from './overhead.js';

export interface Calibration {
  readonly bootSeconds: number;
  readonly perImageSeconds: number;
  readonly batchOverheadSeconds: number;
  readonly batchSize: number;
  /** Client send → message in the queue, seconds; the median is the simulator's `ingestSeconds`. */
  readonly ingestSeconds: Spread;
  /** Of ingest: median wait before the web tier reads the upload (client-side remainder), seconds. */
  readonly beforeServerSeconds: number;
  /** Inference done → answer at the client, seconds; the median is the simulator's `deliverSeconds`. */
  readonly deliverSeconds: Spread;
  /** Of deliver: median of s3Get + decode + persist, seconds. */
  readonly workerPathSeconds: number;
  readonly basis: {
    readonly scaleOuts: number;
    /** One per started worker. */
    readonly bootsSeconds: readonly number[];
    readonly batches: number;
    readonly batchSizes: { readonly min: number; readonly mean: number; readonly max: number };
    readonly fit: 'least-squares' | 'ratio';
    /** Answered requests the overhead medians are taken over. */
    readonly overheadRequests: number;
  };
}

interface Batch {
  readonly n: number;
  readonly inferMs: number;
}

/** Images of one batch share its size and its (0.01 ms) inference time. */
function batchesOf(m: Measurement): Batch[] {
  const seen = new Map<string, Batch>();
  for (const r of m.stored) {
    const infer = r.timings['infer'];
    if (infer === undefined || r.batch < 1) continue;
    seen.set(`${r.batch}|${infer}`, { n: r.batch, inferMs: infer });
  }
  return [...seen.values()];
}

function fit(batches: readonly Batch[]): { overheadMs: number; perImageMs: number; kind: Calibration['basis']['fit'] } {
  const k = batches.length;
  const meanN = batches.reduce((s, b) => s + b.n, 0) / k;
  const meanT = batches.reduce((s, b) => s + b.inferMs, 0) / k;
  const sxx = batches.reduce((s, b) => s + (b.n - meanN) ** 2, 0);
  const sxy = batches.reduce((s, b) => s + (b.n - meanN) * (b.inferMs - meanT), 0);
  if (sxx > 0) {
    const slope = sxy / sxx;
    const intercept = meanT - slope * meanN;
    if (slope > 0 && intercept >= 0) return { overheadMs: intercept, perImageMs: slope, kind: 'least-squares' };
  }
  const perImage = batches.reduce((s, b) => s + b.inferMs, 0) / batches.reduce((s, b) => s + b.n, 0);
  return { overheadMs: 0, perImageMs: perImage, kind: 'ratio' };
}

const WORKER_STAGES = ['s3Get', 'decode', 'persist'] as const;

/** Sorted per-request sums of `stages`, seconds. */
function stageSums(m: Measurement, stages: readonly string[]): number[] {
  const persisted = new Map(m.stored.map((r) => [r.id, r.timings['persist']]));
  return m.requests
    .flatMap((r) => {
      if (r.id === undefined || r.done === undefined) return [];
      const timings: Record<string, number | undefined> = { ...r.timings, persist: r.timings['persist'] ?? persisted.get(r.id) };
      return [stages.reduce((sum, stage) => sum + (timings[stage] ?? 0), 0) / 1000];
    })
    .sort((a, b) => a - b);
}

/** Start time of each worker a scale-out added (see the module comment), seconds. */
function workerStarts(m: Measurement): number[] {
  const out: number[] = [];
  m.decisions.forEach((d, i) => {
    if (d.to <= d.from) return;
    const at = d.t - m.originEpoch;
    const next = m.decisions[i + 1];
    const until = next === undefined ? Number.POSITIVE_INFINITY : next.t - m.originEpoch;
    const samples = m.timeline.filter((s) => s.t >= at && s.t < until);
    const starts: number[] = [];
    for (let k = d.from + 1; k <= d.to; k++) {
      const first = samples.find((s) => s.running >= k);
      if (first) starts.push(first.t - at);
    }
    if (starts.length === d.to - d.from) out.push(...starts);
    else if (d.resize.state === 'done' && d.resize.ms !== undefined) out.push(d.resize.ms / 1000);
  });
  return out;
}

export function calibrate(m: Measurement): Calibration {
  const boots = workerStarts(m);
  if (boots.length === 0) {
    throw new ValidateError('CALIBRATION', `trace ${m.name}: no completed scale-out, so no measured worker start time`, {
      trace: m.name,
      decisions: m.decisions.length,
    });
  }
  const batches = batchesOf(m);
  if (batches.length === 0) throw new ValidateError('CALIBRATION', `trace ${m.name}: no inference batch in the stored results`, { trace: m.name });
  const f = fit(batches);
  const overhead = estimateOverhead(m.name, m.requests);
  const sizes = batches.map((b) => b.n);
  return {
    bootSeconds: boots.reduce((a, b) => a + b, 0) / boots.length,
    perImageSeconds: f.perImageMs / 1000,
    batchOverheadSeconds: f.overheadMs / 1000,
    batchSize: Math.min(10, Math.max(1, m.config.worker.maxBatch)),
    ingestSeconds: overhead.ingestSeconds,
    beforeServerSeconds: overhead.beforeServerSeconds,
    deliverSeconds: overhead.deliverSeconds,
    workerPathSeconds: percentile(stageSums(m, WORKER_STAGES), 50),
    basis: {
      scaleOuts: m.decisions.filter((d) => d.to > d.from).length,
      bootsSeconds: boots,
      batches: batches.length,
      batchSizes: { min: Math.min(...sizes), mean: sizes.reduce((a, b) => a + b, 0) / sizes.length, max: Math.max(...sizes) },
      fit: f.kind,
      overheadRequests: overhead.requests,
    },
  };
}

/** The local preset with the measured values in place of the policy's own estimates. */
export function environmentFrom(preset: SimEnvironment, c: Calibration, visibilityTimeoutSeconds: number): SimEnvironment {
  return {
    ...preset,
    bootSeconds: c.bootSeconds,
    perImageSeconds: c.perImageSeconds,
    batchOverheadSeconds: c.batchOverheadSeconds,
    batchSize: c.batchSize,
    concurrency: 1,
    visibilityTimeoutSeconds,
    // Time outside the queue and the inference slot, measured per request in the same run.
    ingestSeconds: c.ingestSeconds.p50,
    deliverSeconds: c.deliverSeconds.p50,
  };
}
