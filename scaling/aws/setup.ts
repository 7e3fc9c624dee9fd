/**
 * Sets up (or tears down) SQS-driven scaling for the app-tier Auto Scaling group:
 * target tracking on backlog per instance, plus the scale-from-zero and scale-to-zero alarms.
 * See `aws-requests.ts` for exactly what is created.
 *
 * One code path serves real runs and `--dry-run`: a dry run swaps the executor for a planner that
 * sends nothing, records each request and answers with placeholder responses (a fresh install for
 * setup, a complete install for teardown).
 */

import type { AutoScalingGroup } from '@aws-sdk/client-auto-scaling';
import type { MetricAlarm } from '@aws-sdk/client-cloudwatch';
import { isQueueMissing as isMissingQueueError } from '../../lib/aws/errors.js';
import { type Logger, silentLogger } from '../../lib/log.js';
import { ScalingError } from '../core/errors.js';
import { type ScalingPolicy, targetBacklogPerInstance } from '../core/policy.js';
import { type Executor, type RecordedRequest, type RequestMap, type RequestName, recordRequest } from './aws-exec.js';
import * as req from './aws-requests.js';

/** The queue as given on the command line: a name, or a URL (whose last segment is the name). */
export interface QueueRef {
  readonly name: string;
  readonly url: string | undefined;
}

export interface SetupContext {
  readonly asg: string;
  readonly queue: QueueRef;
  readonly policy: ScalingPolicy;
  readonly region?: string | undefined;
}

export interface TeardownContext {
  readonly asg: string;
}

export type ResourceKind = 'metrics-collection' | 'scaling-policy' | 'alarm';
export type ChangeAction =
  | 'created'
  | 'updated'
  | 'deleted'
  | 'enabled'
  | 'already-enabled'
  | 'disabled'
  | 'left-enabled';

export interface ResourceChange {
  readonly kind: ResourceKind;
  readonly name: string;
  readonly action: ChangeAction;
  readonly arn?: string;
}

export interface SetupReport {
  readonly operation: 'setup' | 'teardown';
  readonly dryRun: boolean;
  readonly asg: string;
  readonly queue?: { readonly name: string; readonly url: string; readonly arn: string };
  readonly targetBacklogPerInstance?: number;
  readonly changes: ResourceChange[];
  readonly warnings: string[];
  /** Every request sent (or, in a dry run, that would be sent), in order. */
  readonly requests: RecordedRequest[];
}

// ---------------------------------------------------------------------------------------------
// Executors: recording wrapper and dry-run planner
// ---------------------------------------------------------------------------------------------

function recording(inner: Executor, log: RecordedRequest[], logger: Logger): Executor {
  return {
    async send<K extends RequestName>(name: K, input: RequestMap[K]['input']): Promise<RequestMap[K]['output']> {
      const recorded = recordRequest(name, input);
      log.push(recorded);
      logger.debug('aws.request', { command: recorded.command });
      return inner.send(name, input);
    },
  };
}

const META = { $metadata: {} };
export const PLACEHOLDER_ACCOUNT = '<ACCOUNT_ID>';

function placeholderArn(policyName: string): string {
  return `<PolicyARN returned by PutScalingPolicy ${policyName}>`;
}

/**
 * A dry-run executor: sends nothing and answers like an account where the group and queue exist and
 * either nothing of ours exists yet (`fresh`) or everything does (`installed`, for teardown).
 */
export function planningExecutor(state: 'fresh' | 'installed', asg: string): Executor {
  const names = req.resourceNames(asg);
  const installed = state === 'installed';
  type Responders = { [K in RequestName]: (input: RequestMap[K]['input']) => RequestMap[K]['output'] };
  const responders: Responders = {
    DescribeAutoScalingGroups: () => ({
      ...META,
      AutoScalingGroups: [
        {
          AutoScalingGroupName: asg,
          MinSize: undefined,
          MaxSize: undefined,
          DesiredCapacity: undefined,
          DefaultCooldown: undefined,
          AvailabilityZones: undefined,
          HealthCheckType: undefined,
          CreatedTime: undefined,
          EnabledMetrics: installed ? [{ Metric: req.IN_SERVICE_METRIC, Granularity: '1Minute' }] : [],
        },
      ],
    }),
    DescribePolicies: () => ({
      ...META,
      ScalingPolicies: installed
        ? req.allPolicyNames(names).map((n) => ({ PolicyName: n, PolicyARN: placeholderArn(n) }))
        : [],
    }),
    EnableMetricsCollection: () => ({ ...META }),
    DisableMetricsCollection: () => ({ ...META }),
    PutScalingPolicy: (input) => ({ ...META, PolicyARN: placeholderArn(input.PolicyName ?? '') }),
    DeletePolicy: () => ({ ...META }),
    DescribeAlarms: () => ({
      ...META,
      MetricAlarms: installed
        ? req.allAlarmNames(names).map((n) => ({
            AlarmName: n,
            AlarmDescription: `${req.OWNED_METRICS_MARKER}${req.IN_SERVICE_METRIC}`,
          }))
        : [],
    }),
    PutMetricAlarm: () => ({ ...META }),
    DeleteAlarms: () => ({ ...META }),
    GetQueueUrl: (input) => ({ ...META, QueueUrl: `<QueueUrl returned by GetQueueUrl ${input.QueueName ?? ''}>` }),
    GetQueueAttributes: () => ({ ...META, Attributes: { QueueArn: '<QueueArn returned by GetQueueAttributes>' } }),
  };
  return {
    send<K extends RequestName>(name: K, input: RequestMap[K]['input']): Promise<RequestMap[K]['output']> {
      const responder: Responders[K] = responders[name];
      return Promise.resolve(responder(input));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

async function findGroup(ex: Executor, asg: string): Promise<AutoScalingGroup | undefined> {
  const out = await ex.send('DescribeAutoScalingGroups', req.describeGroup(asg));
  return out.AutoScalingGroups?.find((g) => g.AutoScalingGroupName === asg);
}

async function requireGroup(ex: Executor, asg: string, region: string | undefined): Promise<AutoScalingGroup> {
  const group = await findGroup(ex, asg);
  if (!group) {
    throw new ScalingError(
      'GROUP_NOT_FOUND',
      `Auto Scaling group "${asg}" was not found${region ? ` in ${region}` : ''}. Check --asg and --region.`,
      { asg, region: region ?? null },
    );
  }
  return group;
}

/** An SQS call failed because the queue does not exist (the executor keeps the AWS error as the cause). */
function isQueueMissing(err: unknown): boolean {
  return err instanceof ScalingError && err.code === 'AWS_ERROR' && isMissingQueueError(err.cause);
}

async function requireQueue(
  ex: Executor,
  queue: QueueRef,
  region: string | undefined,
): Promise<{ name: string; url: string; arn: string }> {
  const missing = (cause: unknown): ScalingError =>
    new ScalingError(
      'QUEUE_NOT_FOUND',
      `SQS queue "${queue.url ?? queue.name}" was not found${region ? ` in ${region}` : ''}. Check --queue and --region.`,
      { queue: queue.name, queueUrl: queue.url ?? null, region: region ?? null },
      { cause },
    );
  try {
    let url = queue.url;
    if (url === undefined) {
      url = (await ex.send('GetQueueUrl', req.getQueueUrl(queue.name))).QueueUrl;
      if (!url) throw missing(new Error('GetQueueUrl returned no QueueUrl'));
    }
    const attrs = await ex.send('GetQueueAttributes', req.getQueueAttributes(url));
    const arn = attrs.Attributes?.QueueArn;
    if (!arn)
      throw new ScalingError('AWS_ERROR', `GetQueueAttributes returned no QueueArn for ${url}`, { queueUrl: url });
    return { name: queue.name, url, arn };
  } catch (err) {
    if (isQueueMissing(err)) throw missing(err);
    throw err;
  }
}

function groupWarnings(group: AutoScalingGroup, policy: ScalingPolicy): string[] {
  const warnings: string[] = [];
  if (group.MaxSize !== undefined && group.MaxSize < policy.maxCapacity) {
    warnings.push(
      `group MaxSize ${group.MaxSize} < policy maxCapacity ${policy.maxCapacity}: Auto Scaling will stop at ${group.MaxSize}`,
    );
  }
  if (group.MinSize !== undefined && group.MinSize > policy.minCapacity) {
    warnings.push(
      `group MinSize ${group.MinSize} > policy minCapacity ${policy.minCapacity}: scale-to-zero will stop at ${group.MinSize}`,
    );
  }
  if (group.MaxSize !== undefined && group.MaxSize > policy.maxCapacity) {
    warnings.push(
      `group MaxSize ${group.MaxSize} > policy maxCapacity ${policy.maxCapacity}: target tracking is bounded by the group's MaxSize, not by the policy`,
    );
  }
  return warnings;
}

function inServiceCollected(group: AutoScalingGroup | undefined): boolean {
  return (group?.EnabledMetrics ?? []).some((m) => m.Metric === req.IN_SERVICE_METRIC);
}

function ownedMetrics(alarms: readonly MetricAlarm[]): string[] {
  return [...new Set(alarms.flatMap((a) => req.ownedMetricsFromDescription(a.AlarmDescription)))].sort();
}

// ---------------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------------

export interface RunOptions {
  readonly dryRun?: boolean;
  readonly logger?: Logger;
}

/** Runs `steps`, recording requests; failures carry the requests already made in their context. */
async function withRecording(
  base: Executor,
  logger: Logger,
  steps: (ex: Executor) => Promise<Omit<SetupReport, 'requests'>>,
): Promise<SetupReport> {
  const requests: RecordedRequest[] = [];
  const ex = recording(base, requests, logger);
  try {
    return { ...(await steps(ex)), requests };
  } catch (err) {
    if (err instanceof ScalingError) {
      throw new ScalingError(
        err.code,
        err.message,
        { ...err.context, requestsMade: requests.map((r) => r.command) },
        { cause: err.cause ?? err },
      );
    }
    throw err;
  }
}

export async function runSetup(ctx: SetupContext, executor: Executor, options: RunOptions = {}): Promise<SetupReport> {
  const logger = options.logger ?? silentLogger;
  const dryRun = options.dryRun ?? false;
  req.validatePolicyForAws(ctx.policy);
  const base = dryRun ? planningExecutor('fresh', ctx.asg) : executor;

  return withRecording(base, logger, async (ex) => {
    const { asg, policy } = ctx;
    const names = req.resourceNames(asg);
    const changes: ResourceChange[] = [];
    const note = (change: ResourceChange): void => {
      changes.push(change);
      logger.info(dryRun ? 'scaling.setup.planned' : 'scaling.setup.change', { ...change });
    };

    // 1. The group and the queue must exist.
    const group = await requireGroup(ex, asg, ctx.region);
    const queue = await requireQueue(ex, ctx.queue, ctx.region);
    const target: req.SetupTarget = { asg, queueName: queue.name };
    const warnings = dryRun ? [] : groupWarnings(group, policy);
    for (const w of warnings) logger.warn('scaling.setup.warning', { message: w });

    // 2. What exists already (so the report can say created vs updated).
    const existingPolicies = new Set(
      ((await ex.send('DescribePolicies', req.describePolicies(asg, names))).ScalingPolicies ?? []).flatMap(
        (p) => p.PolicyName ?? [],
      ),
    );
    const existingAlarms = (await ex.send('DescribeAlarms', req.describeAlarms(names))).MetricAlarms ?? [];
    const existingAlarmNames = new Set(existingAlarms.flatMap((a) => a.AlarmName ?? []));
    const putAction = (exists: boolean): ChangeAction => (exists ? 'updated' : 'created');

    // 3. Group metrics: m2 needs GroupInServiceInstances. Remember whether *we* enabled it.
    const alreadyCollected = inServiceCollected(group);
    const owned =
      ownedMetrics(existingAlarms).includes(req.IN_SERVICE_METRIC) || !alreadyCollected ? [req.IN_SERVICE_METRIC] : [];
    if (!alreadyCollected) {
      await ex.send('EnableMetricsCollection', req.enableMetricsCollection(asg));
      note({ kind: 'metrics-collection', name: req.IN_SERVICE_METRIC, action: 'enabled' });
    } else {
      note({ kind: 'metrics-collection', name: req.IN_SERVICE_METRIC, action: 'already-enabled' });
    }
    if (owned.length > 0 && !policy.scaleFromZero.enabled && !policy.scaleToZero.enabled) {
      warnings.push(
        'no alarm is configured, so teardown cannot know that this setup enabled GroupInServiceInstances collection; it will leave it enabled',
      );
    }

    // 4. Target tracking on backlog per instance.
    const tt = await ex.send('PutScalingPolicy', req.targetTrackingPolicy(target, policy));
    note({
      kind: 'scaling-policy',
      name: names.targetTrackingPolicy,
      action: putAction(existingPolicies.has(names.targetTrackingPolicy)),
      ...arn(tt.PolicyARN),
    });

    // 5./6. Alarm-driven step policies: scale from zero, scale to zero.
    const alarmPairs = [
      {
        enabled: policy.scaleFromZero.enabled,
        policyName: names.scaleFromZeroPolicy,
        alarmName: names.scaleFromZeroAlarm,
        policyInput: () => req.scaleFromZeroPolicy(target, policy),
        alarmInput: (policyArn: string) => req.scaleFromZeroAlarm(target, policy, policyArn, owned),
      },
      {
        enabled: policy.scaleToZero.enabled,
        policyName: names.scaleToZeroPolicy,
        alarmName: names.scaleToZeroAlarm,
        policyInput: () => req.scaleToZeroPolicy(target, policy),
        alarmInput: (policyArn: string) => req.scaleToZeroAlarm(target, policy, policyArn, owned),
      },
    ];
    for (const pair of alarmPairs) {
      if (pair.enabled) {
        const out = await ex.send('PutScalingPolicy', pair.policyInput());
        if (!out.PolicyARN) {
          throw new ScalingError('AWS_ERROR', `PutScalingPolicy returned no PolicyARN for ${pair.policyName}`, {
            command: 'PutScalingPolicyCommand',
            policy: pair.policyName,
          });
        }
        note({
          kind: 'scaling-policy',
          name: pair.policyName,
          action: putAction(existingPolicies.has(pair.policyName)),
          arn: out.PolicyARN,
        });
        await ex.send('PutMetricAlarm', pair.alarmInput(out.PolicyARN));
        note({ kind: 'alarm', name: pair.alarmName, action: putAction(existingAlarmNames.has(pair.alarmName)) });
      } else {
        // Disabled in the policy but left over from an earlier run: remove it (alarm first).
        if (existingAlarmNames.has(pair.alarmName)) {
          await ex.send('DeleteAlarms', req.deleteAlarms([pair.alarmName]));
          note({ kind: 'alarm', name: pair.alarmName, action: 'deleted' });
        }
        if (existingPolicies.has(pair.policyName)) {
          await ex.send('DeletePolicy', req.deletePolicy(asg, pair.policyName));
          note({ kind: 'scaling-policy', name: pair.policyName, action: 'deleted' });
        }
      }
    }

    return {
      operation: 'setup',
      dryRun,
      asg,
      queue,
      targetBacklogPerInstance: targetBacklogPerInstance(policy),
      changes,
      warnings,
    };
  });
}

function arn(value: string | undefined): { arn?: string } {
  return value === undefined ? {} : { arn: value };
}

// ---------------------------------------------------------------------------------------------
// Teardown
// ---------------------------------------------------------------------------------------------

/**
 * Removes exactly what `runSetup` creates, found by its fixed names: the two alarms, the three
 * policies (deleting the target tracking policy also deletes the alarms Auto Scaling made for it),
 * and GroupInServiceInstances collection only if the alarms record that setup enabled it.
 * The queue is not needed. A missing group is not an error: its policies went with it, but the
 * alarms may remain and are still deleted.
 */
export async function runTeardown(
  ctx: TeardownContext,
  executor: Executor,
  options: RunOptions = {},
): Promise<SetupReport> {
  const logger = options.logger ?? silentLogger;
  const dryRun = options.dryRun ?? false;
  const base = dryRun ? planningExecutor('installed', ctx.asg) : executor;

  return withRecording(base, logger, async (ex) => {
    const { asg } = ctx;
    const names = req.resourceNames(asg);
    const changes: ResourceChange[] = [];
    const warnings: string[] = [];
    const note = (change: ResourceChange): void => {
      changes.push(change);
      logger.info(dryRun ? 'scaling.teardown.planned' : 'scaling.teardown.change', { ...change });
    };

    const group = await findGroup(ex, asg);
    if (!group) warnings.push(`Auto Scaling group "${asg}" does not exist; only alarms can be left to delete`);

    const alarms = (await ex.send('DescribeAlarms', req.describeAlarms(names))).MetricAlarms ?? [];
    const ours = req.allAlarmNames(names);
    const alarmNames = alarms.flatMap((a) =>
      a.AlarmName !== undefined && ours.includes(a.AlarmName) ? [a.AlarmName] : [],
    );
    const owned = ownedMetrics(alarms);

    if (alarmNames.length > 0) {
      await ex.send('DeleteAlarms', req.deleteAlarms(alarmNames));
      for (const name of alarmNames) note({ kind: 'alarm', name, action: 'deleted' });
    }

    if (group) {
      const policies = (await ex.send('DescribePolicies', req.describePolicies(asg, names))).ScalingPolicies ?? [];
      const ourPolicies = req.allPolicyNames(names);
      for (const name of ourPolicies) {
        if (!policies.some((p) => p.PolicyName === name)) continue;
        await ex.send('DeletePolicy', req.deletePolicy(asg, name));
        note({ kind: 'scaling-policy', name, action: 'deleted' });
      }
      const toDisable = owned.filter((m) => (group.EnabledMetrics ?? []).some((e) => e.Metric === m));
      if (toDisable.length > 0) {
        await ex.send('DisableMetricsCollection', req.disableMetricsCollection(asg, toDisable));
        for (const m of toDisable) note({ kind: 'metrics-collection', name: m, action: 'disabled' });
      } else if (inServiceCollected(group)) {
        note({ kind: 'metrics-collection', name: req.IN_SERVICE_METRIC, action: 'left-enabled' });
      }
    }

    return { operation: 'teardown', dryRun, asg, changes, warnings };
  });
}
