/**
 * One scaling authority at a time, between the controller and the CloudWatch policies that back it
 * up (docs/scaling.md › One scaling authority). Pure bookkeeping on a clock in seconds; the AWS side
 * is `scaling/aws/heartbeat.ts`, and the simulator keeps the same ledger for its controller.
 *
 *  - The controller copy that leads says so with a heartbeat metric, at most every `beatSeconds`,
 *    after each period it read the queue and the group. The CloudWatch policies' metric math reads
 *    every period that holds a heartbeat as "nothing to do" (`scaling/aws/aws-requests.ts`), and
 *    each of their alarms needs all of its datapoints breaching (DatapointsToAlarm =
 *    EvaluationPeriods): they act only once no heartbeat has come for their whole window.
 *  - The other way round, the controller acts only while no policy can act any more: its last
 *    heartbeat is at most `maxGapSeconds` old (less than a period, so no period goes without one)
 *    and each of the last `clearPeriods` complete periods holds a heartbeat — its own, sent without a
 *    gap, or read back from CloudWatch (another copy's, before this one took over). An alarm's newest
 *    datapoint is the period that ended one period ago at the latest (the metrics' lag), so every
 *    window it evaluates from then on holds a heartbeat, and an alarm left in ALARM — whose Auto
 *    Scaling action repeats every period — goes back to OK at its next evaluation.
 *
 * Between the two, a controller that cannot say it is alive (CloudWatch unreachable, the queue or the
 * group unreadable) stops acting before the policies can start.
 */

export interface HandoverTiming {
  /** The CloudWatch policies' metric period, seconds (60). */
  readonly periodSeconds: number;
  /** A heartbeat at most this often, seconds. */
  readonly beatSeconds: number;
  /** A gap between two heartbeats longer than this breaks the run (< periodSeconds: none is missed). */
  readonly maxGapSeconds: number;
  /** Complete periods, each with a heartbeat, before the controller may act: the metrics' lag + 2. */
  readonly clearPeriods: number;
}

/** One-minute periods, one metric period of lag (SQS pushes its metrics once a minute), a margin of one. */
export const HANDOVER: HandoverTiming = Object.freeze({
  periodSeconds: 60,
  beatSeconds: 20,
  maxGapSeconds: 50,
  clearPeriods: 3,
});

export function validateHandoverTiming(t: HandoverTiming): HandoverTiming {
  const ok =
    Number.isFinite(t.periodSeconds) &&
    t.beatSeconds > 0 &&
    t.beatSeconds < t.maxGapSeconds &&
    t.maxGapSeconds < t.periodSeconds &&
    Number.isInteger(t.clearPeriods) &&
    t.clearPeriods >= 1;
  if (!ok) {
    throw new RangeError(
      `handover timing must have 0 < beatSeconds < maxGapSeconds < periodSeconds and an integer clearPeriods >= 1 (got ${JSON.stringify(t)})`,
    );
  }
  return t;
}

/** Half-open span of periods, seconds on the ledger's clock. */
export interface PeriodSpan {
  readonly start: number;
  readonly end: number;
}

export class HeartbeatLedger {
  private last: number | null = null;
  /** When the current unbroken run of heartbeats began. */
  private since: number | null = null;
  /** A read showed a heartbeat in every period of the window before the current run. */
  private verified = false;

  constructor(readonly timing: HandoverTiming = HANDOVER) {
    validateHandoverTiming(timing);
  }

  /**
   * A ledger whose heartbeats have run without a gap since `since`, the last at `last` (the
   * simulator's controller, running long before its trace starts).
   */
  static running(since: number, last: number, timing: HandoverTiming = HANDOVER): HeartbeatLedger {
    const ledger = new HeartbeatLedger(timing);
    ledger.since = since;
    ledger.last = last;
    return ledger;
  }

  /** Whether a heartbeat is due at `now`. */
  due(now: number): boolean {
    return this.last === null || now - this.last >= this.timing.beatSeconds;
  }

  /** A heartbeat was recorded (its PutMetricData succeeded) at `now`. */
  beaten(now: number): void {
    if (this.last === null || now - this.last > this.timing.maxGapSeconds) {
      this.since = now;
      this.verified = false;
    }
    this.last = now;
  }

  /** The last heartbeat is recent enough that no period can go without one. */
  fresh(now: number): boolean {
    return this.last !== null && now - this.last <= this.timing.maxGapSeconds;
  }

  /** The complete periods that must each hold a heartbeat: the last `clearPeriods` before `now`'s. */
  window(now: number): PeriodSpan {
    const P = this.timing.periodSeconds;
    const end = Math.floor(now / P) * P;
    return { start: end - this.timing.clearPeriods * P, end };
  }

  /** Heartbeats read back for `window(now)`, one count per period in order: all non-zero clears it. */
  verify(now: number, beatsPerPeriod: readonly number[]): void {
    const all = beatsPerPeriod.length >= this.timing.clearPeriods && beatsPerPeriod.every((n) => n > 0);
    if (all && this.fresh(now)) this.verified = true;
  }

  /** Whether this copy's own run of heartbeats covers the whole window. */
  private covered(now: number): boolean {
    if (this.since === null) return false;
    const P = this.timing.periodSeconds;
    return Math.floor(this.since / P) * P <= this.window(now).start;
  }

  /** Whether the controller may act at `now`: no CloudWatch policy can act any more. */
  clear(now: number): boolean {
    return this.fresh(now) && (this.verified || this.covered(now));
  }

  /** What a status or a log says about it. */
  state(now: number): { readonly lastBeat: number | null; readonly since: number | null; readonly clear: boolean } {
    return { lastBeat: this.last, since: this.since, clear: this.clear(now) };
  }
}
