/**
 * Load held: when the backlog is so deep that a new image cannot be answered within
 * REQUEST_TIMEOUT_MS, it is refused at once (503 OVERLOADED with Retry-After) instead of being
 * accepted, stored and queued only to time out.
 *
 * The estimate: wait ≈ backlog ÷ capacity, where the backlog is the request queue's depth
 * (visible + in flight, as the scaling controller last read it) and the capacity is the workers
 * that can take it — those running, or, while the controller is still starting them, the number it
 * wants — times one worker's measured rate. That rate comes from the answers themselves: each
 * carries the worker's decode time and its batch's inference time and size, so a worker handles
 * 1000 ÷ (decode + infer ÷ batch) images a second; the estimate follows an exponential average.
 * Before any answer there is no measurement and nothing is refused. Retry-After is when enough of
 * the backlog will have drained for a new image to be answered in time.
 */
import { PipelineError } from './errors.js';
import type { ClassificationResult } from './messages.js';

export interface AdmissionInputs {
  /** Request queue depth, as last read. */
  depth(): { visible: number; inFlight: number } | undefined;
  /** Workers running, and wanted. */
  workers(): { desired: number; running: number };
}

export class Admission {
  /** Images a second one worker handles (exponential average of the answers); undefined until one arrives. */
  private perWorkerRate: number | undefined;

  constructor(
    private readonly inputs: AdmissionInputs,
    private readonly timeoutMs: number,
  ) {}

  /** Learns one worker's rate from an answer's timings. */
  observe(result: ClassificationResult): void {
    const { decode, infer } = result.timings;
    if (typeof decode !== 'number' || typeof infer !== 'number' || result.cachedFrom !== undefined) return;
    const msPerImage = decode + infer / Math.max(1, result.batch);
    if (!(msPerImage > 0)) return;
    const rate = 1000 / msPerImage;
    this.perWorkerRate = this.perWorkerRate === undefined ? rate : 0.9 * this.perWorkerRate + 0.1 * rate;
  }

  /** How long a new image would wait, in ms (undefined: no measurement yet). */
  expectedWaitMs(): number | undefined {
    const depth = this.inputs.depth();
    if (this.perWorkerRate === undefined || depth === undefined) return undefined;
    const { desired, running } = this.inputs.workers();
    const workers = Math.max(running, desired, 1);
    return ((depth.visible + depth.inFlight + 1) / (workers * this.perWorkerRate)) * 1000;
  }

  /** Throws OVERLOADED (with `retryAfterSeconds`) when a new image could not be answered in time. */
  check(requestId: string): void {
    const waitMs = this.expectedWaitMs();
    if (waitMs === undefined || waitMs <= this.timeoutMs) return;
    const retryAfterSeconds = Math.max(1, Math.ceil((waitMs - this.timeoutMs) / 1000));
    throw new PipelineError(
      'OVERLOADED',
      `the service is overloaded: an image sent now would wait about ${Math.round(waitMs / 1000)} s, longer than the ${Math.round(this.timeoutMs / 1000)} s it may take; try again in ${retryAfterSeconds} s`,
      { stage: 'ingest', retryable: true, requestId, expectedWaitMs: Math.round(waitMs), retryAfterSeconds },
    );
  }
}
