/**
 * Pure builders for every AWS request the setup sends. No clients here: the same inputs are sent
 * by `setup.ts` and printed by `--dry-run`, and the tests compare them field by field.
 *
 * What gets created for group G and queue Q (names are fixed, so re-runs update in place):
 *
 *  - metrics collection: GroupInServiceInstances at 1Minute granularity on G (needed by m2 below);
 *  - `G-sqs-backlog-target-tracking` (TargetTrackingScaling): metric math
 *      m1 = AWS/SQS ApproximateNumberOfMessagesVisible QueueName=Q (Sum)
 *      m2 = AWS/AutoScaling GroupInServiceInstances AutoScalingGroupName=G (Average)
 *      e1 = IF(FILL(hb, 0) > 0, 0, m1 / m2)  (the only query with ReturnData = true),
 *      TargetValue = target backlog per instance, DisableScaleIn: it only adds instances for a
 *      backlog, scale to zero below gives them back;
 *  - `G-sqs-scale-from-zero` (StepScaling, ExactCapacity) + alarm of the same name on
 *      e1 = IF(FILL(hb, 0) > 0, 0, IF(m2 == 0, m1, 0)) ≥ threshold, where m1 = visible (Maximum),
 *      m2 = in service (Maximum): "messages are waiting and not one instance was in service during
 *      the minute". The steps map the alarm value to ceil(visible / target) instances, like target
 *      tracking would;
 *  - `G-sqs-scale-to-zero` (StepScaling, ExactCapacity = minCapacity) + alarm of the same name on
 *      e1 = IF(FILL(hb, 0) > 0, 1, m1 + m3) ≤ 0 for N periods, m1 = visible (Maximum),
 *      m3 = NotVisible / in flight (Maximum).
 *
 * `hb` is the scaling controller's heartbeat (SampleCount per period, `scaling/aws/heartbeat.ts`):
 * in every period a controller said it was alive, each expression takes a value that breaches
 * nothing (0 per instance, 0 waiting, 1 in flight), so these policies act only once no controller
 * has spoken for their whole window — every alarm here needs all its datapoints breaching — and a
 * controller acts only once they cannot (`scaling/core/handover.ts`). Without a controller (none
 * deployed, SCALER=off, it died) FILL makes every period a period without heartbeat and the policies
 * scale the group on their own. AWS documentation behind this:
 *  - target tracking takes "any ... function that CloudWatch supports" in its metric math (EC2 Auto
 *    Scaling user guide, "Create a target tracking scaling policy using metric math") and acts
 *    through alarms it manages: one for a metric above the target, one for a metric below it by an
 *    undocumented margin (about 10 %). With DisableScaleIn "the target tracking scaling policy
 *    doesn't remove instances from the Auto Scaling group" (API reference, TargetTrackingConfiguration),
 *    so the gate's 0 cannot scale anything in, and needs no guess of that margin;
 *  - FILL(m, 0) gives a value to every period without one, IF(cond, a, b) takes a where cond holds
 *    and b elsewhere, dropping the point where b has none (CloudWatch user guide, "Metric math syntax
 *    and functions"); a period whose SQS and group metrics have not arrived has no point, so the gate
 *    cannot open on a heartbeat merely not ingested yet (that page's caveat about FILL and late data);
 *  - missing datapoints do not breach (TreatMissingData notBreaching);
 *  - an alarm whose action is an Auto Scaling policy repeats it every period it stays in ALARM
 *    (CloudWatch user guide, "Alarm actions"): hence the gate on every period, not a switch.
 */

import type {
  DeletePolicyCommandInput,
  DescribeAutoScalingGroupsCommandInput,
  DescribePoliciesCommandInput,
  DisableMetricsCollectionCommandInput,
  EnableMetricsCollectionCommandInput,
  PutScalingPolicyCommandInput,
  StepAdjustment,
  TargetTrackingMetricDataQuery,
} from '@aws-sdk/client-auto-scaling';
import type {
  DeleteAlarmsCommandInput,
  DescribeAlarmsCommandInput,
  GetMetricDataCommandInput,
  MetricDataQuery,
  PutMetricAlarmCommandInput,
  PutMetricDataCommandInput,
} from '@aws-sdk/client-cloudwatch';
import type { GetQueueAttributesCommandInput, GetQueueUrlCommandInput } from '@aws-sdk/client-sqs';
import { PolicyValidationError } from '../core/errors.js';
import { type ScalingPolicy, targetBacklogPerInstance } from '../core/policy.js';

/** The group metric the backlog expression divides by. */
export const IN_SERVICE_METRIC = 'GroupInServiceInstances';
/** Step adjustments allowed per step scaling policy (Auto Scaling quota). */
export const MAX_STEP_ADJUSTMENTS = 20;
/** CloudWatch: EvaluationPeriods × Period may not exceed one day. */
export const MAX_ALARM_WINDOW_SECONDS = 86_400;

export interface SetupTarget {
  readonly asg: string;
  /** Queue name as in the `QueueName` metric dimension (the last segment of the URL). */
  readonly queueName: string;
}

export interface ResourceNames {
  readonly targetTrackingPolicy: string;
  readonly scaleFromZeroPolicy: string;
  readonly scaleToZeroPolicy: string;
  readonly scaleFromZeroAlarm: string;
  readonly scaleToZeroAlarm: string;
}

/** Fixed names derived from the group name: the same on every run (idempotency) and for teardown. */
export function resourceNames(asg: string): ResourceNames {
  return {
    targetTrackingPolicy: `${asg}-sqs-backlog-target-tracking`,
    scaleFromZeroPolicy: `${asg}-sqs-scale-from-zero`,
    scaleToZeroPolicy: `${asg}-sqs-scale-to-zero`,
    scaleFromZeroAlarm: `${asg}-sqs-scale-from-zero`,
    scaleToZeroAlarm: `${asg}-sqs-scale-to-zero`,
  };
}

export function allPolicyNames(n: ResourceNames): string[] {
  return [n.targetTrackingPolicy, n.scaleFromZeroPolicy, n.scaleToZeroPolicy];
}

export function allAlarmNames(n: ResourceNames): string[] {
  return [n.scaleFromZeroAlarm, n.scaleToZeroAlarm];
}

/** Policy constraints that only matter on AWS (CloudWatch periods are whole minutes, etc.). */
export function validatePolicyForAws(policy: ScalingPolicy): void {
  if (policy.periodSeconds < 60 || policy.periodSeconds % 60 !== 0) {
    throw PolicyValidationError.of(
      'periodSeconds',
      'must be a multiple of 60 on AWS (SQS metrics are 1-minute metrics)',
      policy.periodSeconds,
    );
  }
  const windows: [string, boolean, number][] = [
    ['scaleFromZero.evaluationPeriods', policy.scaleFromZero.enabled, policy.scaleFromZero.evaluationPeriods],
    ['scaleToZero.emptyPeriods', policy.scaleToZero.enabled, policy.scaleToZero.emptyPeriods],
  ];
  for (const [field, enabled, periods] of windows) {
    if (enabled && periods * policy.periodSeconds > MAX_ALARM_WINDOW_SECONDS) {
      throw PolicyValidationError.of(
        field,
        `× periodSeconds must not exceed ${MAX_ALARM_WINDOW_SECONDS} s (CloudWatch limit)`,
        periods,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

export const describeGroup = (asg: string): DescribeAutoScalingGroupsCommandInput => ({ AutoScalingGroupNames: [asg] });

export const getQueueUrl = (queueName: string): GetQueueUrlCommandInput => ({ QueueName: queueName });

export const getQueueAttributes = (queueUrl: string): GetQueueAttributesCommandInput => ({
  QueueUrl: queueUrl,
  AttributeNames: ['QueueArn'],
});

export const describePolicies = (asg: string, names: ResourceNames): DescribePoliciesCommandInput => ({
  AutoScalingGroupName: asg,
  PolicyNames: allPolicyNames(names),
});

export const describeAlarms = (names: ResourceNames): DescribeAlarmsCommandInput => ({
  AlarmNames: allAlarmNames(names),
});

// ---------------------------------------------------------------------------------------------
// Metrics collection
// ---------------------------------------------------------------------------------------------

export const enableMetricsCollection = (asg: string): EnableMetricsCollectionCommandInput => ({
  AutoScalingGroupName: asg,
  Metrics: [IN_SERVICE_METRIC],
  Granularity: '1Minute',
});

export const disableMetricsCollection = (
  asg: string,
  metrics: readonly string[],
): DisableMetricsCollectionCommandInput => ({
  AutoScalingGroupName: asg,
  Metrics: [...metrics],
});

// ---------------------------------------------------------------------------------------------
// The controller's heartbeat, and the gate every policy below puts on it
// ---------------------------------------------------------------------------------------------

/** The scaling controller's heartbeat: one sample per heartbeat, per app-tier group. */
export const HEARTBEAT = Object.freeze({ namespace: 'ImageRecognition/Scaling', metricName: 'ControllerHeartbeat' });

export function heartbeatMetric(asg: string) {
  return {
    Namespace: HEARTBEAT.namespace,
    MetricName: HEARTBEAT.metricName,
    Dimensions: [{ Name: 'AutoScalingGroupName', Value: asg }],
  };
}

/** One heartbeat of the controller that scales `asg` (scaling/aws/heartbeat.ts). */
export function putHeartbeat(asg: string, at: Date): PutMetricDataCommandInput {
  const { Namespace, ...metric } = heartbeatMetric(asg);
  return { Namespace, MetricData: [{ ...metric, Timestamp: at, Value: 1, Unit: 'Count' }] };
}

/** The heartbeats of `asg` per period over [start, end): the copy taking over reads them back. */
export function getHeartbeats(
  asg: string,
  span: { start: Date; end: Date },
  periodSeconds: number,
): GetMetricDataCommandInput {
  return {
    MetricDataQueries: [
      {
        Id: 'hb',
        MetricStat: { Metric: heartbeatMetric(asg), Period: periodSeconds, Stat: 'SampleCount' },
        ReturnData: true,
      },
    ],
    StartTime: span.start,
    EndTime: span.end,
    ScanBy: 'TimestampAscending',
  };
}

/** hb: heartbeats per period (SampleCount; no point in a period without one), target tracking's form. */
function heartbeatQuery(asg: string): TargetTrackingMetricDataQuery {
  return {
    Id: 'hb',
    Label: 'Scaling controller heartbeats',
    MetricStat: { Metric: heartbeatMetric(asg), Stat: 'SampleCount' },
    ReturnData: false,
  };
}

/** hb for an alarm, whose metric queries carry their period. */
function heartbeatAlarmQuery(asg: string, period: number): MetricDataQuery {
  const { MetricStat, ...rest } = heartbeatQuery(asg);
  return { ...rest, MetricStat: { Metric: MetricStat!.Metric!, Stat: MetricStat!.Stat!, Period: period } };
}

/** `idle` in every period with a heartbeat, `expression` in every other (module comment). */
export function gatedExpression(idle: number, expression: string): string {
  return `IF(FILL(hb, 0) > 0, ${idle}, ${expression})`;
}

// ---------------------------------------------------------------------------------------------
// Target tracking on backlog per instance
// ---------------------------------------------------------------------------------------------

function sqsMetric(queueName: string, metricName: string) {
  return { Namespace: 'AWS/SQS', MetricName: metricName, Dimensions: [{ Name: 'QueueName', Value: queueName }] };
}

function groupMetric(asg: string) {
  return {
    Namespace: 'AWS/AutoScaling',
    MetricName: IN_SERVICE_METRIC,
    Dimensions: [{ Name: 'AutoScalingGroupName', Value: asg }],
  };
}

/** The metric math of AWS's "SQS backlog per instance" example: e1 = m1 / m2. */
export function backlogPerInstanceQueries(t: SetupTarget): TargetTrackingMetricDataQuery[] {
  return [
    {
      Id: 'm1',
      Label: 'Messages waiting in the queue',
      MetricStat: { Metric: sqsMetric(t.queueName, 'ApproximateNumberOfMessagesVisible'), Stat: 'Sum' },
      ReturnData: false,
    },
    {
      Id: 'm2',
      Label: 'Instances in service',
      MetricStat: { Metric: groupMetric(t.asg), Stat: 'Average' },
      ReturnData: false,
    },
    { Id: 'e1', Label: 'Backlog per instance', Expression: 'm1 / m2', ReturnData: true },
  ];
}

/**
 * Backlog per instance, 0 in every period a controller was alive: target tracking (scale-in
 * disabled) then has nothing to scale out for.
 */
export function gatedBacklogQueries(t: SetupTarget): TargetTrackingMetricDataQuery[] {
  const [m1, m2] = backlogPerInstanceQueries(t);
  return [
    m1!,
    m2!,
    heartbeatQuery(t.asg),
    {
      Id: 'e1',
      Label: 'Backlog per instance (0 while a controller runs)',
      Expression: gatedExpression(0, 'm1 / m2'),
      ReturnData: true,
    },
  ];
}

export function targetTrackingPolicy(t: SetupTarget, policy: ScalingPolicy): PutScalingPolicyCommandInput {
  return {
    AutoScalingGroupName: t.asg,
    PolicyName: resourceNames(t.asg).targetTrackingPolicy,
    PolicyType: 'TargetTrackingScaling',
    EstimatedInstanceWarmup: policy.warmupSeconds,
    TargetTrackingConfiguration: {
      TargetValue: targetBacklogPerInstance(policy),
      CustomizedMetricSpecification: { Metrics: gatedBacklogQueries(t) },
      // Scale-in is the controller's, and scale to zero's once no controller runs.
      DisableScaleIn: true,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Scale from zero
// ---------------------------------------------------------------------------------------------

/**
 * Steps of the scale-from-zero policy. The alarm value v is the visible count while the group is
 * empty; step bounds are relative to the threshold (b = v − threshold ≥ 0; lower bound inclusive,
 * upper exclusive). For integer v, capacity i covers ceil(v / target) = i, i.e. v in
 * (⌊(i−1)·target⌋, ⌊i·target⌋], clamped to [max(1, min), max]. If that needs more than 20 steps,
 * neighbouring steps are merged and take the larger capacity (a slight over-provisioning).
 */
export function scaleFromZeroSteps(policy: ScalingPolicy): StepAdjustment[] {
  const target = targetBacklogPerInstance(policy);
  const threshold = policy.scaleFromZero.threshold;
  const floor = Math.max(1, policy.minCapacity);
  const intervals: { lo: number; hi: number | undefined; cap: number }[] = [];
  for (let i = 1; i <= policy.maxCapacity; i++) {
    let lo = Math.floor((i - 1) * target) + 1 - threshold;
    const hi = i === policy.maxCapacity ? undefined : Math.floor(i * target) + 1 - threshold;
    if (hi !== undefined && hi <= 0) continue; // below the threshold: the alarm never fires there
    lo = Math.max(lo, 0);
    if (hi !== undefined && hi <= lo) continue; // empty for integer v (target < 1)
    const cap = Math.max(floor, i);
    const last = intervals[intervals.length - 1];
    if (last && last.cap === cap) last.hi = hi;
    else intervals.push({ lo, hi, cap });
  }
  // Merge into at most MAX_STEP_ADJUSTMENTS groups, each taking its largest capacity.
  const groups: { lo: number; hi: number | undefined; cap: number }[] = [];
  const per = Math.ceil(intervals.length / MAX_STEP_ADJUSTMENTS);
  for (let k = 0; k < intervals.length; k += per) {
    const chunk = intervals.slice(k, k + per);
    const first = chunk[0];
    const lastOfChunk = chunk[chunk.length - 1];
    if (!first || !lastOfChunk) continue;
    groups.push({ lo: first.lo, hi: lastOfChunk.hi, cap: Math.max(...chunk.map((c) => c.cap)) });
  }
  return groups.map((g) => ({
    MetricIntervalLowerBound: g.lo,
    ...(g.hi === undefined ? {} : { MetricIntervalUpperBound: g.hi }),
    ScalingAdjustment: g.cap,
  }));
}

/** A step scaling policy that sets the capacity (the two alarm-driven policies). */
function exactCapacityPolicy(
  asg: string,
  policyName: string,
  steps: Pick<PutScalingPolicyCommandInput, 'EstimatedInstanceWarmup' | 'StepAdjustments'>,
): PutScalingPolicyCommandInput {
  return {
    AutoScalingGroupName: asg,
    PolicyName: policyName,
    PolicyType: 'StepScaling',
    AdjustmentType: 'ExactCapacity',
    ...steps,
  };
}

/** An alarm that triggers one step policy; missing data does not breach. */
function policyAlarm(
  alarmName: string,
  description: string,
  policyArn: string,
  condition: Pick<
    PutMetricAlarmCommandInput,
    'Metrics' | 'ComparisonOperator' | 'Threshold' | 'EvaluationPeriods' | 'DatapointsToAlarm'
  >,
): PutMetricAlarmCommandInput {
  return {
    AlarmName: alarmName,
    AlarmDescription: description,
    ActionsEnabled: true,
    AlarmActions: [policyArn],
    ...condition,
    TreatMissingData: 'notBreaching',
  };
}

/** m1 of both alarms: the messages waiting in the queue, the period's maximum. */
function visibleMaximum(t: SetupTarget, period: number): MetricDataQuery {
  return {
    Id: 'm1',
    Label: 'Messages waiting in the queue',
    MetricStat: {
      Metric: sqsMetric(t.queueName, 'ApproximateNumberOfMessagesVisible'),
      Period: period,
      Stat: 'Maximum',
    },
    ReturnData: false,
  };
}

export function scaleFromZeroPolicy(t: SetupTarget, policy: ScalingPolicy): PutScalingPolicyCommandInput {
  return exactCapacityPolicy(t.asg, resourceNames(t.asg).scaleFromZeroPolicy, {
    EstimatedInstanceWarmup: policy.warmupSeconds,
    StepAdjustments: scaleFromZeroSteps(policy),
  });
}

/** Marker in alarm descriptions recording which group metrics *this setup* enabled (for teardown). */
export const OWNED_METRICS_MARKER = 'owns-metrics-collection=';

/**
 * Who keeps an alarm in line, for its description: `npm run scaling:setup`, or the deployment's
 * CloudFormation stack (`deploy/`), which builds the same alarms from these builders.
 */
export interface AlarmOwner {
  /** `scaling-setup`, `CloudFormation stack <name>`... */
  readonly by: string;
  /** What to do instead of editing the alarm: `re-run the setup`, `update the stack`. */
  readonly change: string;
}

export const SETUP_OWNER: AlarmOwner = Object.freeze({ by: 'scaling-setup', change: 're-run the setup' });

export function alarmDescription(
  t: SetupTarget,
  purpose: string,
  ownedMetrics: readonly string[],
  owner: AlarmOwner = SETUP_OWNER,
): string {
  return (
    `Managed by ${owner.by} (${purpose}) for Auto Scaling group ${t.asg} and SQS queue ${t.queueName}; ` +
    `do not edit, ${owner.change}. ${OWNED_METRICS_MARKER}${ownedMetrics.length ? ownedMetrics.join(',') : 'none'}`
  );
}

/** Reads the marker back; an absent or unparsable marker owns nothing. */
export function ownedMetricsFromDescription(description: string | undefined): string[] {
  if (!description) return [];
  const at = description.lastIndexOf(OWNED_METRICS_MARKER);
  if (at < 0) return [];
  const list = description.slice(at + OWNED_METRICS_MARKER.length).trim();
  if (list === '' || list === 'none') return [];
  return list.split(',').filter((m) => /^[A-Za-z]+$/.test(m));
}

export function scaleFromZeroAlarm(
  t: SetupTarget,
  policy: ScalingPolicy,
  policyArn: string,
  ownedMetrics: readonly string[],
  owner: AlarmOwner = SETUP_OWNER,
): PutMetricAlarmCommandInput {
  const period = policy.periodSeconds;
  return policyAlarm(
    resourceNames(t.asg).scaleFromZeroAlarm,
    alarmDescription(t, 'scale out from zero instances', ownedMetrics, owner),
    policyArn,
    {
      Metrics: [
        visibleMaximum(t, period),
        {
          Id: 'm2',
          Label: 'Instances in service',
          MetricStat: { Metric: groupMetric(t.asg), Period: period, Stat: 'Maximum' },
          ReturnData: false,
        },
        heartbeatAlarmQuery(t.asg, period),
        {
          Id: 'e1',
          Label: 'Messages waiting while no instance is in service (0 while a controller runs)',
          Expression: gatedExpression(0, 'IF(m2 == 0, m1, 0)'),
          ReturnData: true,
        },
      ],
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: policy.scaleFromZero.threshold,
      EvaluationPeriods: policy.scaleFromZero.evaluationPeriods,
      DatapointsToAlarm: policy.scaleFromZero.evaluationPeriods,
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Scale to zero (to minCapacity)
// ---------------------------------------------------------------------------------------------

export function scaleToZeroPolicy(t: SetupTarget, policy: ScalingPolicy): PutScalingPolicyCommandInput {
  return exactCapacityPolicy(t.asg, resourceNames(t.asg).scaleToZeroPolicy, {
    StepAdjustments: [{ MetricIntervalUpperBound: 0, ScalingAdjustment: policy.minCapacity }],
  });
}

export function scaleToZeroAlarm(
  t: SetupTarget,
  policy: ScalingPolicy,
  policyArn: string,
  ownedMetrics: readonly string[],
  owner: AlarmOwner = SETUP_OWNER,
): PutMetricAlarmCommandInput {
  const period = policy.periodSeconds;
  const n = policy.scaleToZero.emptyPeriods;
  return policyAlarm(
    resourceNames(t.asg).scaleToZeroAlarm,
    alarmDescription(t, `scale in to ${policy.minCapacity} when the queue stays empty`, ownedMetrics, owner),
    policyArn,
    {
      Metrics: [
        visibleMaximum(t, period),
        {
          Id: 'm3',
          Label: 'Messages in flight',
          MetricStat: {
            Metric: sqsMetric(t.queueName, 'ApproximateNumberOfMessagesNotVisible'),
            Period: period,
            Stat: 'Maximum',
          },
          ReturnData: false,
        },
        heartbeatAlarmQuery(t.asg, period),
        {
          Id: 'e1',
          Label: 'Messages waiting or in flight (1 while a controller runs)',
          Expression: gatedExpression(1, 'm1 + m3'),
          ReturnData: true,
        },
      ],
      ComparisonOperator: 'LessThanOrEqualToThreshold',
      Threshold: 0,
      EvaluationPeriods: n,
      DatapointsToAlarm: n,
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Teardown
// ---------------------------------------------------------------------------------------------

export const deleteAlarms = (alarmNames: readonly string[]): DeleteAlarmsCommandInput => ({
  AlarmNames: [...alarmNames],
});

export const deletePolicy = (asg: string, policyName: string): DeletePolicyCommandInput => ({
  AutoScalingGroupName: asg,
  PolicyName: policyName,
});

// ---------------------------------------------------------------------------------------------
// All of them
// ---------------------------------------------------------------------------------------------

/** A step policy and the alarm that triggers it (given the policy's ARN). */
export interface AlarmedStepPolicy {
  /** `ScaleFromZero` or `ScaleToZero`: the stack's logical ids are `<id>Policy` and `<id>Alarm`. */
  readonly id: 'ScaleFromZero' | 'ScaleToZero';
  readonly policy: PutScalingPolicyCommandInput;
  readonly alarm: (policyArn: string) => PutMetricAlarmCommandInput;
}

/** The scaling policies and alarms for `t` as `policy` enables them: what the stack deploys, what the simulator runs. */
export interface ScalingRequests {
  readonly targetTracking: PutScalingPolicyCommandInput;
  readonly steps: readonly AlarmedStepPolicy[];
}

export function scalingRequests(
  t: SetupTarget,
  policy: ScalingPolicy,
  ownedMetrics: readonly string[] = [],
  owner: AlarmOwner = SETUP_OWNER,
): ScalingRequests {
  const steps: AlarmedStepPolicy[] = [];
  if (policy.scaleFromZero.enabled)
    steps.push({
      id: 'ScaleFromZero',
      policy: scaleFromZeroPolicy(t, policy),
      alarm: (arn) => scaleFromZeroAlarm(t, policy, arn, ownedMetrics, owner),
    });
  if (policy.scaleToZero.enabled)
    steps.push({
      id: 'ScaleToZero',
      policy: scaleToZeroPolicy(t, policy),
      alarm: (arn) => scaleToZeroAlarm(t, policy, arn, ownedMetrics, owner),
    });
  return { targetTracking: targetTrackingPolicy(t, policy), steps };
}
