/**
 * The scaling decision as a pure function, shared by the local autoscaler and the simulator, and
 * mirroring what the AWS setup (`scaling/aws/setup.ts`) configures:
 *
 *  1. capacity bounds — desired is kept within [minCapacity, maxCapacity];
 *  2. scale from zero — no instance in service and `visible ≥ scaleFromZero.threshold` for
 *     `evaluationPeriods` periods → desired = ceil(visible / target), at least max(1, min)
 *     (the step policy with ExactCapacity steps on AWS);
 *  3. scale to zero — visible + in-flight = 0 for `scaleToZero.emptyPeriods` periods → desired = min,
 *     not within `minimumRunSeconds` of the last scale-out;
 *  4. target tracking — desired = ceil(visible / target), clamped to [max(1, min), max], scale-out
 *     limited by the scale-out cooldown, scale-in blocked while instances boot or warm up, within
 *     `minimumRunSeconds` of the last scale-out, by the scale-in cooldown, and never below the
 *     instances busy with in-flight messages (ceil(inFlight / messagesPerInstance)).
 *
 * Time is in seconds on any clock (simulated or `Date.now() / 1000`); only differences matter.
 * The function keeps no state: the caller records `lastScaleOut` / `lastScaleIn` when it applies a
 * decision and maintains `idleSince` / `backlogSince` with `trackSignals` once per period.
 */

import { type ScalingPolicy, targetBacklogPerInstance } from './policy.js';

export interface Observation {
  /** Current time, seconds. */
  readonly now: number;
  /** Messages waiting in the queue (ApproximateNumberOfMessagesVisible). */
  readonly visible: number;
  /** Messages received but not yet deleted (ApproximateNumberOfMessagesNotVisible). */
  readonly inFlight: number;
  /** Instances (processes) in service, i.e. booted and pulling work (GroupInServiceInstances). */
  readonly running: number;
  /** Current desired capacity, booting instances included. */
  readonly desired: number;
  /** When capacity was last increased (any rule), or null. */
  readonly lastScaleOut: number | null;
  /** When capacity was last decreased (any rule), or null. */
  readonly lastScaleIn: number | null;
  /** Start of the current run of periods with visible + inFlight = 0, or null. */
  readonly idleSince: number | null;
  /** Start of the current run of periods with visible ≥ threshold and running = 0, or null. */
  readonly backlogSince: number | null;
}

/** The rule behind a decision (`none`: nothing applied, the capacity holds). */
export const DECISION_RULES = [
  'capacity-bounds',
  'scale-from-zero',
  'scale-to-zero',
  'target-tracking',
  'none',
] as const;
export type DecisionRule = (typeof DECISION_RULES)[number];

export interface Decision {
  /** The capacity to apply (equal to `observation.desired` when nothing changes). */
  readonly desired: number;
  readonly action: 'scale-out' | 'scale-in' | 'none';
  readonly rule: DecisionRule;
  /** One human-readable sentence with the numbers behind the decision. */
  readonly reason: string;
}

/** One metric datapoint covering the period [start, end). */
export interface Datapoint {
  readonly start: number;
  readonly end: number;
  /** Maximum visible messages during the period. */
  readonly visible: number;
  /** Maximum in-flight messages during the period. */
  readonly inFlight: number;
  /** Instances in service (at the end of the period). */
  readonly running: number;
}

export interface Signals {
  readonly idleSince: number | null;
  readonly backlogSince: number | null;
}

export const NO_SIGNALS: Signals = Object.freeze({ idleSince: null, backlogSince: null });

/**
 * Folds one period's datapoint into the running signals. Mirrors the two CloudWatch alarms:
 * "visible + not visible ≤ 0" (idle) and "IF(in service == 0, visible, 0) ≥ threshold" (backlog).
 */
export function trackSignals(prev: Signals, dp: Datapoint, policy: ScalingPolicy): Signals {
  const idle = dp.visible + dp.inFlight <= 0;
  const backlog = dp.running === 0 && dp.visible >= policy.scaleFromZero.threshold;
  return {
    idleSince: idle ? (prev.idleSince ?? dp.start) : null,
    backlogSince: backlog ? (prev.backlogSince ?? dp.start) : null,
  };
}

/** Whether `periods` whole periods have elapsed since `since` (1 % tolerance for live timer jitter). */
function periodsElapsed(now: number, since: number | null, periods: number, periodSeconds: number): boolean {
  if (since === null) return false;
  return now - since + periodSeconds * 0.01 >= periods * periodSeconds;
}

function within(now: number, since: number | null, seconds: number): boolean {
  return since !== null && now - since < seconds;
}

const fmt = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(2));

export function decide(policy: ScalingPolicy, obs: Observation): Decision {
  const { minCapacity: min, maxCapacity: max } = policy;
  const target = targetBacklogPerInstance(policy);
  const floor = Math.max(min, 1);
  const clamp = (n: number): number => Math.min(max, Math.max(floor, n));
  const hold = (reason: string, rule: DecisionRule = 'none'): Decision => ({
    desired: obs.desired,
    action: 'none',
    rule,
    reason,
  });
  const to = (desired: number, rule: DecisionRule, reason: string): Decision => ({
    desired,
    action: desired > obs.desired ? 'scale-out' : desired < obs.desired ? 'scale-in' : 'none',
    rule,
    reason,
  });

  // 1. Capacity bounds.
  if (obs.desired < min) return to(min, 'capacity-bounds', `desired ${obs.desired} is below minCapacity ${min}`);
  if (obs.desired > max) return to(max, 'capacity-bounds', `desired ${obs.desired} is above maxCapacity ${max}`);

  // 2. Scale from zero: target tracking has no data while nothing is in service (backlog / 0).
  if (obs.running === 0 && policy.scaleFromZero.enabled && obs.visible >= policy.scaleFromZero.threshold) {
    if (periodsElapsed(obs.now, obs.backlogSince, policy.scaleFromZero.evaluationPeriods, policy.periodSeconds)) {
      const want = clamp(Math.ceil(obs.visible / target));
      const why = `${fmt(obs.visible)} visible and no instance in service: ceil(${fmt(obs.visible)} / ${fmt(target)}) → ${want}`;
      if (want > obs.desired) return to(want, 'scale-from-zero', `scale from zero: ${why}`);
      return hold(
        `scale from zero: ${why}; ${obs.desired} already launched, waiting for them to boot`,
        'scale-from-zero',
      );
    }
  }

  // 3. Scale to zero (to minCapacity) after N completely empty periods.
  if (
    policy.scaleToZero.enabled &&
    obs.desired > min &&
    periodsElapsed(obs.now, obs.idleSince, policy.scaleToZero.emptyPeriods, policy.periodSeconds)
  ) {
    if (within(obs.now, obs.lastScaleOut, policy.minimumRunSeconds)) {
      return hold(
        `queue empty for ${policy.scaleToZero.emptyPeriods} period(s), but the last scale-out is less than minimumRunSeconds ${fmt(policy.minimumRunSeconds)} s old (its instances are billed that long anyway)`,
        'scale-to-zero',
      );
    }
    return to(
      min,
      'scale-to-zero',
      `queue empty (visible + in-flight = 0) for ${policy.scaleToZero.emptyPeriods} period(s) of ${fmt(policy.periodSeconds)} s → minCapacity ${min}`,
    );
  }

  // 4. Target tracking on backlog per instance.
  if (obs.running === 0) {
    return hold(
      obs.desired > 0
        ? `${obs.desired} instance(s) launched, none in service yet`
        : 'no instance in service: backlog per instance is undefined, target tracking waits',
    );
  }
  const tracked = Math.ceil(obs.visible / target);
  const want = clamp(tracked);
  const basis = `backlog ${fmt(obs.visible)} visible / target ${fmt(target)} per instance → ${tracked}, clamped to [${floor}, ${max}] = ${want}`;
  if (want > obs.desired) {
    if (within(obs.now, obs.lastScaleOut, policy.scaleOutCooldownSeconds)) {
      return hold(`target tracking wants ${want} (${basis}) but the scale-out cooldown is running`, 'target-tracking');
    }
    return to(want, 'target-tracking', `target tracking: ${basis}`);
  }
  const busy = Math.ceil(obs.inFlight / policy.backlog.messagesPerInstance);
  const scaleInTo = Math.min(obs.desired, clamp(Math.max(tracked, busy)));
  if (scaleInTo < obs.desired) {
    if (obs.desired > obs.running)
      return hold(`target tracking would scale in to ${scaleInTo} but instances are still booting`, 'target-tracking');
    if (within(obs.now, obs.lastScaleOut, policy.warmupSeconds)) {
      return hold(`target tracking would scale in to ${scaleInTo} but new instances are warming up`, 'target-tracking');
    }
    if (within(obs.now, obs.lastScaleOut, policy.minimumRunSeconds)) {
      return hold(
        `target tracking would scale in to ${scaleInTo} but the last scale-out is less than minimumRunSeconds ${fmt(policy.minimumRunSeconds)} s old`,
        'target-tracking',
      );
    }
    if (within(obs.now, obs.lastScaleIn, policy.scaleInCooldownSeconds)) {
      return hold(
        `target tracking would scale in to ${scaleInTo} but the scale-in cooldown is running`,
        'target-tracking',
      );
    }
    return to(
      scaleInTo,
      'target-tracking',
      `target tracking: ${basis}; ${busy} instance(s) busy with in-flight messages`,
    );
  }
  return hold(`at target: ${basis}`);
}
