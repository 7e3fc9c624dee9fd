/**
 * What to watch: a CloudWatch dashboard of the request queue (visible, in flight, age of the oldest
 * message), the app tier (in service, desired, pending), backlog per instance (the very metric math
 * the target tracking policy follows, from scaling/aws/aws-requests.ts, with its target), the
 * dead-letter queue, the load balancer and the scaling controller's heartbeat; and three alarms: a
 * dead letter arrived, a message has waited too long, and no scaling controller has been alive for
 * five minutes (the CloudWatch policies scale the app tier on their own meanwhile, minutes slower).
 * All three notify the alarm topic, which `alarms.email` subscribes to; the Auto Scaling groups tell
 * it when an instance fails to launch or to terminate, and tell an events topic (no subscriber by
 * default: subscribe a queue or a chat hook to it) of every launch and termination.
 */
import { Duration, type Stack } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { backlogPerInstanceQueries, HEARTBEAT, IN_SERVICE_METRIC } from '../scaling/aws/aws-requests.js';
import { type ScalingPolicy, targetBacklogPerInstance } from '../scaling/core/policy.js';
import { metricFromQueries } from './cfn.js';
import type { DeployConfig } from './config.js';

export interface Topics {
  /** Alarms and instance launch or termination failures; `alarms.email` is subscribed. */
  readonly alarms: sns.Topic;
  /** Every instance launch and termination of both groups. */
  readonly events: sns.Topic;
}

export function createTopics(stack: Stack, config: DeployConfig): Topics {
  const topic = (id: string, what: string) => {
    // Publishers must use TLS (AwsSolutions-SNS3). No server-side encryption: the notifications carry
    // names and states, not data, and CloudWatch and Auto Scaling could publish to an encrypted topic
    // only with a customer-managed KMS key (about $1 a month) whose policy lets them.
    const created = new sns.Topic(stack, id, {
      displayName: `Image recognition ${what} (${config.names.prefix})`,
      enforceSSL: true,
    });
    return created;
  };
  const alarms = topic('AlarmTopic', 'alarms');
  if (config.alarms.email !== undefined)
    alarms.addSubscription(new subscriptions.EmailSubscription(config.alarms.email));
  return { alarms, events: topic('ScalingEventsTopic', 'scaling events') };
}

/** A group's notifications: failures to the alarm topic, every launch and termination to the events topic. */
export function groupNotifications(topics: Topics): autoscaling.NotificationConfiguration[] {
  return [
    {
      topic: topics.alarms,
      scalingEvents: new autoscaling.ScalingEvents(
        autoscaling.ScalingEvent.INSTANCE_LAUNCH_ERROR,
        autoscaling.ScalingEvent.INSTANCE_TERMINATE_ERROR,
      ),
    },
    {
      topic: topics.events,
      scalingEvents: new autoscaling.ScalingEvents(
        autoscaling.ScalingEvent.INSTANCE_LAUNCH,
        autoscaling.ScalingEvent.INSTANCE_TERMINATE,
      ),
    },
  ];
}

export interface MonitoringProps {
  readonly config: DeployConfig;
  readonly policy: ScalingPolicy;
  readonly requestQueue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  readonly appTierGroupName: string;
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly topics: Topics;
}

export interface Monitoring {
  readonly dashboardName: string;
  readonly deadLettersAlarm: cloudwatch.Alarm;
  readonly oldestMessageAlarm: cloudwatch.Alarm;
  readonly controllerSilentAlarm: cloudwatch.Alarm;
}

const MINUTE = Duration.minutes(1);

export function addMonitoring(stack: Stack, props: MonitoringProps): Monitoring {
  const { config, policy, requestQueue, deadLetterQueue, appTierGroupName } = props;
  const prefix = config.names.prefix;
  const groupMetric = (metricName: string, label: string) =>
    new cloudwatch.Metric({
      namespace: 'AWS/AutoScaling',
      metricName,
      dimensionsMap: { AutoScalingGroupName: appTierGroupName },
      statistic: 'Maximum',
      period: MINUTE,
      label,
    });

  const visible = requestQueue.metricApproximateNumberOfMessagesVisible({
    statistic: 'Maximum',
    period: MINUTE,
    label: 'Visible (waiting)',
  });
  const inFlight = requestQueue.metricApproximateNumberOfMessagesNotVisible({
    statistic: 'Maximum',
    period: MINUTE,
    label: 'In flight',
  });
  const oldest = requestQueue.metricApproximateAgeOfOldestMessage({
    statistic: 'Maximum',
    period: MINUTE,
    label: 'Age of the oldest message (s)',
  });
  const deadLetters = deadLetterQueue.metricApproximateNumberOfMessagesVisible({
    statistic: 'Maximum',
    period: MINUTE,
    label: 'Dead letters',
  });
  const backlog = metricFromQueries(
    backlogPerInstanceQueries({ asg: appTierGroupName, queueName: config.names.requestQueue }),
    MINUTE,
  );
  const alb = props.loadBalancer.metrics;
  const heartbeats = new cloudwatch.Metric({
    namespace: HEARTBEAT.namespace,
    metricName: HEARTBEAT.metricName,
    dimensionsMap: { AutoScalingGroupName: appTierGroupName },
    statistic: 'SampleCount',
    period: MINUTE,
  });

  const dashboardName = `${prefix}-service`;
  const dashboard = new cloudwatch.Dashboard(stack, 'Dashboard', { dashboardName, defaultInterval: Duration.hours(3) });
  dashboard.addWidgets(
    new cloudwatch.GraphWidget({ title: 'Request queue', left: [visible, inFlight], width: 8 }),
    new cloudwatch.GraphWidget({
      title: 'Age of the oldest message',
      left: [oldest],
      leftAnnotations: [{ value: config.alarms.oldestMessageSeconds, label: 'alarm', color: cloudwatch.Color.RED }],
      width: 8,
    }),
    new cloudwatch.GraphWidget({ title: 'Dead-letter queue', left: [deadLetters], width: 8 }),
  );
  dashboard.addWidgets(
    new cloudwatch.GraphWidget({
      title: 'App tier instances',
      left: [
        groupMetric(IN_SERVICE_METRIC, 'In service'),
        groupMetric('GroupDesiredCapacity', 'Desired'),
        groupMetric('GroupPendingInstances', 'Pending'),
      ],
      width: 8,
    }),
    new cloudwatch.GraphWidget({
      title: 'Backlog per instance (target tracking)',
      left: [backlog],
      leftAnnotations: [{ value: targetBacklogPerInstance(policy), label: 'target', color: cloudwatch.Color.GREEN }],
      width: 8,
    }),
    new cloudwatch.GraphWidget({
      title: 'Scaling controller heartbeats (none: the CloudWatch policies scale)',
      left: [heartbeats.with({ label: 'Heartbeats per minute' })],
      width: 8,
    }),
    new cloudwatch.GraphWidget({
      title: 'Load balancer',
      left: [
        alb.requestCount({ period: MINUTE, label: 'Requests' }),
        alb.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, { period: MINUTE, label: 'Web tier 5xx' }),
      ],
      right: [alb.targetResponseTime({ statistic: 'p95', period: MINUTE, label: 'Response time p95 (s)' })],
      width: 8,
    }),
  );

  // Alarms on the plain metrics (a label would turn them into metric-math alarms).
  const deadLettersAlarm = deadLetterQueue
    .metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: MINUTE })
    .createAlarm(stack, 'DeadLettersAlarm', {
      alarmName: `${prefix}-dead-letters`,
      alarmDescription: `A request failed ${config.queue.maxReceives} deliveries and is in ${config.names.deadLetterQueue}; npm run replay -- --dlq re-drives it after a fix`,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  const oldestMessageAlarm = requestQueue
    .metricApproximateAgeOfOldestMessage({ statistic: 'Maximum', period: MINUTE })
    .createAlarm(stack, 'OldestMessageAlarm', {
      alarmName: `${prefix}-oldest-message`,
      alarmDescription: `A request has waited ${config.alarms.oldestMessageSeconds} s or more in ${config.names.requestQueue}: the app tier is not keeping up (or not starting)`,
      threshold: config.alarms.oldestMessageSeconds,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  // The policies take over on their own (docs/scaling.md › One scaling authority), but slower: say so.
  const controllerSilentAlarm = heartbeats.createAlarm(stack, 'ControllerSilentAlarm', {
    alarmName: `${prefix}-scaling-controller-silent`,
    alarmDescription: `No scaling controller in the web tier has sent a heartbeat for 5 minutes: the CloudWatch policies of ${appTierGroupName} scale it on their own (minutes, not seconds). Look at the web tier's logs (component autoscaler, heartbeat)`,
    threshold: 1,
    evaluationPeriods: 5,
    datapointsToAlarm: 5,
    comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    // No datapoint is exactly what a silent controller looks like.
    treatMissingData: cloudwatch.TreatMissingData.BREACHING,
  });
  for (const alarm of [deadLettersAlarm, oldestMessageAlarm, controllerSilentAlarm])
    alarm.addAlarmAction(new actions.SnsAction(props.topics.alarms));
  return { dashboardName, deadLettersAlarm, oldestMessageAlarm, controllerSilentAlarm };
}
