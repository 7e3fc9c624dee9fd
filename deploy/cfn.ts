/**
 * From the scaling setup's requests to CloudFormation: `npm run scaling:setup` sends
 * PutScalingPolicy / PutMetricAlarm inputs built by scaling/aws/aws-requests.ts; the stack turns
 * the very same inputs into L1 resources. The CloudFormation properties of
 * AWS::AutoScaling::ScalingPolicy and AWS::CloudWatch::Alarm have the API's shapes and names, so the
 * translation is mechanical (camelCase keys for the L1 props, which CDK renders back as the API's);
 * the tests compare the synthesized template with the builders' output.
 *
 * (CDK's L2 `scaleToTrackMetric` cannot express the backlog-per-instance metric math, aws-cdk
 * issue 34072: hence the L1 resources.)
 */
import type { PutScalingPolicyCommandInput } from '@aws-sdk/client-auto-scaling';
import type { PutMetricAlarmCommandInput } from '@aws-sdk/client-cloudwatch';
import { Duration } from 'aws-cdk-lib';
import type { CfnScalingPolicyProps } from 'aws-cdk-lib/aws-autoscaling';
import { type CfnAlarmProps, type IMetric, MathExpression, Metric } from 'aws-cdk-lib/aws-cloudwatch';

/** `{ MetricStat: { Period: 60 } }` → `{ metricStat: { period: 60 } }`, all the way down. */
function camelKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => [key.charAt(0).toLowerCase() + key.slice(1), camelKeys(inner)]),
  );
}

/**
 * A scaling policy resource from a PutScalingPolicy input. CloudFormation names the policy itself
 * (there is no PolicyName property); everything else is carried over.
 */
export function cfnScalingPolicyProps(input: PutScalingPolicyCommandInput): CfnScalingPolicyProps {
  const { PolicyName: _named, ...rest } = input;
  return camelKeys(rest) as CfnScalingPolicyProps;
}

/** An alarm resource from a PutMetricAlarm input, whole. */
export function cfnAlarmProps(input: PutMetricAlarmCommandInput): CfnAlarmProps {
  return camelKeys(input) as CfnAlarmProps;
}

/** A metric query as both APIs write it (CloudWatch's MetricQuery, Auto Scaling's TargetTrackingMetricQuery). */
export interface MetricQuery {
  readonly Id?: string | undefined;
  readonly Label?: string | undefined;
  readonly Expression?: string | undefined;
  readonly ReturnData?: boolean | undefined;
  readonly MetricStat?:
    | {
        readonly Metric?:
          | {
              readonly Namespace?: string | undefined;
              readonly MetricName?: string | undefined;
              readonly Dimensions?:
                | readonly { readonly Name?: string | undefined; readonly Value?: string | undefined }[]
                | undefined;
            }
          | undefined;
        readonly Stat?: string | undefined;
        readonly Period?: number | undefined;
      }
    | undefined;
}

/**
 * A graph line from the builders' metric queries: the query that returns data, as a CDK metric
 * (a math expression over the others, or a single metric), with `period` where the query has none.
 */
export function metricFromQueries(queries: readonly MetricQuery[], period: Duration): IMetric {
  const single = (q: MetricQuery): Metric => {
    const stat = q.MetricStat;
    if (!stat?.Metric?.Namespace || !stat.Metric.MetricName || !stat.Stat)
      throw new TypeError(`metric query ${q.Id ?? '?'} has no metric`);
    return new Metric({
      namespace: stat.Metric.Namespace,
      metricName: stat.Metric.MetricName,
      dimensionsMap: Object.fromEntries((stat.Metric.Dimensions ?? []).map((d) => [d.Name ?? '', d.Value ?? ''])),
      statistic: stat.Stat,
      period: stat.Period === undefined ? period : Duration.seconds(stat.Period),
      ...(q.Label === undefined ? {} : { label: q.Label }),
    });
  };
  const returned = queries.filter((q) => q.ReturnData !== false);
  const result = returned[0];
  if (returned.length !== 1 || result === undefined) throw new TypeError('exactly one metric query must return data');
  if (result.Expression === undefined) return single(result);
  return new MathExpression({
    expression: result.Expression,
    usingMetrics: Object.fromEntries(queries.filter((q) => q !== result).map((q) => [q.Id ?? '', single(q)])),
    period,
    ...(result.Label === undefined ? {} : { label: result.Label }),
  });
}
