/**
 * Least-privilege IAM policy documents, from one source: `npm run scaling:setup -- --print-iam`
 * prints them and the deployment's stack (`deploy/`) attaches them to its roles as they are. One for
 * whoever runs the setup, one per instance role (app tier, web tier), and the trust policy that lets
 * EC2 instances take a role. Unknown values stay as `<PLACEHOLDER>`s to fill in.
 *
 * Every statement names exactly what the code calls, on exactly its resources:
 *
 * - app tier (`npm run worker`): finds the request queue, the dead-letter queue and both buckets at
 *   start (GetQueueUrl, HeadBucket = s3:ListBucket, which also makes a missing key answer 404 rather
 *   than 403); receives, deletes and extends the visibility of requests; reads inputs, writes
 *   results; answers on the web processes' response queues; completes its lifecycle actions;
 * - web tier (`npm start`, WORKERS=0): stores uploads and reads job status from the buckets; sends
 *   requests; owns its response queue (create, receive, delete, tag its heartbeat) and sweeps dead
 *   ones (the janitor: list, read tags and age, delete); watches the dead-letter queue (receive,
 *   delete, record in the output bucket, answer the waiting client); and, as the scaling controller,
 *   reads the groups, sets the app tier's desired capacity, and sends its heartbeat (PutMetricData,
 *   its own namespace only) and reads it back when it takes over (GetMetricData).
 *
 * Both tiers read the release artifact and an `s3://` model when they are given.
 */

import { iamActionOf, type RequestName, SERVICE_OF } from './aws-exec.js';
import { HEARTBEAT, resourceNames } from './aws-requests.js';

export interface IamStatement {
  readonly Sid: string;
  readonly Effect: 'Allow';
  readonly Action: string[];
  /** Absent in trust policies (they name a Principal instead). */
  readonly Resource?: string | string[];
  readonly Principal?: Readonly<Record<string, string>>;
  /** A condition that narrows an action without resource-level permissions (PutMetricData's namespace). */
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

export interface IamPolicyDocument {
  readonly Version: '2012-10-17';
  readonly Statement: IamStatement[];
}

export interface IamInputs {
  /** `aws` unless given (`aws-cn`, `aws-us-gov`; the stack passes its partition). */
  readonly partition?: string | undefined;
  readonly region?: string | undefined;
  readonly accountId?: string | undefined;
  /** The app tier's Auto Scaling group. */
  readonly asg?: string | undefined;
  /** The request queue (name). */
  readonly queue?: string | undefined;
  /** The dead-letter queue (name); `<queue>-dlq` when only the queue is given, as the service's default. */
  readonly deadLetterQueue?: string | undefined;
  /** One response queue by name (a single web process)... */
  readonly responseQueue?: string | undefined;
  /** ...or the prefix every web process's response queue starts with (the deployment's case). */
  readonly responseQueuePrefix?: string | undefined;
  readonly inputBucket?: string | undefined;
  readonly outputBucket?: string | undefined;
  /** Buckets whose objects are classified where they are (SOURCE_BUCKETS): read, never written. */
  readonly sourceBuckets?: readonly string[] | undefined;
  /** The prefix of the queues batches' answers go to (BATCH_QUEUE_PREFIX). */
  readonly batchQueuePrefix?: string | undefined;
  /** SNS topics a `notify` may publish to. */
  readonly notifyTopics?: readonly string[] | undefined;
  /** The release artifact the instances download at boot. */
  readonly artifact?: { readonly bucket: string; readonly key: string } | undefined;
  /** MODEL as configured: an `s3://bucket/key` location is read by the instances; other sources need no permission. */
  readonly model?: string | undefined;
}

/**
 * Actions that do not support resource-level permissions, so they need `"Resource": "*"`; no other
 * statement may use it (the tests check every policy against this list).
 */
export const UNSCOPED_ACTIONS: readonly string[] = [
  'autoscaling:DescribeAutoScalingGroups',
  'autoscaling:DescribePolicies',
  'cloudwatch:DescribeAlarms',
  'cloudwatch:GetMetricData',
  // Narrowed by its condition key instead: only the controller's heartbeat namespace.
  'cloudwatch:PutMetricData',
  'sqs:ListQueues',
];

/** Setup requests whose actions are among the unscoped ones. */
const UNSCOPED: readonly RequestName[] = ['DescribeAutoScalingGroups', 'DescribePolicies', 'DescribeAlarms'];

const or = (value: string | undefined, placeholder: string): string => value ?? `<${placeholder}>`;

/** ARNs of this account and region, with placeholders for what is not known. */
function arnsOf(i: IamInputs) {
  const partition = i.partition ?? 'aws';
  const region = or(i.region, 'REGION');
  const account = or(i.accountId, 'ACCOUNT_ID');
  const queue = (name: string) => `arn:${partition}:sqs:${region}:${account}:${name}`;
  const bucket = (name: string) => `arn:${partition}:s3:::${name}`;
  const requestQueue = or(i.queue, 'REQUEST_QUEUE_NAME');
  return {
    requestQueue: queue(requestQueue),
    deadLetterQueue: queue(
      i.deadLetterQueue ?? (i.queue === undefined ? '<DEAD_LETTER_QUEUE_NAME>' : `${i.queue}-dlq`),
    ),
    /** The app tier answers any web process's queue: the prefix when known, else the one queue. */
    responseQueues: queue(
      i.responseQueuePrefix !== undefined ? `${i.responseQueuePrefix}*` : or(i.responseQueue, 'RESPONSE_QUEUE_NAME'),
    ),
    /** A batch's answers queue, created and read by the web tier, answered by the app tier. */
    batchQueues: queue(`${or(i.batchQueuePrefix, 'BATCH_QUEUE_PREFIX')}*`),
    sourceBuckets: (i.sourceBuckets ?? []).map(bucket),
    /** The web tier creates its own queues under the prefix. */
    ownResponseQueues: queue(`${or(i.responseQueuePrefix, 'RESPONSE_QUEUE_PREFIX')}*`),
    inputBucket: bucket(or(i.inputBucket, 'INPUT_BUCKET')),
    outputBucket: bucket(or(i.outputBucket, 'OUTPUT_BUCKET')),
    objectsOf: (bucketArn: string) => `${bucketArn}/*`,
    object: (b: string, key: string) => `${bucket(b)}/${key}`,
    group: (name: string) =>
      `arn:${partition}:autoscaling:${region}:${account}:autoScalingGroup:*:autoScalingGroupName/${name}`,
    alarm: (name: string) => `arn:${partition}:cloudwatch:${region}:${account}:alarm:${name}`,
  };
}

/** `s3://bucket/key` → its parts; undefined for any other model source (registry id, https URL). */
export function s3Location(source: string | undefined): { bucket: string; key: string } | undefined {
  const match = source === undefined ? null : /^s3:\/\/([^/]+)\/(.+)$/.exec(source);
  return match ? { bucket: match[1]!, key: match[2]! } : undefined;
}

function actionsFor(service: 'autoscaling' | 'cloudwatch' | 'sqs', exclude: readonly RequestName[]): string[] {
  return (Object.keys(SERVICE_OF) as RequestName[])
    .filter((name) => SERVICE_OF[name] === service && !exclude.includes(name))
    .map(iamActionOf);
}

export function setupPolicy(i: IamInputs): IamPolicyDocument {
  const arn = arnsOf(i);
  const asg = or(i.asg, 'ASG_NAME');
  const names = resourceNames(asg);
  return {
    Version: '2012-10-17',
    Statement: [
      allow('DescribeCallsWithoutResourceLevelPermissions', UNSCOPED.map(iamActionOf), '*'),
      allow('ManageScalingOfTheAppTierGroup', actionsFor('autoscaling', UNSCOPED), arn.group(asg)),
      allow(
        'ManageTheSetupAlarms',
        actionsFor('cloudwatch', UNSCOPED),
        [names.scaleFromZeroAlarm, names.scaleToZeroAlarm].map(arn.alarm),
      ),
      allow('CheckTheRequestQueue', actionsFor('sqs', UNSCOPED), arn.requestQueue),
    ],
  };
}

/** One Allow statement. */
function allow(Sid: string, Action: string[], Resource: string | string[]): IamStatement {
  return { Sid, Effect: 'Allow', Action, Resource };
}

/** What both tiers need beyond their own statements: the buckets found, the release and an `s3://` model read. */
function common(i: IamInputs, arn: ReturnType<typeof arnsOf>): IamStatement[] {
  const model = s3Location(i.model);
  return [
    // HeadBucket (the worker at start, the web tier's readiness), ListObjectsV2 (a pending job's input);
    // with it a missing key answers NoSuchKey (404), not AccessDenied.
    allow('FindTheBuckets', ['s3:ListBucket'], [arn.inputBucket, arn.outputBucket]),
    ...(i.artifact ? [allow('ReadTheRelease', ['s3:GetObject'], arn.object(i.artifact.bucket, i.artifact.key))] : []),
    ...(model ? [allow('ReadTheModel', ['s3:GetObject'], arn.object(model.bucket, model.key))] : []),
  ];
}

export function appTierPolicy(i: IamInputs): IamPolicyDocument {
  const arn = arnsOf(i);
  return {
    Version: '2012-10-17',
    Statement: [
      allow(
        'ConsumeRequests',
        [
          'sqs:ReceiveMessage',
          'sqs:DeleteMessage',
          'sqs:ChangeMessageVisibility',
          'sqs:GetQueueAttributes',
          'sqs:GetQueueUrl',
        ],
        arn.requestQueue,
      ),
      // The worker looks both queues up at start (pipeline/resources.ts findResources).
      allow('FindTheDeadLetterQueue', ['sqs:GetQueueUrl'], arn.deadLetterQueue),
      allow('PublishResults', ['sqs:SendMessage'], arn.responseQueues),
      allow('ReadInputImages', ['s3:GetObject'], arn.objectsOf(arn.inputBucket)),
      allow('WriteResults', ['s3:PutObject'], arn.objectsOf(arn.outputBucket)),
      // A batch's objects: its status (a cancelled batch's are dropped), then its answers queue.
      allow('ReadBatchStatus', ['s3:GetObject'], `${arn.outputBucket}/batches/*`),
      allow('AnswerBatches', ['sqs:SendMessage'], arn.batchQueues),
      ...(arn.sourceBuckets.length > 0
        ? [allow('ReadSourceObjects', ['s3:GetObject'], arn.sourceBuckets.map(arn.objectsOf))]
        : []),
      // Launch (warm pool) and termination hooks: the worker completes them once prepared or drained.
      allow('FollowTheGroupLifecycle', ['autoscaling:CompleteLifecycleAction'], arn.group(or(i.asg, 'ASG_NAME'))),
      ...common(i, arn),
    ],
  };
}

export function webTierPolicy(i: IamInputs): IamPolicyDocument {
  const arn = arnsOf(i);
  return {
    Version: '2012-10-17',
    Statement: [
      // Requests go out; readiness, GET /api/v1/status and the scaling controller read the depth.
      allow('SubmitRequests', ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'], arn.requestQueue),
      allow(
        'WatchTheDeadLetterQueue',
        ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueUrl'],
        arn.deadLetterQueue,
      ),
      // Its own queue (create, receive, heartbeat tag, delete at stop); the janitor reads the others'
      // tags and age and deletes the dead ones; the dead-letter watcher answers any of them.
      allow(
        'OwnTheResponseQueues',
        [
          'sqs:CreateQueue',
          'sqs:DeleteQueue',
          'sqs:ReceiveMessage',
          'sqs:DeleteMessage',
          'sqs:GetQueueAttributes',
          'sqs:TagQueue',
          'sqs:ListQueueTags',
          'sqs:SendMessage',
        ],
        arn.ownResponseQueues,
      ),
      // The janitor lists the queues under the prefix; ListQueues has no resource-level permissions.
      allow('ListResponseQueues', ['sqs:ListQueues'], '*'),
      // Uploads in; HeadObject (s3:GetObject) names a pending job's file.
      allow('StoreUploads', ['s3:PutObject', 's3:GetObject'], arn.objectsOf(arn.inputBucket)),
      // Results and dead-letter records for GET /api/v1/jobs; the dead-letter watcher writes the records.
      allow('ReadResultsRecordDeadLetters', ['s3:GetObject', 's3:PutObject'], arn.objectsOf(arn.outputBucket)),
      // Batches: their records' leftovers (the active mark, an old progress object) and expired keys go.
      allow(
        'TidyBatchRecords',
        ['s3:DeleteObject'],
        [`${arn.outputBucket}/batches/*`, `${arn.outputBucket}/idempotency/*`],
      ),
      // Each batch's answers queue: created when it starts, read by its coordinator, deleted at the end.
      allow(
        'RunBatches',
        [
          'sqs:CreateQueue',
          'sqs:DeleteQueue',
          'sqs:ReceiveMessage',
          'sqs:DeleteMessage',
          'sqs:GetQueueAttributes',
          'sqs:GetQueueUrl',
        ],
        arn.batchQueues,
      ),
      ...(arn.sourceBuckets.length > 0
        ? [
            // A batch lists its prefix; a single object is looked at (HEAD, first bytes) before it is queued.
            allow('ListSourceBuckets', ['s3:ListBucket'], arn.sourceBuckets),
            allow('ReadSourceObjects', ['s3:GetObject'], arn.sourceBuckets.map(arn.objectsOf)),
          ]
        : []),
      ...((i.notifyTopics ?? []).length > 0
        ? [allow('NotifyTopics', ['sns:Publish'], [...(i.notifyTopics ?? [])])]
        : []),
      // The controller reads the app tier's group and its own (leader election); no resource-level permissions.
      allow('DescribeTheGroups', ['autoscaling:DescribeAutoScalingGroups'], '*'),
      allow('ScaleTheAppTier', ['autoscaling:SetDesiredCapacity'], arn.group(or(i.asg, 'ASG_NAME'))),
      // The controller's heartbeat, which the app tier's CloudWatch policies stand aside for; it has no
      // resource-level permissions, so the condition keeps it to the heartbeat's namespace.
      {
        ...allow('SendTheControllerHeartbeat', ['cloudwatch:PutMetricData'], '*'),
        Condition: { StringEquals: { 'cloudwatch:namespace': HEARTBEAT.namespace } },
      },
      // A copy taking over reads the last minutes' heartbeats back; GetMetricData has no resource-level permissions.
      allow('ReadTheControllerHeartbeat', ['cloudwatch:GetMetricData'], '*'),
      ...common(i, arn),
    ],
  };
}

/** Trust policy of both instance roles (use each through an instance profile). */
export function instanceTrustPolicy(): IamPolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'Ec2AssumesTheRole',
        Effect: 'Allow',
        Principal: { Service: 'ec2.amazonaws.com' },
        Action: ['sts:AssumeRole'],
      },
    ],
  };
}

export interface IamBundle {
  readonly setup: IamPolicyDocument;
  readonly appTierInstanceRole: IamPolicyDocument;
  readonly appTierTrustPolicy: IamPolicyDocument;
  readonly webTierInstanceRole: IamPolicyDocument;
  readonly webTierTrustPolicy: IamPolicyDocument;
  readonly notes: string[];
}

export function iamBundle(i: IamInputs): IamBundle {
  return {
    setup: setupPolicy(i),
    appTierInstanceRole: appTierPolicy(i),
    appTierTrustPolicy: instanceTrustPolicy(),
    webTierInstanceRole: webTierPolicy(i),
    webTierTrustPolicy: instanceTrustPolicy(),
    notes: [
      'Replace every <PLACEHOLDER>. Describe*, sqs:ListQueues, cloudwatch:GetMetricData and cloudwatch:PutMetricData do not support resource-level permissions, hence "Resource": "*" (PutMetricData narrowed to the heartbeat namespace by its condition key).',
      "The target tracking policy's own alarms (TargetTracking-*) are created by Auto Scaling's service-linked role, not by the caller.",
      'If the buckets use SSE-KMS, the app-tier role also needs kms:Decrypt (input) and kms:GenerateDataKey (output) on the key, and the web tier the reverse.',
      'The deployment (npm run deploy) attaches exactly these instance-role documents, with the release artifact and an s3:// model added when used.',
    ],
  };
}
