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
 * which is a few ms (the whole remainder is ~3 ms at light load); it is counted as ingest because the
 * status timeline shows the queue filling that late. `deliver` is the worker's handling around the
 * slot (S3 get, decode, persist), the answer's trip through the response queue and the web tier,
 * and, under a backlog, the time a prefetched message waits in the worker for the inference slot.
 */
import { percentile } from '../../../scaling/simulator.js';
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

export interface OverheadEstimate {
  readonly ingestSeconds: Spread;
  readonly deliverSeconds: Spread;
  /** Median client-side remainder (part of ingest), seconds. */
  readonly beforeServerSeconds: number;
  /** Requests with every timing needed. */
  readonly requests: number;
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

const sorted = (xs: readonly number[]): number[] => [...xs].sort((a, b) => a - b);

function spread(xs: readonly number[]): Spread {
  const s = sorted(xs);
  // Clock granularity can make a tiny part slightly negative; a duration is never below 0.
  return { p50: Math.max(0, percentile(s, 50)), p95: Math.max(0, percentile(s, 95)) };
}

/** Medians (and p95) over the answered requests of one run. */
export function estimateOverhead(trace: string, requests: readonly RequestOutcome[]): OverheadEstimate {
  const splits = requests.flatMap((r) => splitRequest(r) ?? []);
  if (splits.length === 0) {
    throw new ValidateError('CALIBRATION', `trace ${trace}: no directly answered request carries the stage timings (${NEEDED.join(', ')})`, {
      trace,
      requests: requests.length,
    });
  }
  return {
    ingestSeconds: spread(splits.map((s) => s.ingest)),
    deliverSeconds: spread(splits.map((s) => s.deliver)),
    beforeServerSeconds: Math.max(0, percentile(sorted(splits.map((s) => s.beforeServer)), 50)),
    requests: splits.length,
  };
}
