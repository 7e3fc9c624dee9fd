import {
  AutoScalingClient,
  type AutoScalingGroup,
  DeletePolicyCommand,
  DescribeAutoScalingGroupsCommand,
  DescribePoliciesCommand,
  DisableMetricsCollectionCommand,
  EnableMetricsCollectionCommand,
  PutScalingPolicyCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  CloudWatchClient,
  DeleteAlarmsCommand,
  DescribeAlarmsCommand,
  PutMetricAlarmCommand,
  type PutMetricAlarmCommandInput,
} from '@aws-sdk/client-cloudwatch';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import test from 'ava';
import { mockClient } from 'aws-sdk-client-mock';
import { createControlClients } from '../lib/aws/clients.js';
import { captureLogs, createLogger, type Logger, silentLogger } from '../lib/log.js';
import { createExecutor } from '../scaling/aws/aws-exec.js';
import { iamBundle } from '../scaling/aws/iam.js';
import { runSetup, runTeardown, type SetupContext } from '../scaling/aws/setup.js';
import { setupMain } from '../scaling/aws/setup-cli.js';
import { ScalingError } from '../scaling/core/errors.js';
import { DEFAULT_POLICY, resolvePolicy } from '../scaling/core/policy.js';

// Class-level mocks (every client instance is mocked), so tests in this file run serially.
const asMock = mockClient(AutoScalingClient);
const cwMock = mockClient(CloudWatchClient);
const sqsMock = mockClient(SQSClient);

const ASG = 'web-app-tier';
const QUEUE = 'image-requests';
const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/image-requests';
const QUEUE_ARN = 'arn:aws:sqs:us-east-1:123456789012:image-requests';
const ARN = (name: string) =>
  `arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:uuid:autoScalingGroupName/${ASG}:policyName/${name}`;
const TT = `${ASG}-sqs-backlog-target-tracking`;
const FZ = `${ASG}-sqs-scale-from-zero`;
const TZ = `${ASG}-sqs-scale-to-zero`;

const ctx: SetupContext = {
  asg: ASG,
  queue: { name: QUEUE, url: undefined },
  policy: DEFAULT_POLICY,
  region: 'us-east-1',
};
const executor = () => createExecutor(createControlClients('us-east-1'));

/** A logger whose JSON lines are kept (parsed) instead of written, until `restore()`. */
function capturedLogger(): { readonly logger: Logger; readonly lines: Record<string, unknown>[]; restore(): void } {
  const lines: Record<string, unknown>[] = [];
  const restore = captureLogs((line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  return { logger: createLogger('test-scaling-setup'), lines, restore };
}

function group(enabledMetrics: string[] = []): AutoScalingGroup {
  return {
    AutoScalingGroupName: ASG,
    MinSize: 0,
    MaxSize: 10,
    DesiredCapacity: 0,
    DefaultCooldown: 300,
    AvailabilityZones: ['us-east-1a'],
    HealthCheckType: 'EC2',
    CreatedTime: new Date(0),
    EnabledMetrics: enabledMetrics.map((Metric) => ({ Metric, Granularity: '1Minute' })),
  };
}

/** Mocks an account where the group and queue exist; `installed` adds what a setup leaves behind. */
function mockAccount(
  opts: {
    enabledMetrics?: string[];
    policies?: string[];
    alarms?: { AlarmName: string; AlarmDescription?: string }[];
  } = {},
) {
  asMock.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [group(opts.enabledMetrics)] });
  asMock.on(DescribePoliciesCommand).resolves({
    ScalingPolicies: (opts.policies ?? []).map((PolicyName) => ({ PolicyName, PolicyARN: ARN(PolicyName) })),
  });
  asMock.on(EnableMetricsCollectionCommand).resolves({});
  asMock.on(DisableMetricsCollectionCommand).resolves({});
  asMock.on(DeletePolicyCommand).resolves({});
  for (const name of [TT, FZ, TZ])
    asMock.on(PutScalingPolicyCommand, { PolicyName: name }).resolves({ PolicyARN: ARN(name) });
  cwMock.on(DescribeAlarmsCommand).resolves({ MetricAlarms: opts.alarms ?? [] });
  cwMock.on(PutMetricAlarmCommand).resolves({});
  cwMock.on(DeleteAlarmsCommand).resolves({});
  sqsMock.on(GetQueueUrlCommand).resolves({ QueueUrl: QUEUE_URL });
  sqsMock.on(GetQueueAttributesCommand).resolves({ Attributes: { QueueArn: QUEUE_ARN } });
}

/** Every call a mock received: SDK command class name + input, in order. */
function sequence(mock: { calls(): { args: unknown[] }[] }): { command: string; input: unknown }[] {
  return mock.calls().map((call) => {
    const command = call.args[0] as { constructor: { name: string }; input: unknown };
    return { command: command.constructor.name, input: command.input };
  });
}

function awsError(name: string, message: string): Error {
  const err = new Error(message);
  err.name = name;
  return Object.assign(err, { $metadata: { httpStatusCode: 403 } });
}

test.beforeEach(() => {
  asMock.reset();
  cwMock.reset();
  sqsMock.reset();
});

// ----- Expected requests, written out literally (not via the builders under test) -----------

const visible = (stat: string, period?: number) => ({
  Metric: {
    Namespace: 'AWS/SQS',
    MetricName: 'ApproximateNumberOfMessagesVisible',
    Dimensions: [{ Name: 'QueueName', Value: QUEUE }],
  },
  ...(period === undefined ? {} : { Period: period }),
  Stat: stat,
});
const inService = (stat: string, period?: number) => ({
  Metric: {
    Namespace: 'AWS/AutoScaling',
    MetricName: 'GroupInServiceInstances',
    Dimensions: [{ Name: 'AutoScalingGroupName', Value: ASG }],
  },
  ...(period === undefined ? {} : { Period: period }),
  Stat: stat,
});

/** The scaling controller's heartbeat: every policy stands aside in a period that has one. */
const heartbeat = (period?: number) => ({
  Id: 'hb',
  Label: 'Scaling controller heartbeats',
  MetricStat: {
    Metric: {
      Namespace: 'ImageRecognition/Scaling',
      MetricName: 'ControllerHeartbeat',
      Dimensions: [{ Name: 'AutoScalingGroupName', Value: ASG }],
    },
    Stat: 'SampleCount',
    ...(period === undefined ? {} : { Period: period }),
  },
  ReturnData: false,
});

const EXPECTED_TT = {
  AutoScalingGroupName: ASG,
  PolicyName: TT,
  PolicyType: 'TargetTrackingScaling',
  EstimatedInstanceWarmup: 120,
  TargetTrackingConfiguration: {
    TargetValue: 10, // 30 s acceptable latency / 3 s per message × 1 message per instance
    CustomizedMetricSpecification: {
      Metrics: [
        { Id: 'm1', Label: 'Messages waiting in the queue', MetricStat: visible('Sum'), ReturnData: false },
        { Id: 'm2', Label: 'Instances in service', MetricStat: inService('Average'), ReturnData: false },
        heartbeat(),
        {
          Id: 'e1',
          Label: 'Backlog per instance (0 while a controller runs)',
          // 0 in a period with a heartbeat: nothing to scale out for, and scale-in is disabled.
          Expression: 'IF(FILL(hb, 0) > 0, 0, m1 / m2)',
          ReturnData: true,
        },
      ],
    },
    DisableScaleIn: true,
  },
};

const EXPECTED_FZ_POLICY = {
  AutoScalingGroupName: ASG,
  PolicyName: FZ,
  PolicyType: 'StepScaling',
  AdjustmentType: 'ExactCapacity',
  EstimatedInstanceWarmup: 120,
  // Alarm value v = visible messages (threshold 1), b = v − 1: v in 1..10 → 1 instance, 11..20 → 2, ... 91+ → 10.
  StepAdjustments: [
    { MetricIntervalLowerBound: 0, MetricIntervalUpperBound: 10, ScalingAdjustment: 1 },
    { MetricIntervalLowerBound: 10, MetricIntervalUpperBound: 20, ScalingAdjustment: 2 },
    { MetricIntervalLowerBound: 20, MetricIntervalUpperBound: 30, ScalingAdjustment: 3 },
    { MetricIntervalLowerBound: 30, MetricIntervalUpperBound: 40, ScalingAdjustment: 4 },
    { MetricIntervalLowerBound: 40, MetricIntervalUpperBound: 50, ScalingAdjustment: 5 },
    { MetricIntervalLowerBound: 50, MetricIntervalUpperBound: 60, ScalingAdjustment: 6 },
    { MetricIntervalLowerBound: 60, MetricIntervalUpperBound: 70, ScalingAdjustment: 7 },
    { MetricIntervalLowerBound: 70, MetricIntervalUpperBound: 80, ScalingAdjustment: 8 },
    { MetricIntervalLowerBound: 80, MetricIntervalUpperBound: 90, ScalingAdjustment: 9 },
    { MetricIntervalLowerBound: 90, ScalingAdjustment: 10 },
  ],
};

const EXPECTED_TZ_POLICY = {
  AutoScalingGroupName: ASG,
  PolicyName: TZ,
  PolicyType: 'StepScaling',
  AdjustmentType: 'ExactCapacity',
  StepAdjustments: [{ MetricIntervalUpperBound: 0, ScalingAdjustment: 0 }],
};

const owns = (metrics: string) => `owns-metrics-collection=${metrics}`;

function expectedFzAlarm(ownsMetrics: string) {
  return {
    AlarmName: FZ,
    AlarmDescription: `Managed by scaling-setup (scale out from zero instances) for Auto Scaling group ${ASG} and SQS queue ${QUEUE}; do not edit, re-run the setup. ${owns(ownsMetrics)}`,
    ActionsEnabled: true,
    AlarmActions: [ARN(FZ)],
    Metrics: [
      { Id: 'm1', Label: 'Messages waiting in the queue', MetricStat: visible('Maximum', 60), ReturnData: false },
      { Id: 'm2', Label: 'Instances in service', MetricStat: inService('Maximum', 60), ReturnData: false },
      heartbeat(60),
      {
        Id: 'e1',
        Label: 'Messages waiting while no instance is in service (0 while a controller runs)',
        Expression: 'IF(FILL(hb, 0) > 0, 0, IF(m2 == 0, m1, 0))',
        ReturnData: true,
      },
    ],
    ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    Threshold: 1,
    EvaluationPeriods: 1,
    DatapointsToAlarm: 1,
    TreatMissingData: 'notBreaching',
  };
}

function expectedTzAlarm(ownsMetrics: string) {
  return {
    AlarmName: TZ,
    AlarmDescription: `Managed by scaling-setup (scale in to 0 when the queue stays empty) for Auto Scaling group ${ASG} and SQS queue ${QUEUE}; do not edit, re-run the setup. ${owns(ownsMetrics)}`,
    ActionsEnabled: true,
    AlarmActions: [ARN(TZ)],
    Metrics: [
      { Id: 'm1', Label: 'Messages waiting in the queue', MetricStat: visible('Maximum', 60), ReturnData: false },
      {
        Id: 'm3',
        Label: 'Messages in flight',
        MetricStat: {
          Metric: {
            Namespace: 'AWS/SQS',
            MetricName: 'ApproximateNumberOfMessagesNotVisible',
            Dimensions: [{ Name: 'QueueName', Value: QUEUE }],
          },
          Period: 60,
          Stat: 'Maximum',
        },
        ReturnData: false,
      },
      heartbeat(60),
      {
        Id: 'e1',
        Label: 'Messages waiting or in flight (1 while a controller runs)',
        Expression: 'IF(FILL(hb, 0) > 0, 1, m1 + m3)',
        ReturnData: true,
      },
    ],
    ComparisonOperator: 'LessThanOrEqualToThreshold',
    Threshold: 0,
    EvaluationPeriods: 5,
    DatapointsToAlarm: 5,
    TreatMissingData: 'notBreaching',
  };
}

const DESCRIBE_CALLS = {
  group: { command: 'DescribeAutoScalingGroupsCommand', input: { AutoScalingGroupNames: [ASG] } },
  policies: { command: 'DescribePoliciesCommand', input: { AutoScalingGroupName: ASG, PolicyNames: [TT, FZ, TZ] } },
  alarms: { command: 'DescribeAlarmsCommand', input: { AlarmNames: [FZ, TZ] } },
};

// ----- Setup -----------------------------------------------------------------------------------

test.serial('setup on a fresh group sends exactly the expected requests, in order', async (t) => {
  mockAccount();
  const report = await runSetup(ctx, executor(), { logger: silentLogger });

  t.deepEqual(sequence(asMock), [
    DESCRIBE_CALLS.group,
    DESCRIBE_CALLS.policies,
    {
      command: 'EnableMetricsCollectionCommand',
      input: { AutoScalingGroupName: ASG, Metrics: ['GroupInServiceInstances'], Granularity: '1Minute' },
    },
    { command: 'PutScalingPolicyCommand', input: EXPECTED_TT },
    { command: 'PutScalingPolicyCommand', input: EXPECTED_FZ_POLICY },
    { command: 'PutScalingPolicyCommand', input: EXPECTED_TZ_POLICY },
  ]);
  t.deepEqual(sequence(cwMock), [
    DESCRIBE_CALLS.alarms,
    { command: 'PutMetricAlarmCommand', input: expectedFzAlarm('GroupInServiceInstances') },
    { command: 'PutMetricAlarmCommand', input: expectedTzAlarm('GroupInServiceInstances') },
  ]);
  t.deepEqual(sequence(sqsMock), [
    { command: 'GetQueueUrlCommand', input: { QueueName: QUEUE } },
    { command: 'GetQueueAttributesCommand', input: { QueueUrl: QUEUE_URL, AttributeNames: ['QueueArn'] } },
  ]);
  t.deepEqual(
    report.changes.map((c) => `${c.kind}:${c.name}:${c.action}`),
    [
      'metrics-collection:GroupInServiceInstances:enabled',
      `scaling-policy:${TT}:created`,
      `scaling-policy:${FZ}:created`,
      `alarm:${FZ}:created`,
      `scaling-policy:${TZ}:created`,
      `alarm:${TZ}:created`,
    ],
  );
  t.deepEqual(report.queue, { name: QUEUE, url: QUEUE_URL, arn: QUEUE_ARN });
  t.is(report.targetBacklogPerInstance, 10);
  t.is(report.requests.length, 11);
});

test.serial('a queue URL is checked with GetQueueAttributes only (no GetQueueUrl)', async (t) => {
  mockAccount();
  await runSetup({ ...ctx, queue: { name: QUEUE, url: QUEUE_URL } }, executor());
  t.deepEqual(sequence(sqsMock), [
    { command: 'GetQueueAttributesCommand', input: { QueueUrl: QUEUE_URL, AttributeNames: ['QueueArn'] } },
  ]);
});

test.serial('re-running setup updates the same resources in place: no duplicates, no enable, no deletes', async (t) => {
  mockAccount();
  await runSetup(ctx, executor());
  const firstPolicies = asMock.commandCalls(PutScalingPolicyCommand).map((c) => c.args[0].input);
  const firstAlarms = cwMock.commandCalls(PutMetricAlarmCommand).map((c) => c.args[0].input);

  // Second run: the account now holds what the first run created.
  asMock.reset();
  cwMock.reset();
  sqsMock.reset();
  mockAccount({
    enabledMetrics: ['GroupInServiceInstances'],
    policies: [TT, FZ, TZ],
    alarms: firstAlarms.map((a: PutMetricAlarmCommandInput) => ({
      AlarmName: a.AlarmName ?? '',
      AlarmDescription: a.AlarmDescription ?? '',
    })),
  });
  const report = await runSetup(ctx, executor());

  t.is(asMock.commandCalls(EnableMetricsCollectionCommand).length, 0);
  t.is(asMock.commandCalls(DeletePolicyCommand).length, 0);
  t.is(cwMock.commandCalls(DeleteAlarmsCommand).length, 0);
  const policies = asMock.commandCalls(PutScalingPolicyCommand).map((c) => c.args[0].input);
  const alarms = cwMock.commandCalls(PutMetricAlarmCommand).map((c) => c.args[0].input);
  t.deepEqual(policies, firstPolicies, 'same policy names and parameters as the first run');
  t.deepEqual(alarms, firstAlarms, 'same alarms, still recording that setup enabled the metric');
  t.deepEqual(
    report.changes.map((c) => `${c.kind}:${c.name}:${c.action}`),
    [
      'metrics-collection:GroupInServiceInstances:already-enabled',
      `scaling-policy:${TT}:updated`,
      `scaling-policy:${FZ}:updated`,
      `alarm:${FZ}:updated`,
      `scaling-policy:${TZ}:updated`,
      `alarm:${TZ}:updated`,
    ],
  );
});

test.serial('setup does not claim metrics collection that was already enabled by someone else', async (t) => {
  mockAccount({ enabledMetrics: ['GroupInServiceInstances', 'GroupDesiredCapacity'] });
  await runSetup(ctx, executor());
  t.is(asMock.commandCalls(EnableMetricsCollectionCommand).length, 0);
  t.deepEqual(
    cwMock.commandCalls(PutMetricAlarmCommand).map((c) => c.args[0].input),
    [expectedFzAlarm('none'), expectedTzAlarm('none')],
  );
});

test.serial('disabling scale-to-zero in the policy removes the alarm and policy left by an earlier run', async (t) => {
  mockAccount({
    enabledMetrics: ['GroupInServiceInstances'],
    policies: [TT, FZ, TZ],
    alarms: [
      { AlarmName: FZ, AlarmDescription: owns('GroupInServiceInstances') },
      { AlarmName: TZ, AlarmDescription: owns('GroupInServiceInstances') },
    ],
  });
  const policy = resolvePolicy({ scaleToZero: { enabled: false } });
  await runSetup({ ...ctx, policy }, executor());
  t.deepEqual(
    asMock.commandCalls(PutScalingPolicyCommand).map((c) => c.args[0].input.PolicyName),
    [TT, FZ],
  );
  t.deepEqual(sequence(cwMock).slice(1), [
    { command: 'PutMetricAlarmCommand', input: expectedFzAlarm('GroupInServiceInstances') },
    { command: 'DeleteAlarmsCommand', input: { AlarmNames: [TZ] } },
  ]);
  t.deepEqual(
    asMock.commandCalls(DeletePolicyCommand).map((c) => c.args[0].input),
    [{ AutoScalingGroupName: ASG, PolicyName: TZ }],
  );
});

// ----- Teardown --------------------------------------------------------------------------------

test.serial('teardown deletes exactly the setup alarms, the three policies and the metric it enabled', async (t) => {
  mockAccount({
    enabledMetrics: ['GroupInServiceInstances', 'GroupDesiredCapacity'],
    policies: [TT, FZ, TZ],
    alarms: [
      { AlarmName: FZ, AlarmDescription: `... ${owns('GroupInServiceInstances')}` },
      { AlarmName: TZ, AlarmDescription: `... ${owns('GroupInServiceInstances')}` },
      // Not ours (would never match AlarmNames, but must be ignored even if returned).
      { AlarmName: `TargetTracking-${ASG}-AlarmHigh-1234` },
    ],
  });
  const report = await runTeardown({ asg: ASG }, executor());

  t.deepEqual(sequence(asMock), [
    DESCRIBE_CALLS.group,
    DESCRIBE_CALLS.policies,
    { command: 'DeletePolicyCommand', input: { AutoScalingGroupName: ASG, PolicyName: TT } },
    { command: 'DeletePolicyCommand', input: { AutoScalingGroupName: ASG, PolicyName: FZ } },
    { command: 'DeletePolicyCommand', input: { AutoScalingGroupName: ASG, PolicyName: TZ } },
    {
      command: 'DisableMetricsCollectionCommand',
      input: { AutoScalingGroupName: ASG, Metrics: ['GroupInServiceInstances'] },
    },
  ]);
  t.deepEqual(sequence(cwMock), [
    DESCRIBE_CALLS.alarms,
    { command: 'DeleteAlarmsCommand', input: { AlarmNames: [FZ, TZ] } },
  ]);
  t.is(sqsMock.calls().length, 0, 'teardown does not need the queue');
  t.deepEqual(
    report.changes.map((c) => `${c.kind}:${c.name}:${c.action}`),
    [
      `alarm:${FZ}:deleted`,
      `alarm:${TZ}:deleted`,
      `scaling-policy:${TT}:deleted`,
      `scaling-policy:${FZ}:deleted`,
      `scaling-policy:${TZ}:deleted`,
      'metrics-collection:GroupInServiceInstances:disabled',
    ],
  );
});

test.serial(
  'teardown leaves metrics collection alone when setup did not enable it, and skips what is gone',
  async (t) => {
    mockAccount({
      enabledMetrics: ['GroupInServiceInstances'],
      policies: [TT],
      alarms: [{ AlarmName: FZ, AlarmDescription: owns('none') }],
    });
    const report = await runTeardown({ asg: ASG }, executor());
    t.is(asMock.commandCalls(DisableMetricsCollectionCommand).length, 0);
    t.deepEqual(
      asMock.commandCalls(DeletePolicyCommand).map((c) => c.args[0].input),
      [{ AutoScalingGroupName: ASG, PolicyName: TT }],
    );
    t.deepEqual(
      cwMock.commandCalls(DeleteAlarmsCommand).map((c) => c.args[0].input),
      [{ AlarmNames: [FZ] }],
    );
    t.true(report.changes.some((c) => c.kind === 'metrics-collection' && c.action === 'left-enabled'));
  },
);

// ----- Dry run ---------------------------------------------------------------------------------

test.serial('--dry-run prints every request as JSON and sends nothing', async (t) => {
  mockAccount();
  const out: string[] = [];
  let executorBuilt = false;
  const code = await setupMain(['--asg', ASG, '--queue', QUEUE, '--dry-run'], {
    stdout: (s) => out.push(s),
    stderr: () => {},
    logger: silentLogger,
    executorFor: () => {
      executorBuilt = true;
      return executor();
    },
  });
  t.is(code, 0);
  t.false(executorBuilt);
  t.is(asMock.calls().length, 0);
  t.is(cwMock.calls().length, 0);
  t.is(sqsMock.calls().length, 0);

  const printed = JSON.parse(out.join('\n')) as {
    dryRun: boolean;
    requests: { command: string; input: Record<string, unknown> }[];
  };
  t.true(printed.dryRun);
  t.deepEqual(
    printed.requests.map((r) => r.command),
    [
      'DescribeAutoScalingGroupsCommand',
      'GetQueueUrlCommand',
      'GetQueueAttributesCommand',
      'DescribePoliciesCommand',
      'DescribeAlarmsCommand',
      'EnableMetricsCollectionCommand',
      'PutScalingPolicyCommand',
      'PutScalingPolicyCommand',
      'PutMetricAlarmCommand',
      'PutScalingPolicyCommand',
      'PutMetricAlarmCommand',
    ],
  );
  t.deepEqual(printed.requests[6]?.input, EXPECTED_TT);
  t.deepEqual(printed.requests[7]?.input, EXPECTED_FZ_POLICY);
  t.deepEqual(printed.requests[8]?.input.AlarmActions, [`<PolicyARN returned by PutScalingPolicy ${FZ}>`]);
});

test.serial('--teardown --dry-run prints the deletions and sends nothing', async (t) => {
  mockAccount();
  const report = await runTeardown({ asg: ASG }, executor(), { dryRun: true });
  t.is(asMock.calls().length + cwMock.calls().length + sqsMock.calls().length, 0);
  t.deepEqual(
    report.requests.filter((r) => !r.command.startsWith('Describe')).map((r) => [r.command, r.input]),
    [
      ['DeleteAlarmsCommand', { AlarmNames: [FZ, TZ] }],
      ['DeletePolicyCommand', { AutoScalingGroupName: ASG, PolicyName: TT }],
      ['DeletePolicyCommand', { AutoScalingGroupName: ASG, PolicyName: FZ }],
      ['DeletePolicyCommand', { AutoScalingGroupName: ASG, PolicyName: TZ }],
      ['DisableMetricsCollectionCommand', { AutoScalingGroupName: ASG, Metrics: ['GroupInServiceInstances'] }],
    ],
  );
});

// ----- Failures --------------------------------------------------------------------------------

test.serial('a missing group is a GROUP_NOT_FOUND error and nothing is written', async (t) => {
  mockAccount();
  asMock.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [] });
  const err = await t.throwsAsync(runSetup(ctx, executor()), { instanceOf: ScalingError });
  t.is(err.code, 'GROUP_NOT_FOUND');
  t.is(err.context.asg, ASG);
  t.regex(err.message, /Auto Scaling group "web-app-tier" was not found in us-east-1/);
  t.deepEqual(
    sequence(asMock).map((c) => c.command),
    ['DescribeAutoScalingGroupsCommand'],
  );
  t.is(cwMock.calls().length, 0);
  t.is(sqsMock.calls().length, 0);
});

test.serial('a missing queue (by name) is a QUEUE_NOT_FOUND error and nothing is written', async (t) => {
  mockAccount();
  sqsMock.on(GetQueueUrlCommand).rejects(awsError('QueueDoesNotExist', 'The specified queue does not exist.'));
  const err = await t.throwsAsync(runSetup(ctx, executor()), { instanceOf: ScalingError });
  t.is(err.code, 'QUEUE_NOT_FOUND');
  t.is(err.context.queue, QUEUE);
  t.deepEqual(
    sequence(asMock).map((c) => c.command),
    ['DescribeAutoScalingGroupsCommand'],
  );
  t.is(cwMock.calls().length, 0);
});

test.serial('a missing queue (by URL, legacy error code) is a QUEUE_NOT_FOUND error', async (t) => {
  mockAccount();
  sqsMock
    .on(GetQueueAttributesCommand)
    .rejects(awsError('AWS.SimpleQueueService.NonExistentQueue', 'The specified queue does not exist.'));
  const err = await t.throwsAsync(runSetup({ ...ctx, queue: { name: QUEUE, url: QUEUE_URL } }, executor()), {
    instanceOf: ScalingError,
  });
  t.is(err.code, 'QUEUE_NOT_FOUND');
  t.is(err.context.queueUrl, QUEUE_URL);
  t.is(asMock.commandCalls(PutScalingPolicyCommand).length, 0);
});

test.serial('AccessDenied names the IAM action from the message and stops before later writes', async (t) => {
  mockAccount();
  asMock
    .on(PutScalingPolicyCommand)
    .rejects(
      awsError(
        'AccessDenied',
        'User: arn:aws:sts::123456789012:assumed-role/ci/session is not authorized to perform: autoscaling:PutScalingPolicy on resource: arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:*:autoScalingGroupName/web-app-tier because no identity-based policy allows the autoscaling:PutScalingPolicy action',
      ),
    );
  const err = await t.throwsAsync(runSetup(ctx, executor()), { instanceOf: ScalingError });
  t.is(err.code, 'ACCESS_DENIED');
  t.is(err.context.action, 'autoscaling:PutScalingPolicy');
  t.is(err.context.command, 'PutScalingPolicyCommand');
  t.regex(err.message, /lacks the IAM permission "autoscaling:PutScalingPolicy"/);
  t.deepEqual(err.context.requestsMade, [
    'DescribeAutoScalingGroupsCommand',
    'GetQueueUrlCommand',
    'GetQueueAttributesCommand',
    'DescribePoliciesCommand',
    'DescribeAlarmsCommand',
    'EnableMetricsCollectionCommand',
    'PutScalingPolicyCommand',
  ]);
  t.is(cwMock.commandCalls(PutMetricAlarmCommand).length, 0);
});

test.serial('the action named in the message wins over the request that failed', async (t) => {
  // e.g. creating a target tracking policy can be refused for the CloudWatch alarm it implies.
  mockAccount();
  asMock
    .on(PutScalingPolicyCommand, { PolicyName: TT })
    .rejects(
      awsError(
        'AccessDenied',
        'User: arn:aws:iam::123456789012:user/ops is not authorized to perform: cloudwatch:PutMetricAlarm on resource: arn:aws:cloudwatch:us-east-1:123456789012:alarm:TargetTracking-web-app-tier-AlarmHigh',
      ),
    );
  const err = await t.throwsAsync(runSetup(ctx, executor()), { instanceOf: ScalingError });
  t.is(err.code, 'ACCESS_DENIED');
  t.is(err.context.action, 'cloudwatch:PutMetricAlarm');
  t.is(err.context.command, 'PutScalingPolicyCommand');
});

for (const [label, name, mockSetup, action] of [
  [
    'AccessDenied without a parseable message',
    'AccessDenied',
    () => cwMock.on(PutMetricAlarmCommand).rejects(awsError('AccessDenied', 'Access denied')),
    'cloudwatch:PutMetricAlarm',
  ],
  [
    'AccessDeniedException from SQS',
    'AccessDeniedException',
    () =>
      sqsMock.on(GetQueueUrlCommand).rejects(awsError('AccessDeniedException', 'Access to the resource is denied.')),
    'sqs:GetQueueUrl',
  ],
  [
    'UnauthorizedOperation',
    'UnauthorizedOperation',
    () =>
      asMock
        .on(EnableMetricsCollectionCommand)
        .rejects(awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.')),
    'autoscaling:EnableMetricsCollection',
  ],
] as const) {
  test.serial(`${label} becomes ACCESS_DENIED naming ${action}`, async (t) => {
    mockAccount();
    mockSetup();
    const err = await t.throwsAsync(runSetup(ctx, executor()), { instanceOf: ScalingError });
    t.is(err.code, 'ACCESS_DENIED');
    t.is(err.context.action, action);
    t.is(err.context.awsErrorName, name);
    t.true(err.message.includes(action));
  });
}

test.serial('the CLI exits 1 on AccessDenied and logs the missing action', async (t) => {
  mockAccount();
  cwMock
    .on(DescribeAlarmsCommand)
    .rejects(awsError('AccessDenied', 'User: x is not authorized to perform: cloudwatch:DescribeAlarms'));
  const { logger, lines, restore } = capturedLogger();
  const errors: string[] = [];
  let code: number;
  try {
    code = await setupMain(['--asg', ASG, '--queue', QUEUE, '--region', 'us-east-1'], {
      stdout: () => {},
      stderr: (s) => errors.push(s),
      logger,
      executorFor: executor,
    });
  } finally {
    restore();
  }
  t.is(code, 1);
  t.true(errors.join('\n').includes('cloudwatch:DescribeAlarms'));
  const failed = lines.find((line) => line.msg === 'scaling.setup.failed');
  t.like(failed?.error, { code: 'ACCESS_DENIED', context: { action: 'cloudwatch:DescribeAlarms' } });
  t.is(asMock.commandCalls(PutScalingPolicyCommand).length, 0);
});

test.serial('other AWS errors stay typed (AWS_ERROR) with the command and error name', async (t) => {
  mockAccount();
  asMock.on(PutScalingPolicyCommand).rejects(awsError('ValidationError', 'bad step adjustments'));
  const err = await t.throwsAsync(runSetup(ctx, executor()), { instanceOf: ScalingError });
  t.is(err.code, 'AWS_ERROR');
  t.like(err.context, { command: 'PutScalingPolicyCommand', awsErrorName: 'ValidationError' });
});

test.serial('a policy AWS cannot express is rejected before any request', async (t) => {
  mockAccount();
  const policy = resolvePolicy({ periodSeconds: 30 });
  const err = await t.throwsAsync(runSetup({ ...ctx, policy }, executor()), { instanceOf: ScalingError });
  t.is(err.code, 'INVALID_POLICY');
  t.is(err.context.field, 'periodSeconds');
  t.is(asMock.calls().length, 0);
});

// ----- IAM -------------------------------------------------------------------------------------

test.serial('the setup IAM policy grants every action setup and teardown use, and nothing else', async (t) => {
  const setup = await runSetup(ctx, executor(), { dryRun: true });
  const teardown = await runTeardown({ asg: ASG }, executor(), { dryRun: true });
  const used = new Set([...setup.requests, ...teardown.requests].map((r) => r.iamAction));
  const granted = new Set(iamBundle({ asg: ASG, queue: QUEUE }).setup.Statement.flatMap((s) => s.Action));
  t.deepEqual([...granted].sort(), [...used].sort());
});

test.serial('--print-iam scopes resources and fills in known names', async (t) => {
  const out: string[] = [];
  const code = await setupMain(
    [
      '--print-iam',
      '--asg',
      ASG,
      '--queue',
      QUEUE,
      '--region',
      'eu-west-1',
      '--input-bucket',
      'images-in',
      '--output-bucket',
      'results-out',
    ],
    { stdout: (s) => out.push(s), logger: silentLogger },
  );
  t.is(code, 0);
  const bundle = JSON.parse(out.join('\n')) as ReturnType<typeof iamBundle>;
  const byId = (doc: typeof bundle.setup, sid: string) => doc.Statement.find((s) => s.Sid === sid);
  t.is(
    byId(bundle.setup, 'ManageScalingOfTheAppTierGroup')?.Resource,
    `arn:aws:autoscaling:eu-west-1:<ACCOUNT_ID>:autoScalingGroup:*:autoScalingGroupName/${ASG}`,
  );
  t.deepEqual(byId(bundle.setup, 'ManageTheSetupAlarms')?.Resource, [
    `arn:aws:cloudwatch:eu-west-1:<ACCOUNT_ID>:alarm:${FZ}`,
    `arn:aws:cloudwatch:eu-west-1:<ACCOUNT_ID>:alarm:${TZ}`,
  ]);
  t.deepEqual(byId(bundle.appTierInstanceRole, 'ConsumeRequests'), {
    Sid: 'ConsumeRequests',
    Effect: 'Allow',
    Action: [
      'sqs:ReceiveMessage',
      'sqs:DeleteMessage',
      'sqs:ChangeMessageVisibility',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
    ],
    Resource: `arn:aws:sqs:eu-west-1:<ACCOUNT_ID>:${QUEUE}`,
  });
  t.is(byId(bundle.appTierInstanceRole, 'ReadInputImages')?.Resource, 'arn:aws:s3:::images-in/*');
  t.deepEqual(byId(bundle.appTierInstanceRole, 'WriteResults')?.Action, ['s3:PutObject']);
  t.is(
    byId(bundle.appTierInstanceRole, 'PublishResults')?.Resource,
    'arn:aws:sqs:eu-west-1:<ACCOUNT_ID>:<RESPONSE_QUEUE_NAME>',
  );
  t.false(JSON.stringify(bundle).includes('"*:*"'));
});

test.serial('bad options exit 2 and name the flag', async (t) => {
  const { logger, lines, restore } = capturedLogger();
  let code: number;
  let code2: number;
  try {
    code = await setupMain(['--queue', QUEUE], { stdout: () => {}, stderr: () => {}, logger });
    code2 = await setupMain(
      ['--asg', ASG, '--queue', 'https://sqs.eu-west-1.amazonaws.com/1/q', '--region', 'us-east-1'],
      {
        stdout: () => {},
        stderr: () => {},
        logger,
      },
    );
  } finally {
    restore();
  }
  t.is(code, 2);
  t.like(lines[0]?.error, { code: 'INVALID_OPTIONS', context: { option: '--asg' } });
  t.is(code2, 2);
  t.is(asMock.calls().length, 0);
});
