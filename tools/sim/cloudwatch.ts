/**
 * The app tier's CloudWatch alarms and Auto Scaling policies, run from the very requests the stack
 * deploys (`scalingRequests` in scaling/aws/aws-requests.ts; deploy/stack.ts turns the same objects
 * into its resources): every metric query and math expression is evaluated as written
 * (`metric-math.ts`), every alarm with its own threshold, comparison, window and missing-data rule.
 *
 * Model (AWS's documentation where it says; the simulator's choices where it does not):
 *  - Metrics, one datapoint per one-minute period: the SQS counts and GroupInServiceInstances as the
 *    simulator's other CloudWatch model has them (each period's maximum visible and in flight; the
 *    instances in service at its end), whatever the statistic; the controller's heartbeat as its
 *    sample count in the period, no datapoint in a period without one.
 *  - Evaluation at each period end, on the periods that ended `lagPeriods` earlier (SQS pushes its
 *    metrics once a minute): a window of EvaluationPeriods datapoints is ALARM when DatapointsToAlarm
 *    of them breach; a missing one does not breach (TreatMissingData notBreaching). An alarm whose
 *    action is an Auto Scaling policy invokes it at every evaluation it is in ALARM, not only when it
 *    changes state (CloudWatch user guide, "Alarm actions").
 *  - A step policy with ExactCapacity sets the capacity of the step the newest datapoint falls in
 *    (bounds relative to the threshold; lower bound inclusive above the threshold, upper bound
 *    inclusive below it — EC2 Auto Scaling user guide, "Step and simple scaling policies"), within
 *    the group's bounds.
 *  - Target tracking, through the two alarms Auto Scaling makes for it (not a documented contract:
 *    what they look like for one-minute metrics): above the target for 3 datapoints → scale out to
 *    ceil(in service × value / target); below 90 % of it for 15 → scale in likewise (not below one
 *    instance: at zero the metric has no value and the alarms no data), not while a scale-out is
 *    younger than EstimatedInstanceWarmup; none of it with DisableScaleIn.
 */

import type { PutScalingPolicyCommandInput } from '@aws-sdk/client-auto-scaling';
import type { PutMetricAlarmCommandInput } from '@aws-sdk/client-cloudwatch';
import { HEARTBEAT, IN_SERVICE_METRIC, type ScalingRequests } from '../../scaling/aws/aws-requests.js';
import type { Datapoint, DecisionRule } from '../../scaling/core/decide.js';
import { ScalingError } from '../../scaling/core/errors.js';
import { evaluateExpression, type Series } from './metric-math.js';
import type { GroupView, HeartbeatStore, Scaler } from './scalers.js';

/** The queries of an alarm or of target tracking, as both APIs write them. */
interface Query {
  readonly Id?: string | undefined;
  readonly Expression?: string | undefined;
  readonly ReturnData?: boolean | undefined;
  readonly MetricStat?:
    | {
        readonly Metric?:
          | { readonly Namespace?: string | undefined; readonly MetricName?: string | undefined }
          | undefined;
      }
    | undefined;
}

const notModelled = (what: string, value?: unknown): ScalingError =>
  new ScalingError('INVALID_SIMULATION', `CloudWatch model: ${what} is not modelled by the simulator`, {
    field: what,
    ...(value === undefined ? {} : { value }),
  });

/** One period's metrics, as CloudWatch would have them. */
interface PeriodMetrics {
  readonly visible: number;
  readonly inFlight: number;
  readonly inService: number;
  readonly heartbeats: number;
}

/** Which field of a period a metric query reads; heartbeats have no datapoint in a period without one. */
function metricOf(q: Query): (p: PeriodMetrics) => number | undefined {
  const m = q.MetricStat?.Metric;
  const key = `${m?.Namespace}/${m?.MetricName}`;
  switch (key) {
    case 'AWS/SQS/ApproximateNumberOfMessagesVisible':
      return (p) => p.visible;
    case 'AWS/SQS/ApproximateNumberOfMessagesNotVisible':
      return (p) => p.inFlight;
    case `AWS/AutoScaling/${IN_SERVICE_METRIC}`:
      return (p) => p.inService;
    case `${HEARTBEAT.namespace}/${HEARTBEAT.metricName}`:
      return (p) => (p.heartbeats > 0 ? p.heartbeats : undefined);
  }
  throw notModelled(`the metric ${key}`, q.Id);
}

/** The series the query with ReturnData returns, over `window` periods. */
function evaluateQueries(queries: readonly Query[], window: readonly PeriodMetrics[]): Series {
  const series = new Map<string, Series>();
  let returned: Series | undefined;
  for (const q of queries) {
    const id = q.Id ?? '';
    const s =
      q.Expression !== undefined ? evaluateExpression(q.Expression, series, window.length) : window.map(metricOf(q));
    series.set(id, s);
    if (q.ReturnData !== false) returned = s;
  }
  if (returned === undefined) throw notModelled('metric queries without one that returns data');
  return returned;
}

function breaches(operator: string | undefined, value: number, threshold: number): boolean {
  switch (operator) {
    case 'GreaterThanOrEqualToThreshold':
      return value >= threshold;
    case 'GreaterThanThreshold':
      return value > threshold;
    case 'LessThanOrEqualToThreshold':
      return value <= threshold;
    case 'LessThanThreshold':
      return value < threshold;
  }
  throw notModelled(`the comparison ${operator}`);
}

/** An alarm: its window's datapoints and whether enough of them breach. */
interface AlarmCheck {
  readonly alarm: boolean;
  /** The newest datapoint with a value (what a step policy acts on). */
  readonly newest: number | undefined;
}

function check(
  values: Series,
  datapointsToAlarm: number,
  breaching: (v: number) => boolean,
  treatMissing: string | undefined,
): AlarmCheck {
  if (treatMissing !== undefined && treatMissing !== 'notBreaching' && treatMissing !== 'breaching')
    throw notModelled(`TreatMissingData ${treatMissing}`);
  const count = values.filter((v) => (v === undefined ? treatMissing === 'breaching' : breaching(v))).length;
  const newest = [...values].reverse().find((v) => v !== undefined);
  return { alarm: count >= datapointsToAlarm, newest };
}

/** The capacity an ExactCapacity step policy sets for `value` of an alarm on `threshold`, or undefined. */
export function stepCapacity(
  policy: PutScalingPolicyCommandInput,
  operator: string | undefined,
  threshold: number,
  value: number,
): number | undefined {
  if (policy.PolicyType !== 'StepScaling' || policy.AdjustmentType !== 'ExactCapacity')
    throw notModelled(`a ${policy.PolicyType} policy with ${policy.AdjustmentType}`);
  const above = operator?.startsWith('Greater') ?? true;
  const b = value - threshold;
  for (const step of policy.StepAdjustments ?? []) {
    const lo = step.MetricIntervalLowerBound ?? Number.NEGATIVE_INFINITY;
    const hi = step.MetricIntervalUpperBound ?? Number.POSITIVE_INFINITY;
    if (above ? lo <= b && b < hi : lo < b && b <= hi) return step.ScalingAdjustment;
  }
  return undefined;
}

const TT_HIGH_DATAPOINTS = 3;
const TT_LOW_DATAPOINTS = 15;
const TT_LOW_FRACTION = 0.9;

export interface CloudWatchScalerOptions {
  readonly requests: ScalingRequests;
  /** The metric period of the requests (60). */
  readonly periodSeconds: number;
  /** Periods between a period's end and the alarms seeing its datapoint. */
  readonly lagPeriods: number;
  /** The group's bounds. */
  readonly minCapacity: number;
  readonly maxCapacity: number;
  /** The controller's heartbeats (none without a controller). */
  readonly heartbeats: HeartbeatStore;
}

interface StepAlarm {
  readonly rule: DecisionRule;
  readonly alarm: PutMetricAlarmCommandInput;
  readonly policy: PutScalingPolicyCommandInput;
}

const RULE_OF = { ScaleFromZero: 'scale-from-zero', ScaleToZero: 'scale-to-zero' } as const;

export class CloudWatchScaler implements Scaler {
  readonly name = 'cloudwatch' as const;
  readonly periodSeconds: number;
  /** CloudWatch's minutes are the clock's. */
  readonly phaseSeconds = 0;
  private readonly periods: PeriodMetrics[] = [];
  private readonly steps: readonly StepAlarm[];
  private lastScaleOut: number | null = null;
  /** Alarms in ALARM at each evaluation, by name: what the run shows of them. */
  readonly alarmsInAlarm: { readonly t: number; readonly names: readonly string[] }[] = [];

  constructor(private readonly options: CloudWatchScalerOptions) {
    this.periodSeconds = options.periodSeconds;
    this.steps = options.requests.steps.map((s) => {
      const alarm = s.alarm(s.policy.PolicyName ?? s.id);
      if (alarm.DatapointsToAlarm !== undefined && alarm.DatapointsToAlarm !== alarm.EvaluationPeriods)
        throw notModelled(
          'an alarm of M out of N datapoints with M < N (the heartbeat gate needs all N)',
          alarm.AlarmName,
        );
      if (
        alarm.Period !== undefined ||
        (alarm.Metrics ?? []).some((m) => (m.MetricStat?.Period ?? 60) !== options.periodSeconds)
      )
        throw notModelled('an alarm with another period than the policy’s', alarm.AlarmName);
      return { rule: RULE_OF[s.id], alarm, policy: s.policy };
    });
  }

  alive(): boolean {
    return true;
  }

  /** The longest window any of its alarms looks back over, lag included, seconds: how long it can still act. */
  get reachSeconds(): number {
    const scaleIn = this.options.requests.targetTracking.TargetTrackingConfiguration?.DisableScaleIn !== true;
    const tt = scaleIn ? TT_LOW_DATAPOINTS : TT_HIGH_DATAPOINTS;
    const windows = [tt, ...this.steps.map((s) => s.alarm.EvaluationPeriods ?? 1)];
    return (Math.max(...windows) + this.options.lagPeriods + 1) * this.periodSeconds;
  }

  tick(now: number, dp: Datapoint, group: GroupView): void {
    const { lagPeriods, heartbeats, periodSeconds } = this.options;
    const k = Math.round(dp.start / periodSeconds);
    this.periods.push({
      visible: dp.visible,
      inFlight: dp.inFlight,
      inService: dp.running,
      heartbeats: heartbeats.count(k),
    });
    const seen = this.periods.length - lagPeriods;
    const inAlarm: string[] = [];
    const tt = this.targetTracking(seen, now, group);
    if (tt) inAlarm.push(tt);
    for (const step of this.steps) {
      const n = step.alarm.EvaluationPeriods ?? 1;
      if (seen < n) continue; // not enough data yet
      const values = evaluateQueries(step.alarm.Metrics ?? [], this.periods.slice(seen - n, seen));
      const threshold = step.alarm.Threshold ?? 0;
      const result = check(
        values,
        step.alarm.DatapointsToAlarm ?? n,
        (v) => breaches(step.alarm.ComparisonOperator, v, threshold),
        step.alarm.TreatMissingData,
      );
      if (!result.alarm || result.newest === undefined) continue;
      inAlarm.push(step.alarm.AlarmName ?? step.rule);
      const exact = stepCapacity(step.policy, step.alarm.ComparisonOperator, threshold, result.newest);
      if (exact === undefined) continue;
      this.set(
        now,
        group,
        exact,
        step.rule,
        `alarm ${step.alarm.AlarmName} in ALARM (value ${result.newest}): ExactCapacity ${exact}`,
      );
    }
    if (inAlarm.length > 0) this.alarmsInAlarm.push({ t: now, names: inAlarm });
  }

  private set(now: number, group: GroupView, to: number, rule: DecisionRule, reason: string): void {
    const { minCapacity, maxCapacity } = this.options;
    const target = Math.min(maxCapacity, Math.max(minCapacity, to));
    if (target === group.capacity) return;
    if (target > group.capacity) this.lastScaleOut = now;
    group.setCapacity(target, 'cloudwatch', rule, reason);
  }

  /** Target tracking's two alarms; the name of the one in ALARM, if any. */
  private targetTracking(seen: number, now: number, group: GroupView): string | undefined {
    const policy = this.options.requests.targetTracking;
    const config = policy.TargetTrackingConfiguration;
    const metrics = config?.CustomizedMetricSpecification?.Metrics;
    if (policy.PolicyType !== 'TargetTrackingScaling' || config === undefined || metrics === undefined)
      throw notModelled('target tracking without customized metric math', policy.PolicyName);
    const target = config.TargetValue ?? 0;
    const evaluate = (n: number): Series | undefined =>
      seen < n ? undefined : evaluateQueries(metrics, this.periods.slice(seen - n, seen));
    const high = evaluate(TT_HIGH_DATAPOINTS);
    const highCheck = high && check(high, TT_HIGH_DATAPOINTS, (v) => v > target, 'notBreaching');
    const want = (value: number): number => Math.ceil((Math.max(1, group.inService) * value) / target);
    if (highCheck?.alarm && highCheck.newest !== undefined) {
      const to = want(highCheck.newest);
      if (to > group.capacity)
        this.set(
          now,
          group,
          to,
          'target-tracking',
          `target tracking above ${target} (value ${highCheck.newest.toFixed(2)}): ${to}`,
        );
      return 'TargetTracking-AlarmHigh';
    }
    if (config.DisableScaleIn === true) return undefined;
    const low = evaluate(TT_LOW_DATAPOINTS);
    const lowCheck = low && check(low, TT_LOW_DATAPOINTS, (v) => v < TT_LOW_FRACTION * target, 'notBreaching');
    if (!lowCheck?.alarm || lowCheck.newest === undefined) return undefined;
    const warming = this.lastScaleOut !== null && now - this.lastScaleOut < (policy.EstimatedInstanceWarmup ?? 0);
    const to = Math.max(1, want(lowCheck.newest));
    if (to < group.capacity && !warming)
      this.set(
        now,
        group,
        to,
        'target-tracking',
        `target tracking below ${TT_LOW_FRACTION} × ${target} (value ${lowCheck.newest.toFixed(2)}): ${to}`,
      );
    return 'TargetTracking-AlarmLow';
  }
}
