/**
 * Least-privilege IAM policy documents (`--print-iam`): one for whoever runs the setup, one for the
 * app-tier instance role. Unknown values stay as `<PLACEHOLDER>`s to fill in.
 */

import { resourceNames } from './aws-requests.js';
import { iamActionOf, SERVICE_OF, type RequestName } from './aws-exec.js';

export interface IamStatement {
  readonly Sid: string;
  readonly Effect: 'Allow';
  readonly Action: string[];
  /** Absent in trust policies (they name a Principal instead). */
  readonly Resource?: string | string[];
  readonly Principal?: Readonly<Record<string, string>>;
}

export interface IamPolicyDocument {
  readonly Version: '2012-10-17';
  readonly Statement: IamStatement[];
}

export interface IamInputs {
  readonly region?: string | undefined;
  readonly accountId?: string | undefined;
  readonly asg?: string | undefined;
  /** The request queue (name). */
  readonly queue?: string | undefined;
  readonly responseQueue?: string | undefined;
  readonly inputBucket?: string | undefined;
  readonly outputBucket?: string | undefined;
}

const or = (value: string | undefined, placeholder: string): string => value ?? `<${placeholder}>`;

/**
 * Requests whose IAM actions do not support resource-level permissions (Describe*), so they need
 * `"Resource": "*"`. Everything else is scoped to the group, the alarms or the queue.
 */
const UNSCOPED: readonly RequestName[] = ['DescribeAutoScalingGroups', 'DescribePolicies', 'DescribeAlarms'];

function actionsFor(service: 'autoscaling' | 'cloudwatch' | 'sqs', exclude: readonly RequestName[]): string[] {
  return (Object.keys(SERVICE_OF) as RequestName[])
    .filter((name) => SERVICE_OF[name] === service && !exclude.includes(name))
    .map(iamActionOf);
}

export function setupPolicy(i: IamInputs): IamPolicyDocument {
  const region = or(i.region, 'REGION');
  const account = or(i.accountId, 'ACCOUNT_ID');
  const asg = or(i.asg, 'ASG_NAME');
  const names = resourceNames(asg);
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'DescribeCallsWithoutResourceLevelPermissions',
        Effect: 'Allow',
        Action: UNSCOPED.map(iamActionOf),
        Resource: '*',
      },
      {
        Sid: 'ManageScalingOfTheAppTierGroup',
        Effect: 'Allow',
        Action: actionsFor('autoscaling', UNSCOPED),
        Resource: `arn:aws:autoscaling:${region}:${account}:autoScalingGroup:*:autoScalingGroupName/${asg}`,
      },
      {
        Sid: 'ManageTheSetupAlarms',
        Effect: 'Allow',
        Action: actionsFor('cloudwatch', UNSCOPED),
        Resource: [names.scaleFromZeroAlarm, names.scaleToZeroAlarm].map((n) => `arn:aws:cloudwatch:${region}:${account}:alarm:${n}`),
      },
      {
        Sid: 'CheckTheRequestQueue',
        Effect: 'Allow',
        Action: actionsFor('sqs', UNSCOPED),
        Resource: `arn:aws:sqs:${region}:${account}:${or(i.queue, 'REQUEST_QUEUE_NAME')}`,
      },
    ],
  };
}

export function appTierPolicy(i: IamInputs): IamPolicyDocument {
  const region = or(i.region, 'REGION');
  const account = or(i.accountId, 'ACCOUNT_ID');
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'ConsumeRequests',
        Effect: 'Allow',
        Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
        Resource: `arn:aws:sqs:${region}:${account}:${or(i.queue, 'REQUEST_QUEUE_NAME')}`,
      },
      {
        Sid: 'PublishResults',
        Effect: 'Allow',
        Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
        Resource: `arn:aws:sqs:${region}:${account}:${or(i.responseQueue, 'RESPONSE_QUEUE_NAME')}`,
      },
      {
        Sid: 'ReadInputImages',
        Effect: 'Allow',
        Action: ['s3:GetObject'],
        Resource: `arn:aws:s3:::${or(i.inputBucket, 'INPUT_BUCKET')}/*`,
      },
      {
        Sid: 'WriteResults',
        Effect: 'Allow',
        Action: ['s3:PutObject'],
        Resource: `arn:aws:s3:::${or(i.outputBucket, 'OUTPUT_BUCKET')}/*`,
      },
    ],
  };
}

/** Trust policy for the app-tier instance role (attach `appTierPolicy` to it, use via an instance profile). */
export function appTierTrustPolicy(): IamPolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [{ Sid: 'Ec2AssumesTheRole', Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: ['sts:AssumeRole'] }],
  };
}

export interface IamBundle {
  readonly setup: IamPolicyDocument;
  readonly appTierInstanceRole: IamPolicyDocument;
  readonly appTierTrustPolicy: IamPolicyDocument;
  readonly notes: string[];
}

export function iamBundle(i: IamInputs): IamBundle {
  return {
    setup: setupPolicy(i),
    appTierInstanceRole: appTierPolicy(i),
    appTierTrustPolicy: appTierTrustPolicy(),
    notes: [
      'Replace every <PLACEHOLDER>. Describe* actions do not support resource-level permissions, hence "Resource": "*".',
      'The target tracking policy\'s own alarms (TargetTracking-*) are created by Auto Scaling\'s service-linked role, not by the caller.',
      'If the buckets use SSE-KMS, the app-tier role also needs kms:Decrypt (input) and kms:GenerateDataKey (output) on the key.',
    ],
  };
}
