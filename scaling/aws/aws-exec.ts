/**
 * The AWS calls the setup makes, as one typed table: request name → SDK command, IAM action.
 * `createExecutor` sends them with real (or mocked) SDK clients and turns failures into typed
 * `ScalingError`s; access-denied errors name the missing IAM action.
 */

import {
  DeletePolicyCommand,
  type DeletePolicyCommandInput,
  type DeletePolicyCommandOutput,
  DescribeAutoScalingGroupsCommand,
  type DescribeAutoScalingGroupsCommandInput,
  type DescribeAutoScalingGroupsCommandOutput,
  DescribePoliciesCommand,
  type DescribePoliciesCommandInput,
  type DescribePoliciesCommandOutput,
  DisableMetricsCollectionCommand,
  type DisableMetricsCollectionCommandInput,
  type DisableMetricsCollectionCommandOutput,
  EnableMetricsCollectionCommand,
  type EnableMetricsCollectionCommandInput,
  type EnableMetricsCollectionCommandOutput,
  PutScalingPolicyCommand,
  type PutScalingPolicyCommandInput,
  type PutScalingPolicyCommandOutput,
} from '@aws-sdk/client-auto-scaling';
import {
  DeleteAlarmsCommand,
  type DeleteAlarmsCommandInput,
  type DeleteAlarmsCommandOutput,
  DescribeAlarmsCommand,
  type DescribeAlarmsCommandInput,
  type DescribeAlarmsCommandOutput,
  PutMetricAlarmCommand,
  type PutMetricAlarmCommandInput,
  type PutMetricAlarmCommandOutput,
} from '@aws-sdk/client-cloudwatch';
import {
  GetQueueAttributesCommand,
  type GetQueueAttributesCommandInput,
  type GetQueueAttributesCommandOutput,
  GetQueueUrlCommand,
  type GetQueueUrlCommandInput,
  type GetQueueUrlCommandOutput,
} from '@aws-sdk/client-sqs';
import type { ControlClients } from '../../lib/aws/clients.js';
import { awsErrorName, isAccessDenied } from '../../lib/aws/errors.js';
import { ScalingError } from '../core/errors.js';

export interface RequestMap {
  DescribeAutoScalingGroups: {
    input: DescribeAutoScalingGroupsCommandInput;
    output: DescribeAutoScalingGroupsCommandOutput;
  };
  DescribePolicies: { input: DescribePoliciesCommandInput; output: DescribePoliciesCommandOutput };
  EnableMetricsCollection: { input: EnableMetricsCollectionCommandInput; output: EnableMetricsCollectionCommandOutput };
  DisableMetricsCollection: {
    input: DisableMetricsCollectionCommandInput;
    output: DisableMetricsCollectionCommandOutput;
  };
  PutScalingPolicy: { input: PutScalingPolicyCommandInput; output: PutScalingPolicyCommandOutput };
  DeletePolicy: { input: DeletePolicyCommandInput; output: DeletePolicyCommandOutput };
  DescribeAlarms: { input: DescribeAlarmsCommandInput; output: DescribeAlarmsCommandOutput };
  PutMetricAlarm: { input: PutMetricAlarmCommandInput; output: PutMetricAlarmCommandOutput };
  DeleteAlarms: { input: DeleteAlarmsCommandInput; output: DeleteAlarmsCommandOutput };
  GetQueueUrl: { input: GetQueueUrlCommandInput; output: GetQueueUrlCommandOutput };
  GetQueueAttributes: { input: GetQueueAttributesCommandInput; output: GetQueueAttributesCommandOutput };
}

export type RequestName = keyof RequestMap;
export type AwsService = 'autoscaling' | 'cloudwatch' | 'sqs';

/** IAM service prefix of each request; the IAM action is `${service}:${name}` for all of them. */
export const SERVICE_OF: Readonly<Record<RequestName, AwsService>> = {
  DescribeAutoScalingGroups: 'autoscaling',
  DescribePolicies: 'autoscaling',
  EnableMetricsCollection: 'autoscaling',
  DisableMetricsCollection: 'autoscaling',
  PutScalingPolicy: 'autoscaling',
  DeletePolicy: 'autoscaling',
  DescribeAlarms: 'cloudwatch',
  PutMetricAlarm: 'cloudwatch',
  DeleteAlarms: 'cloudwatch',
  GetQueueUrl: 'sqs',
  GetQueueAttributes: 'sqs',
};

export function iamActionOf(name: RequestName): string {
  return `${SERVICE_OF[name]}:${name}`;
}

/** One request as printed by `--dry-run` and recorded in setup reports. */
export interface RecordedRequest {
  readonly service: AwsService;
  /** The SDK v3 command class, e.g. `PutScalingPolicyCommand`. */
  readonly command: string;
  readonly iamAction: string;
  readonly input: unknown;
}

export function recordRequest<K extends RequestName>(name: K, input: RequestMap[K]['input']): RecordedRequest {
  return { service: SERVICE_OF[name], command: `${name}Command`, iamAction: iamActionOf(name), input };
}

/** The clients the requests go to (`createControlClients` in lib/aws/clients.ts builds them). */
export type ExecutorClients = Pick<ControlClients, 'autoscaling' | 'cloudwatch' | 'sqs'>;

type Senders = {
  [K in RequestName]: (c: ExecutorClients, input: RequestMap[K]['input']) => Promise<RequestMap[K]['output']>;
};

const SENDERS: Senders = {
  DescribeAutoScalingGroups: (c, i) => c.autoscaling.send(new DescribeAutoScalingGroupsCommand(i)),
  DescribePolicies: (c, i) => c.autoscaling.send(new DescribePoliciesCommand(i)),
  EnableMetricsCollection: (c, i) => c.autoscaling.send(new EnableMetricsCollectionCommand(i)),
  DisableMetricsCollection: (c, i) => c.autoscaling.send(new DisableMetricsCollectionCommand(i)),
  PutScalingPolicy: (c, i) => c.autoscaling.send(new PutScalingPolicyCommand(i)),
  DeletePolicy: (c, i) => c.autoscaling.send(new DeletePolicyCommand(i)),
  DescribeAlarms: (c, i) => c.cloudwatch.send(new DescribeAlarmsCommand(i)),
  PutMetricAlarm: (c, i) => c.cloudwatch.send(new PutMetricAlarmCommand(i)),
  DeleteAlarms: (c, i) => c.cloudwatch.send(new DeleteAlarmsCommand(i)),
  GetQueueUrl: (c, i) => c.sqs.send(new GetQueueUrlCommand(i)),
  GetQueueAttributes: (c, i) => c.sqs.send(new GetQueueAttributesCommand(i)),
};

export interface Executor {
  send<K extends RequestName>(name: K, input: RequestMap[K]['input']): Promise<RequestMap[K]['output']>;
}

export function createExecutor(clients: ExecutorClients): Executor {
  return {
    async send<K extends RequestName>(name: K, input: RequestMap[K]['input']): Promise<RequestMap[K]['output']> {
      const sender: Senders[K] = SENDERS[name];
      try {
        return await sender(clients, input);
      } catch (err) {
        throw toScalingError(err, name);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Error mapping
// ---------------------------------------------------------------------------------------------

const NOT_AUTHORIZED = /not authorized to perform:?\s*([a-z0-9-]+:[A-Za-z0-9*]+)/i;

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The IAM action an access-denied error is about: taken from the message ("… is not authorized to
 * perform: autoscaling:PutScalingPolicy on resource …") when present, otherwise the action of the
 * request that failed. `undefined` when the error is not an access-denied error.
 */
export function deniedAction(err: unknown, request: RequestName): string | undefined {
  const message = errorMessage(err);
  const fromMessage = NOT_AUTHORIZED.exec(message)?.[1];
  if (fromMessage) return fromMessage;
  return isAccessDenied(err) ? iamActionOf(request) : undefined;
}

export function toScalingError(err: unknown, request: RequestName): ScalingError {
  if (err instanceof ScalingError) return err;
  const message = errorMessage(err);
  const name = awsErrorName(err);
  const action = deniedAction(err, request);
  if (action !== undefined) {
    return new ScalingError(
      'ACCESS_DENIED',
      `Access denied: the caller lacks the IAM permission "${action}" (needed for ${request}). ` +
        `Grant it (see --print-iam for a least-privilege policy) and re-run. AWS said: ${message}`,
      { action, command: `${request}Command`, awsErrorName: name },
      { cause: err },
    );
  }
  return new ScalingError(
    'AWS_ERROR',
    `${request} failed: ${name}: ${message}`,
    { command: `${request}Command`, awsErrorName: name },
    { cause: err },
  );
}
