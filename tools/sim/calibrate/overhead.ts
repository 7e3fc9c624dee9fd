/**
 * Per-request time outside the simulated queue and inference slot, split at the queue: the
 * simulator's `ingestSeconds` (arrival → visible in the queue) and `deliverSeconds` (inference
 * done → the client has its answer). From one answered request's own numbers:
 *
 *  - `sent`, `done`: the client's clock (s); `done − sent` is the latency the comparison uses;
 *  - `total`: the web tier's clock from the first byte of the upload to the answer being ready (ms);
 *  - `upload`, `s3Put`, `enqueue`: the web tier's stages before the message is in the queue (ms);
 *  - `queueWait`: from the start of the enqueue stage (the message's `enqueuedAt`) until a worker
 *    received it (ms) — it contains `enqueue`;
 *  - `infer`: the inference batch that held the image (ms), the simulated slot.
 *
 *   ingest  = (done − sent − total) + upload + s3Put + enqueue
 *   deliver = total − upload − s3Put − queueWait − infer
 *
 * `done − sent − total` is the client-side remainder: mostly the wait before the server reads the
 * first byte (connection accept, other uploads being parsed), plus the HTTP response's trip back,
 * which is a few ms (docs/scaling.md has the remainder at light load); it is counted as ingest because the
 * status timeline shows the queue filling that late. `deliver` is the worker's handling around the
 * slot (S3 get, decode, the batch's gathering wait, persist), the answer's trip through the response
 * queue and the web tier, and, under a backlog, the time a prefetched message waits in the worker
 * for the inference slot — which the simulator's queue already counts.
 *
 * So the per-request sample the simulator draws from holds only the requests that ran without
 * waiting in a backlog: when the message entered the queue (sent + ingest, the replay's clock), the
 * worker that classified it was already in service and had finished its previous batch. Then nothing
 * was ahead of it in the queue or in that worker, and its deliver holds no wait for the slot. (Its
 * batch times are the worker's clock, `completedAt`; both clocks are the same machine's.)
 */
import { percentile, percentiles } from '../../../lib/stats.js';
import type { RequestOverhead } from '../simulator.js';
import type { AgedBatch } from './cold-start.js';
import { ValidateError } from './errors.js';
import type { RequestOutcome } from './replay.js';

export interface RequestSplit {
  /** Client send → message in the queue, seconds. */
  readonly ingest: number;
  /** Inference done → answer at the client, seconds. */
  readonly deliver: number;
  /** Client-side remainder (before the server's first byte, and the response's way back), seconds. */
  readonly beforeServer: number;
}

export interface Spread {
  readonly p50: number;
  readonly p95: number;
}

export interface OverheadSpread {
  readonly ingestSeconds: Spread;
  readonly deliverSeconds: Spread;
  readonly requests: number;
}

export interface OverheadEstimate {
  /** Over every directly answered request with the stage timings. */
  readonly answered: OverheadSpread;
  /** Median client-side remainder (part of ingest) over the same requests, seconds. */
  readonly beforeServerSeconds: number;
  /** (ingest, deliver) of each request that ran without waiting in a backlog, in arrival order. */
  readonly calm: readonly RequestOverhead[];
  /** The ingest of every directly answered request, in the order they were sent, seconds. */
  readonly ingest: readonly number[];
}

const NEEDED = ['total', 'upload', 's3Put', 'enqueue', 'queueWait', 'infer'] as const;
type Needed = Record<(typeof NEEDED)[number], number>;

function neededTimings(timings: Readonly<Record<string, number>>): Needed | undefined {
  const out: Partial<Needed> = {};
  for (const key of NEEDED) {
    const v = timings[key];
    if (v === undefined || !Number.isFinite(v)) return undefined;
    out[key] = v / 1000;
  }
  return out as Needed;
}

/** The split of one request, or undefined when it was not answered directly or lacks a timing. */
export function splitRequest(r: RequestOutcome): RequestSplit | undefined {
  if (r.done === undefined || r.polled) return undefined;
  const t = neededTimings(r.timings);
  if (t === undefined) return undefined;
  const beforeServer = r.done - r.sent - t.total;
  return {
    ingest: beforeServer + t.upload + t.s3Put + t.enqueue,
    deliver: t.total - t.upload - t.s3Put - t.queueWait - t.infer,
    beforeServer,
  };
}

/** p50 and p95 (nearest rank) of a non-empty sample. */
function spread(xs: readonly number[]): Spread {
  const [p50, p95] = percentiles(xs, [50, 95]) as [number, number];
  // Clock granularity can make a tiny part slightly negative; a duration is never below 0.
  return { p50: Math.max(0, p50), p95: Math.max(0, p95) };
}

/** p50 and p95 of each part of the overhead of at least one request. */
export function overheadSpread(pairs: readonly RequestOverhead[]): OverheadSpread {
  return {
    ingestSeconds: spread(pairs.map((p) => p.ingestSeconds)),
    deliverSeconds: spread(pairs.map((p) => p.deliverSeconds)),
    requests: pairs.length,
  };
}

/** Whether a request whose message entered the queue at `queuedAt` ran without waiting in a backlog (module comment). */
export function ranWithoutWaiting(queuedAt: number, batch: Pick<AgedBatch, 'workerReadyAt' | 'previousEnd'>): boolean {
  return batch.workerReadyAt <= queuedAt && batch.previousEnd <= queuedAt;
}

/** Ranks 1..n, ties sharing their mean rank. */
function ranks(xs: readonly number[]): number[] {
  const order = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(xs.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    for (let k = i; k <= j; k++) out[order[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return out;
}

/**
 * Spearman's rank correlation of ingest and deliver over the pairs: whether one request's two parts
 * move together, and so must be drawn together. Undefined for fewer than 3 pairs or a constant part.
 */
export function rankCorrelation(pairs: readonly RequestOverhead[]): number | undefined {
  if (pairs.length < 3) return undefined;
  const a = ranks(pairs.map((p) => p.ingestSeconds));
  const b = ranks(pairs.map((p) => p.deliverSeconds));
  const mean = (pairs.length + 1) / 2;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  a.forEach((x, i) => {
    const y = b[i]!;
    sab += (x - mean) * (y - mean);
    saa += (x - mean) ** 2;
    sbb += (y - mean) ** 2;
  });
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : undefined;
}

/**
 * The overhead of the answered requests of one run; `batchOf` maps a request id to the batch that
 * held it (a request without one is not in the calm sample: it cannot be shown to have run unhindered).
 */
export function estimateOverhead(
  trace: string,
  requests: readonly RequestOutcome[],
  batchOf: ReadonlyMap<string, AgedBatch>,
): OverheadEstimate {
  const splits = requests.flatMap((r) => {
    const split = splitRequest(r);
    return split === undefined ? [] : [{ request: r, split }];
  });
  if (splits.length === 0) {
    throw new ValidateError(
      'CALIBRATION',
      `trace ${trace}: no directly answered request carries the stage timings (${NEEDED.join(', ')})`,
      {
        trace,
        requests: requests.length,
      },
    );
  }
  // Clock granularity can make a tiny part slightly negative; a duration is never below 0.
  const pair = (s: RequestSplit): RequestOverhead => ({
    ingestSeconds: Math.max(0, s.ingest),
    deliverSeconds: Math.max(0, s.deliver),
  });
  const calm = [...splits]
    .sort((x, y) => x.request.sent - y.request.sent)
    .filter(({ request, split }) => {
      const batch = request.id === undefined ? undefined : batchOf.get(request.id);
      return batch !== undefined && ranWithoutWaiting(request.sent + split.ingest, batch);
    })
    .map(({ split }) => pair(split));
  return {
    answered: overheadSpread(splits.map(({ split }) => pair(split))),
    beforeServerSeconds: Math.max(
      0,
      percentile(
        splits.map(({ split }) => split.beforeServer),
        50,
      ),
    ),
    calm,
    ingest: [...splits].sort((x, y) => x.request.sent - y.request.sent).map(({ split }) => Math.max(0, split.ingest)),
  };
}
