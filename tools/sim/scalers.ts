/**
 * What moves the simulated group's desired capacity: one or more scalers, each closing its own
 * metric periods. The simulator (`simulator.ts`) calls `tick` at every end of a scaler's period with
 * that period's datapoint and a view of the group; a scaler sets the capacity through the view.
 *
 *  - `DecideScaler`: the pure `decide` (scaling/core/decide.ts) on its own datapoints, seen
 *    `lagPeriods` late — the controller (lag 0), the local autoscaler, or the `alarms` mode's
 *    approximation of CloudWatch (lag 1). As the controller of the stack it also keeps the handover
 *    ledger (scaling/core/handover.ts): it sends heartbeats into the simulated CloudWatch and acts
 *    only once the ledger is clear, as `scaling/aws/heartbeat.ts` does; and it may die.
 *  - `CloudWatchScaler` (`cloudwatch.ts`): the group's CloudWatch alarms and scaling policies, run
 *    from the requests the stack deploys.
 */

import type { ScalingRequests } from '../../scaling/aws/aws-requests.js';
import {
  type Datapoint,
  type DecisionRule,
  decide,
  NO_SIGNALS,
  type Signals,
  trackSignals,
} from '../../scaling/core/decide.js';
import { HANDOVER, type HandoverTiming, HeartbeatLedger } from '../../scaling/core/handover.js';
import type { ScalingPolicy } from '../../scaling/core/policy.js';

/**
 * The group as the stack deploys it: the controller (`policy`, its own periods, no metric lag)
 * and the CloudWatch policies built from `fallback.requests`, handing over through the controller's
 * heartbeat (scaling/core/handover.ts).
 */
export interface AuthorityInput {
  /** `scalingRequests` for the stack's group, and the policy they were built from (period, bounds). */
  readonly fallback: { readonly requests: ScalingRequests; readonly policy: ScalingPolicy };
  /** Periods between a period's end and the alarms seeing its datapoint (SQS pushes once a minute: 1). */
  readonly lagPeriods: number;
  /** Whether a controller runs at all (false: SCALER=off, the CloudWatch policies alone). */
  readonly controller: boolean;
  /** When the controller dies: no tick and no heartbeat from then on (absent: never). */
  readonly controllerDiesAt?: number;
  /**
   * When the controller (re)starts, a fresh process with no heartbeat yet: it holds until its
   * heartbeats fill the window. Absent: it has run, and beaten, since long before the trace.
   */
  readonly controllerStartsAt?: number;
  /**
   * false: a controller that neither sends a heartbeat nor waits for one — as before one scaling
   * authority (a counter-example: with it, the policies' gate never closes). Default true.
   */
  readonly heartbeat?: boolean;
  readonly timing?: HandoverTiming;
}

/** Who set a capacity: the only scaler of a run, the controller, or the CloudWatch policies. */
export type ScalerName = 'scaler' | 'controller' | 'cloudwatch';

/** The group as a scaler sees it at a tick. */
export interface GroupView {
  /** Desired capacity: instances launched or started and not terminated. */
  readonly capacity: number;
  readonly inService: number;
  /** Sets the desired capacity (launches, starts or terminates the difference) and records why. */
  setCapacity(to: number, by: ScalerName, rule: DecisionRule, reason: string): void;
}

export interface Scaler {
  readonly name: ScalerName;
  readonly periodSeconds: number;
  /** Its periods end at phaseSeconds + k × periodSeconds (0 ≤ phase < period). */
  readonly phaseSeconds: number;
  /** Whether it still runs at `now` (a controller that died does not). */
  alive(now: number): boolean;
  /** The end of one of its periods: `dp` covers [now − periodSeconds, now). */
  tick(now: number, dp: Datapoint, group: GroupView): void;
}

/** Heartbeats per period of the simulated CloudWatch (one-minute periods by default). */
export class HeartbeatStore {
  private readonly counts = new Map<number, number>();

  constructor(readonly periodSeconds: number) {}

  beat(at: number): void {
    const k = Math.floor(at / this.periodSeconds);
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }

  /** Heartbeats in period k = [k·P, (k+1)·P). */
  count(k: number): number {
    return this.counts.get(k) ?? 0;
  }

  /** Heartbeats per period over [start, end), as GetMetricData gives them back. */
  between(start: number, end: number): number[] {
    const out: number[] = [];
    for (let t = start; t < end; t += this.periodSeconds) out.push(this.count(Math.floor(t / this.periodSeconds)));
    return out;
  }
}

/** The controller's side of the handover, as `scaling/aws/heartbeat.ts` runs it, on the simulated CloudWatch. */
export class SimulatedHeartbeat {
  private lastRead = Number.NEGATIVE_INFINITY;

  constructor(
    readonly ledger: HeartbeatLedger,
    private readonly store: HeartbeatStore,
  ) {}

  /** A controller that has run (and beaten) long before t = 0, its last heartbeat half an interval before it. */
  static running(store: HeartbeatStore, timing: HandoverTiming = HANDOVER): SimulatedHeartbeat {
    const last = -timing.beatSeconds / 2;
    return new SimulatedHeartbeat(HeartbeatLedger.running(last - 10 * timing.periodSeconds, last, timing), store);
  }

  /** A controller (re)started at some time: no heartbeat yet. */
  static starting(store: HeartbeatStore, timing: HandoverTiming = HANDOVER): SimulatedHeartbeat {
    return new SimulatedHeartbeat(new HeartbeatLedger(timing), store);
  }

  /** `ControllerHeartbeat.lead`: beat when due, clear from its own run or from a read of the store. */
  lead(now: number): boolean {
    const { ledger } = this;
    if (ledger.due(now)) {
      this.store.beat(now);
      ledger.beaten(now);
    }
    if (ledger.clear(now)) return true;
    if (ledger.fresh(now) && now - this.lastRead >= ledger.timing.beatSeconds) {
      this.lastRead = now;
      const span = ledger.window(now);
      ledger.verify(now, this.store.between(span.start, span.end));
    }
    return ledger.clear(now);
  }
}

export interface DecideScalerOptions {
  readonly name: ScalerName;
  readonly policy: ScalingPolicy;
  /** Periods between the end of a datapoint's period and the scaler seeing it. */
  readonly lagPeriods: number;
  /** The controller of the stack: its heartbeat and handover. */
  readonly heartbeat?: SimulatedHeartbeat;
  /** When it dies (no tick, no heartbeat from then on); undefined: never. */
  readonly diesAt?: number;
  /** When it starts (a fresh process: no datapoint, no signal before); undefined: it always ran. */
  readonly startsAt?: number;
  /** Where its periods end (SimEnvironment.tickPhaseSeconds); default 0. */
  readonly phaseSeconds?: number;
}

/** `decide` on the scaler's own datapoints, as the controller's tick does (scaling/core/controller.ts). */
export class DecideScaler implements Scaler {
  readonly name: ScalerName;
  readonly periodSeconds: number;
  /** Every datapoint closed so far, oldest first. */
  readonly datapoints: Datapoint[] = [];
  private signals: Signals = NO_SIGNALS;
  private folded = 0;
  private lastScaleOut: number | null = null;
  private lastScaleIn: number | null = null;
  private observed: number | null = null;
  /** Ticks it held (leading, but the CloudWatch policies could still act). */
  heldTicks = 0;

  readonly phaseSeconds: number;

  constructor(private readonly options: DecideScalerOptions) {
    this.name = options.name;
    this.periodSeconds = options.policy.periodSeconds;
    this.phaseSeconds = options.phaseSeconds ?? 0;
  }

  alive(now: number): boolean {
    return this.options.diesAt === undefined || now < this.options.diesAt;
  }

  tick(now: number, dp: Datapoint, group: GroupView): void {
    const { policy, lagPeriods, heartbeat, startsAt } = this.options;
    if (startsAt !== undefined && now < startsAt) return;
    this.datapoints.push(dp);
    // Fold the datapoints the scaler can see by now.
    while (this.folded < this.datapoints.length - lagPeriods) {
      const seen = this.datapoints[this.folded++];
      if (seen) this.signals = trackSignals(this.signals, seen, policy);
    }
    const seen = this.datapoints[this.folded - 1];
    const capacity = group.capacity;
    // The group grew, and not by this scaler: its new instances are as young as its own scale-outs.
    if (this.observed !== null && capacity > this.observed) this.lastScaleOut = now;
    this.observed = capacity;
    if (!seen || this.folded !== this.datapoints.length - lagPeriods) return;
    const d = decide(policy, {
      now,
      visible: seen.visible,
      inFlight: seen.inFlight,
      running: seen.running,
      desired: capacity,
      lastScaleOut: this.lastScaleOut,
      lastScaleIn: this.lastScaleIn,
      idleSince: this.signals.idleSince,
      backlogSince: this.signals.backlogSince,
    });
    if (heartbeat && !heartbeat.lead(now)) {
      this.heldTicks++;
      return;
    }
    if (d.desired === capacity) return;
    if (d.desired > capacity) this.lastScaleOut = now;
    else this.lastScaleIn = now;
    group.setCapacity(d.desired, this.name, d.rule, d.reason);
    this.observed = group.capacity;
  }
}
