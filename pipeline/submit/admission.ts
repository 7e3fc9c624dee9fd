/**
 * Load held: when the backlog is so deep that a new image cannot be answered within
 * REQUEST_TIMEOUT_MS, it is refused at once (503 OVERLOADED with Retry-After) instead of being
 * accepted, stored and queued only to time out.
 *
 * The estimate: wait ≈ backlog ÷ throughput, the backlog being the request queue's depth (visible
 * + in flight, as last read), or this process's own images still waiting for their answer when
 * those are more (a burst arrives faster than the depth is read). The throughput is measured: the answers this process received over
 * the last 10 s while images were waiting (the fleet busy), per second — the fleet's throughput
 * when one web process feeds it (`npm start`, a web tier of one instance; with several, each sees
 * its share and refuses early by that factor).
 * Until 10 answers are in that window (a burst's first second), it is estimated from the answers'
 * own timings: each carries its worker's decode time and its batch's inference time and size, so a
 * worker handles 1000 ÷ (decode + infer ÷ batch) images a second of model time; 0.3 of that per
 * worker (about the share of the decode + inference ideal a burst on one machine reaches in
 * `npm run bench`, docs/benchmarks.md › Against the targets: the rest goes to storage, queues and
 * the web tier sharing the cores), times the workers running or wanted. To the wait in the queue
 * it adds the time an answered image spends outside it (upload, storing, enqueueing, its own work,
 * the answer's way back: total − queueWait, averaged), and it admits an image only if that fits in
 * 80% of the timeout — the rest is for the estimate's error. Before any answer nothing is refused.
 * Retry-After is when enough of the backlog will have drained for a new image to be answered in
 * time.
 */
import { PipelineError } from '../contract/errors.js';
import type { ClassificationResult } from '../contract/messages.js';

export interface AdmissionInputs {
  /** Request queue depth, as last read. */
  depth(): { visible: number; inFlight: number } | undefined;
  /** Workers running, and wanted. */
  workers(): { desired: number; running: number };
}

/** The window over which answers are counted. */
const WINDOW_MS = 10_000;
/** Answers in the window before their count is trusted over the model-time estimate. */
const ENOUGH = 10;
/** The share of a worker's model-time rate it reaches with its storage and queue calls. */
const EFFICIENCY = 0.3;
/** The share of the timeout an estimate may fill: the rest absorbs its error (a busy moment, a slow batch). */
const HEADROOM = 0.8;

export class Admission {
  /** Images a second one worker's model time allows (exponential average); undefined until an answer arrives. */
  private perWorkerRate: number | undefined;
  /** When answers arrived (ms), oldest first, within the window. */
  private readonly answeredAt: number[] = [];
  /** An answered image's time outside the queue — upload, storing, enqueueing, work, the answer's way back (ms, exponential average). */
  private outsideQueueMs = 0;

  constructor(
    private readonly inputs: AdmissionInputs,
    private readonly timeoutMs: number,
  ) {}

  /** Learns one worker's rate from an answer's timings, and the time an image spends outside the queue from its `totalMs`. */
  observe(result: ClassificationResult, totalMs: number): void {
    const now = Date.now();
    const { queueWait } = result.timings;
    if (typeof queueWait === 'number' && totalMs >= queueWait) {
      const outside = totalMs - queueWait;
      this.outsideQueueMs = this.outsideQueueMs === 0 ? outside : 0.9 * this.outsideQueueMs + 0.1 * outside;
    }
    // Only answers given while images were waiting measure what the fleet can do (a trickle of
    // requests measures the trickle).
    if ((this.inputs.depth()?.visible ?? 0) > 0) this.answeredAt.push(now);
    this.forget(now);
    const { decode, infer } = result.timings;
    if (typeof decode !== 'number' || typeof infer !== 'number' || result.cachedFrom !== undefined) return;
    const msPerImage = decode + infer / Math.max(1, result.batch);
    if (!(msPerImage > 0)) return;
    const rate = 1000 / msPerImage;
    this.perWorkerRate = this.perWorkerRate === undefined ? rate : 0.9 * this.perWorkerRate + 0.1 * rate;
  }

  /** Images a second the fleet answers now (undefined: nothing to go by yet). */
  throughput(): number | undefined {
    const now = Date.now();
    this.forget(now);
    if (this.answeredAt.length >= ENOUGH)
      return this.answeredAt.length / (Math.max(1_000, now - this.answeredAt[0]!) / 1000);
    if (this.perWorkerRate === undefined) return undefined;
    const { desired, running } = this.inputs.workers();
    return Math.max(running, desired, 1) * this.perWorkerRate * EFFICIENCY;
  }

  /** How long a new image would take to be answered, in ms: its wait in the queue and its time outside it (undefined: no measurement yet). */
  expectedWaitMs(waitingHere = 0): number | undefined {
    const depth = this.inputs.depth();
    const rate = this.throughput();
    if (rate === undefined || depth === undefined) return undefined;
    // The depth was read a moment ago; what this process accepted since is not in it yet.
    const backlog = Math.max(depth.visible + depth.inFlight, waitingHere);
    return ((backlog + 1) / rate) * 1000 + this.outsideQueueMs;
  }

  private forget(now: number): void {
    while (this.answeredAt.length > 0 && now - this.answeredAt[0]! > WINDOW_MS) this.answeredAt.shift();
  }

  /**
   * Throws OVERLOADED (with `retryAfterSeconds`) when a new image could not be answered in time.
   * `waitingHere`: this process's images accepted and not yet answered, counted the moment they
   * are accepted — in a burst, hundreds arrive between two readings of the queue's depth.
   */
  check(requestId: string, waitingHere = 0): void {
    const waitMs = this.expectedWaitMs(waitingHere);
    const allowedMs = this.timeoutMs * HEADROOM;
    if (waitMs === undefined || waitMs <= allowedMs) return;
    const retryAfterSeconds = Math.max(1, Math.ceil((waitMs - allowedMs) / 1000));
    throw new PipelineError(
      'OVERLOADED',
      `the service is overloaded: an image sent now would be answered in about ${Math.ceil(waitMs / 1000)} s; it takes only what it can answer within ${Math.floor(allowedMs / 1000)} s (${HEADROOM * 100}% of the ${Math.round(this.timeoutMs / 1000)} s an answer may take); try again in ${retryAfterSeconds} s`,
      { stage: 'ingest', retryable: true, requestId, expectedWaitMs: Math.round(waitMs), retryAfterSeconds },
    );
  }
}
