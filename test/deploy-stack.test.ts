/**
 * The deployment's CloudFormation template (deploy/), synthesized once for the whole file with the
 * default parameters and no AWS account, read with aws-cdk-lib/assertions: every resource and its
 * key properties; the instance roles are exactly scaling/aws/iam.ts's documents and no Allow
 * statement anywhere uses a wildcard where a narrower resource exists; the scaling policies and
 * alarms are what `npm run scaling:setup --dry-run` sends for the same group and queue.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PutScalingPolicyCommandInput } from '@aws-sdk/client-auto-scaling';
import type { PutMetricAlarmCommandInput } from '@aws-sdk/client-cloudwatch';
import test from 'ava';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { InstanceArchitecture } from 'aws-cdk-lib/aws-ec2';
import { parseEnvironmentFile, workerDrainSeconds } from '../deploy/boot.js';
import { type DeployConfig, resolveDeployConfig, stackPolicy } from '../deploy/config.js';
import { DeployError } from '../deploy/errors.js';
import { RELEASE_MODEL_MANIFEST } from '../deploy/release-model.js';
import { amazonLinux2023Parameter, ImageRecognitionStack } from '../deploy/stack.js';
import { defaultBucketName } from '../deploy/storage.js';
import { loadConfig, sqsReadTimeoutSeconds } from '../lib/config.js';
import * as req from '../scaling/aws/aws-requests.js';
import { appTierPolicy, instanceTrustPolicy, UNSCOPED_ACTIONS, webTierPolicy } from '../scaling/aws/iam.js';
import { runSetup } from '../scaling/aws/setup.js';
import { CONTROLLER_POLICY, targetBacklogPerInstance } from '../scaling/core/policy.js';

interface Synth {
  readonly stack: ImageRecognitionStack;
  readonly template: Template;
  readonly json: {
    Resources: Record<string, { Type: string; Properties?: any; DependsOn?: string[] }>;
    Parameters: Record<string, any>;
  };
  readonly config: DeployConfig;
  readonly synthMs: number;
}

let synth: Synth;
type Variant = { stack: ImageRecognitionStack; json: Synth['json'] };
/** The other way to deploy: an existing VPC (described, so no lookup), no warm pool, an s3:// model, no scale-to-zero, alarm e-mails. */
let variant: Variant;
/** HTTPS with an ACM certificate, instances in an isolated VPC (no NAT: VPC endpoints). */
let secure: Variant;
/** Onto the buckets a destroyed stack retained (importBuckets), with access logs and flow logs off. */
let imported: Variant;
let dir: string;
const CERTIFICATE = 'arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012';

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'eir-deploy-stack-'));
  const releaseFile = join(dir, 'release.tgz');
  await writeFile(releaseFile, 'a stand-in release artifact');
  const started = performance.now();
  // No file, no context, no account: what `npm run deploy:synth` does on a fresh clone.
  const config = resolveDeployConfig({ env: {} });
  const policy = await stackPolicy(config);
  const app = new App({ outdir: join(dir, 'cdk.out') });
  const stack = new ImageRecognitionStack(app, config.stackName, {
    config,
    policy,
    releaseFile,
    // As deploy/app.ts passes it: the release carries the model (its release.json says where).
    releaseModel: RELEASE_MODEL_MANIFEST,
    env: { region: config.region },
  });

  const policyFile = join(dir, 'policy.json');
  await writeFile(policyFile, JSON.stringify({ scaleToZero: { enabled: false } }));
  const other = resolveDeployConfig({
    file: {
      stackName: 'Eir',
      vpc: {
        id: 'vpc-0123456789abcdef0',
        availabilityZones: ['eu-west-1a', 'eu-west-1b'],
        publicSubnetIds: ['subnet-0a0a0a0a', 'subnet-0b0b0b0b'],
      },
    },
    context: {
      region: 'eu-west-1',
      'vpc.privateSubnetIds': 'subnet-0c0c0c0c,subnet-0d0d0d0d',
      'appTier.warmPool': 'false',
      'appTier.min': '1',
      'appTier.max': '5',
      model: 's3://acme-models/mobilenet/model.json',
      'scaling.policyFile': policyFile,
      'alarms.email': 'ops@example.com',
      'sources.buckets': 'acme-photos,acme-archive',
      'notify.topics': 'arn:aws:sns:eu-west-1:123456789012:batches-done',
    },
    env: {},
  });
  const otherStack = new ImageRecognitionStack(app, other.stackName, {
    config: other,
    policy: await stackPolicy(other),
    releaseFile,
    env: { region: other.region },
  });
  const more = async (context: Record<string, string>): Promise<ImageRecognitionStack> => {
    const c = resolveDeployConfig({ context, env: {} });
    return new ImageRecognitionStack(app, c.stackName, {
      config: c,
      policy: await stackPolicy(c),
      releaseFile,
      env: { region: c.region },
    });
  };
  const secureStack = await more({ stackName: 'EirSecure', certificateArn: CERTIFICATE, 'vpc.isolated': 'true' });
  const importedStack = await more({
    stackName: 'EirAgain',
    importBuckets: 'true',
    'names.inputBucket': 'acme-input-kept',
    'names.outputBucket': 'acme-output-kept',
    'logging.accessLogs': 'false',
    'logging.flowLogs': 'false',
  });
  // One synthesis of the app for every stack.
  const template = Template.fromStack(stack);
  synth = { stack, template, json: template.toJSON() as Synth['json'], config, synthMs: performance.now() - started };
  const json = (s: ImageRecognitionStack) => ({ stack: s, json: Template.fromStack(s).toJSON() as Synth['json'] });
  variant = json(otherStack);
  secure = json(secureStack);
  imported = json(importedStack);
});

test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

const resourcesOf = (type: string) => Object.entries(synth.json.Resources).filter(([, r]) => r.Type === type);
const onlyResource = (type: string, where: (properties: any) => boolean = () => true) => {
  const found = resourcesOf(type).filter(([, r]) => where(r.Properties));
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  return { id: found[0]![0], properties: found[0]![1].Properties, resource: found[0]![1] };
};

/** The construct id a logical id was made from (CDK appends 8 hex digits to an L2 resource's path). */
const constructId = (logicalId: string) => logicalId.replace(/[0-9A-F]{8}$/, '');

/** A value with CloudFormation functions, as one string: each function as `<{...}>` (for reading scripts and JSON bodies). */
function flatten(value: unknown): string {
  if (typeof value === 'string') return value;
  const record = value as Record<string, unknown>;
  if (record && 'Fn::Join' in record) {
    const [separator, parts] = record['Fn::Join'] as [string, unknown[]];
    return parts.map(flatten).join(separator);
  }
  if (record && 'Fn::Base64' in record) return flatten(record['Fn::Base64']);
  return `<${JSON.stringify(value)}>`;
}

test('synthesizes offline, with no account, in seconds', (t) => {
  t.log(`synth + template: ${Math.round(synth.synthMs)} ms`);
  t.true(synth.synthMs < 60_000);
  t.true(synth.stack.resolve(synth.stack.account).Ref === 'AWS::AccountId', 'account-agnostic without credentials');
});

// ----- storage and queues --------------------------------------------------------------------

test('the buckets (input, output, logs) block public access, are encrypted and refuse plain HTTP', (t) => {
  const buckets = resourcesOf('AWS::S3::Bucket');
  t.deepEqual(buckets.map(([id]) => constructId(id)).sort(), ['InputBucket', 'LogBucket', 'OutputBucket']);
  for (const [id, bucket] of buckets) {
    t.deepEqual(
      bucket.Properties.PublicAccessBlockConfiguration,
      { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      id,
    );
    t.deepEqual(
      bucket.Properties.BucketEncryption,
      { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      id,
    );
    t.is((bucket as any).DeletionPolicy, 'Retain', `${id} outlives the stack by default`);
    t.is(bucket.Properties.OwnershipControls.Rules[0].ObjectOwnership, 'BucketOwnerEnforced', `${id}: no ACLs`);
    synth.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: id },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  }
});

/** The part of a default bucket name unique to each creation of the stack: its stack id's UUID, first group. */
const CREATION_SUFFIX =
  '<{"Fn::Select":[0,{"Fn::Split":["-",{"Fn::Select":[2,{"Fn::Split":["/",{"Ref":"AWS::StackId"}]}]}]}]}>';

test('redeploy after destroy: default bucket names carry a suffix of the stack id, new with each creation of the stack', (t) => {
  const names: Record<string, string> = Object.fromEntries(
    resourcesOf('AWS::S3::Bucket').map(([id, b]) => [constructId(id), flatten(b.Properties.BucketName)]),
  );
  t.deepEqual(names, {
    InputBucket: `image-recognition-input-<{"Ref":"AWS::AccountId"}>-${CREATION_SUFFIX}`,
    OutputBucket: `image-recognition-output-<{"Ref":"AWS::AccountId"}>-${CREATION_SUFFIX}`,
    LogBucket: `image-recognition-logs-<{"Ref":"AWS::AccountId"}>-${CREATION_SUFFIX}`,
  });
  // The same names everywhere the instances meet them: their environment and their roles.
  t.is(environmentOf('AppTier').INPUT_BUCKET, names.InputBucket!);
  t.is(environmentOf('WebTier').OUTPUT_BUCKET, names.OutputBucket!);
  t.is(flatten(synth.stack.resolve(synth.stack.names.inputBucket)), names.InputBucket!);
  // The longest a default name gets: the longest prefix (24), an account id (12 digits), the suffix (8 hex digits).
  const longest = flatten(synth.stack.resolve(defaultBucketName(synth.stack, 'p'.repeat(24), 'output')))
    .replace('<{"Ref":"AWS::AccountId"}>', '123456789012')
    .replace(CREATION_SUFFIX, 'c7e5e0a0');
  t.regex(longest, /^p{24}-output-123456789012-c7e5e0a0$/);
  t.true(longest.length <= 63, `${longest.length} characters: within the 63 of a bucket name`);
});

test('redeploy onto retained buckets (importBuckets): no bucket created, their TLS-only policies set, the names used', (t) => {
  const resources = Object.entries(imported.json.Resources);
  t.deepEqual(
    resources.filter(([, r]) => r.Type === 'AWS::S3::Bucket').map(([id]) => id),
    [],
    'no bucket at all (logging off: no log bucket either)',
  );
  const policies = resources.filter(([, r]) => r.Type === 'AWS::S3::BucketPolicy').map(([, r]) => r.Properties);
  t.deepEqual(policies.map((p) => p.Bucket).sort(), ['acme-input-kept', 'acme-output-kept']);
  for (const policy of policies) {
    t.like(policy.PolicyDocument.Statement[0], {
      Effect: 'Deny',
      Action: 's3:*',
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    });
  }
  t.like(imported.stack.iamInputs, { inputBucket: 'acme-input-kept', outputBucket: 'acme-output-kept' });
});

test('logs: load balancer and bucket access logs and the VPC flow log go to the log bucket, which expires them', (t) => {
  const log = onlyResource('AWS::S3::Bucket', (p) => flatten(p.BucketName).includes('-logs-'));
  t.is((log.resource as any).DeletionPolicy, 'Retain', 'never empty, so kept whatever retainBuckets says');
  t.deepEqual(log.properties.LifecycleConfiguration.Rules, [
    { Id: 'expire-logs', ExpirationInDays: synth.config.logging.expireDays, Status: 'Enabled' },
  ]);
  for (const [id, bucket] of resourcesOf('AWS::S3::Bucket').filter(([id]) => id !== log.id))
    t.deepEqual(bucket.Properties.LoggingConfiguration.DestinationBucketName, { Ref: log.id }, id);
  const lb = onlyResource('AWS::ElasticLoadBalancingV2::LoadBalancer');
  const attribute = (key: string) => lb.properties.LoadBalancerAttributes.find((a: any) => a.Key === key)?.Value;
  t.is(attribute('access_logs.s3.enabled'), 'true');
  t.deepEqual(attribute('access_logs.s3.bucket'), { Ref: log.id });
  t.is(attribute('routing.http.drop_invalid_header_fields.enabled'), 'true');
  const flowLog = onlyResource('AWS::EC2::FlowLog');
  t.like(flowLog.properties, { LogDestinationType: 's3', TrafficType: 'ALL', ResourceType: 'VPC' });
  t.true(flatten(flowLog.properties.LogDestination).includes(log.id));
  // Turned off: none of them.
  const types = Object.values(imported.json.Resources).map((r) => r.Type);
  t.false(types.includes('AWS::EC2::FlowLog'));
});

test('both groups notify: launch and termination failures to the alarm topic, every launch and termination to the events topic', (t) => {
  const topic = (name: string) =>
    onlyResource('AWS::SNS::Topic', (p) => p.DisplayName === `Image recognition ${name} (image-recognition)`).id;
  for (const group of resourcesOf('AWS::AutoScaling::AutoScalingGroup')) {
    t.deepEqual(
      group[1].Properties.NotificationConfigurations.map((n: any) => [n.TopicARN.Ref, n.NotificationTypes]),
      [
        [topic('alarms'), ['autoscaling:EC2_INSTANCE_LAUNCH_ERROR', 'autoscaling:EC2_INSTANCE_TERMINATE_ERROR']],
        [topic('scaling events'), ['autoscaling:EC2_INSTANCE_LAUNCH', 'autoscaling:EC2_INSTANCE_TERMINATE']],
      ],
      group[0],
    );
  }
  t.is(resourcesOf('AWS::SNS::Subscription').length, 0, 'nobody subscribed without alarms.email');
});

test('the request queue redrives to its dead-letter queue after MAX_RECEIVES, both encrypted and TLS-only', (t) => {
  const dlq = onlyResource('AWS::SQS::Queue', (p) => p.QueueName === 'image-recognition-requests-dlq');
  const queue = onlyResource('AWS::SQS::Queue', (p) => p.QueueName === 'image-recognition-requests');
  t.like(queue.properties, {
    SqsManagedSseEnabled: true,
    VisibilityTimeout: synth.config.queue.visibilityTimeoutSeconds,
    RedrivePolicy: {
      deadLetterTargetArn: { 'Fn::GetAtt': [dlq.id, 'Arn'] },
      maxReceiveCount: synth.config.queue.maxReceives,
    },
  });
  t.like(dlq.properties, { SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
  for (const id of [queue.id, dlq.id]) {
    synth.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: id }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  }
});

test("the request queue's visibility timeout outlasts the instances' SQS read timeout, which outlasts their long polls", (t) => {
  const queue = onlyResource('AWS::SQS::Queue', (p) => p.QueueName === 'image-recognition-requests');
  for (const tier of ['AppTier', 'WebTier']) {
    // The configuration each tier's process reads, from the environment file the stack writes
    // (without the values CloudFormation fills in at deployment: the account in the bucket names).
    const env = Object.fromEntries(Object.entries(environmentOf(tier)).filter(([, value]) => !value.includes('<')));
    const config = loadConfig(env);
    const { receiveWaitSeconds, visibilityTimeoutSeconds } = config.worker;
    const read = sqsReadTimeoutSeconds(config.worker);
    t.is(visibilityTimeoutSeconds, queue.properties.VisibilityTimeout, tier);
    t.true(
      receiveWaitSeconds < read && read < visibilityTimeoutSeconds,
      `${tier}: wait ${receiveWaitSeconds} s < read timeout ${read} s < visibility ${visibilityTimeoutSeconds} s`,
    );
  }
  // The same rule refuses a process configured otherwise, naming the variable.
  t.throws(() => loadConfig({ ENDPOINT_MODE: 'aws', RECEIVE_WAIT_SECONDS: '20', VISIBILITY_TIMEOUT_SECONDS: '10' }), {
    message: /VISIBILITY_TIMEOUT_SECONDS must be at least RECEIVE_WAIT_SECONDS \+ 2 \(22\)/,
  });
  t.is(loadConfig({ ENDPOINT_MODE: 'aws' }).worker.visibilityTimeoutSeconds, 30, 'the default on AWS: 20 s polls');
  t.is(loadConfig({ ENDPOINT_MODE: 'embedded' }).worker.visibilityTimeoutSeconds, 10, 'one machine: 2 s polls');
});

// ----- IAM -------------------------------------------------------------------------------------

test('the instance roles carry exactly the documents of scaling/aws/iam.ts (what --print-iam prints), and nothing else', (t) => {
  const roles = resourcesOf('AWS::IAM::Role');
  t.deepEqual(roles.map(([id]) => id).sort(), ['AppTierRole', 'WebTierRole'], 'no role besides the two instance roles');
  t.is(resourcesOf('AWS::IAM::Policy').length, 0, 'no policy attached beside the documents');
  const expected = {
    AppTierRole: appTierPolicy(synth.stack.iamInputs),
    WebTierRole: webTierPolicy(synth.stack.iamInputs),
  };
  for (const [id, role] of roles) {
    t.deepEqual(role.Properties.AssumeRolePolicyDocument, instanceTrustPolicy(), id);
    t.is(role.Properties.ManagedPolicyArns, undefined, id);
    t.deepEqual(
      role.Properties.Policies.map((p: any) => p.PolicyDocument),
      [synth.stack.resolve(expected[id as keyof typeof expected])],
      id,
    );
  }
  // The stack's inputs: its names, the response-queue prefix, the release it ships.
  t.like(synth.stack.iamInputs, {
    asg: 'image-recognition-app',
    queue: 'image-recognition-requests',
    deadLetterQueue: 'image-recognition-requests-dlq',
    responseQueuePrefix: 'image-recognition-responses-',
  });
  const release = appTierPolicy(synth.stack.iamInputs).Statement.find((s) => s.Sid === 'ReadTheRelease');
  t.deepEqual(release?.Action, ['s3:GetObject']);
  t.regex(
    flatten(synth.stack.resolve(release?.Resource)),
    /^arn:<.*>:s3:::<\{"Fn::Sub":"cdk-hnb659fds-assets-\$\{AWS::AccountId\}-us-east-1"\}>\/[0-9a-f]{64}\.tgz$/,
  );
});

test('no Allow statement in any policy of the template uses a wildcard action, or "*" where a resource can be named', (t) => {
  const documents: { where: string; doc: any }[] = [];
  for (const [id, resource] of Object.entries(synth.json.Resources)) {
    const p = resource.Properties ?? {};
    if (resource.Type === 'AWS::IAM::Role') {
      documents.push({ where: `${id} trust`, doc: p.AssumeRolePolicyDocument });
      for (const policy of p.Policies ?? [])
        documents.push({ where: `${id} ${policy.PolicyName}`, doc: policy.PolicyDocument });
    } else if (p.PolicyDocument !== undefined) {
      documents.push({ where: id, doc: p.PolicyDocument });
    }
  }
  t.true(documents.length >= 8, `found ${documents.length} policy documents`);
  let allows = 0;
  for (const { where, doc } of documents) {
    for (const statement of doc.Statement) {
      if (statement.Effect !== 'Allow') continue; // the TLS-only denials cover every action, as they should
      allows++;
      const actions: string[] = [statement.Action].flat();
      for (const action of actions) t.false(action.includes('*'), `${where} ${statement.Sid ?? ''}: ${action}`);
      const resources = [statement.Resource].flat().filter((r) => r !== undefined);
      if (resources.includes('*')) {
        t.deepEqual(
          actions.filter((a) => !UNSCOPED_ACTIONS.includes(a)),
          [],
          `${where} ${statement.Sid}: "*" only for actions without resource-level permissions`,
        );
      }
      for (const resource of resources) {
        // Wildcards inside an ARN only where the name is not known in advance (a group's id, the
        // response queues, the batches' answers queues).
        const text = flatten(resource);
        if (text !== '*' && text.includes('*'))
          t.regex(
            text,
            /(autoScalingGroup:\*:autoScalingGroupName\/|:image-recognition-responses-\*$|:image-recognition-batch-\*$|\/\*$)/,
            `${where} ${statement.Sid}`,
          );
      }
    }
  }
  t.true(allows >= 20);
});

// ----- instances --------------------------------------------------------------------------------

test('launch templates: the current Amazon Linux 2023 from SSM, IMDSv2 only with one hop, encrypted root, a profile, no key', (t) => {
  const parameterName = (ref: string) => synth.json.Parameters[ref]?.Default;
  for (const [id, lt] of resourcesOf('AWS::EC2::LaunchTemplate')) {
    const data = lt.Properties.LaunchTemplateData;
    t.is(parameterName(data.ImageId.Ref), amazonLinux2023Parameter(InstanceArchitecture.X86_64), id);
    t.is(synth.json.Parameters[data.ImageId.Ref].Type, 'AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>');
    t.deepEqual(
      data.MetadataOptions,
      { HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 1, HttpTokens: 'required' },
      id,
    );
    t.deepEqual(data.BlockDeviceMappings[0].Ebs, { Encrypted: true, VolumeSize: 8, VolumeType: 'gp3' });
    t.truthy(data.IamInstanceProfile.Arn['Fn::GetAtt']);
    t.is(data.KeyName, undefined, 'no SSH key');
  }
  t.is(
    onlyResource(
      'AWS::EC2::LaunchTemplate',
      (p) => p.LaunchTemplateData.InstanceType === synth.config.appTier.instanceType,
    ).id.startsWith('AppTier'),
    true,
  );
});

test('the app tier takes no inbound traffic; the web tier only from the load balancer; the load balancer only from the client CIDR', (t) => {
  const sg = (prefix: string) => onlyResource('AWS::EC2::SecurityGroup', (p) => p.GroupDescription.startsWith(prefix));
  const app = sg('Image recognition app tier');
  const web = sg('Image recognition web tier');
  const alb = sg('Image recognition load balancer');
  t.is(app.properties.SecurityGroupIngress, undefined);
  const ingressTo = (id: string) =>
    resourcesOf('AWS::EC2::SecurityGroupIngress').filter(([, r]) => r.Properties.GroupId['Fn::GetAtt'][0] === id);
  t.is(ingressTo(app.id).length, 0);
  t.deepEqual(
    ingressTo(web.id).map(([, r]) => [r.Properties.SourceSecurityGroupId['Fn::GetAtt'][0], r.Properties.FromPort]),
    [[alb.id, synth.config.webTier.port]],
  );
  t.deepEqual(alb.properties.SecurityGroupIngress, [
    { CidrIp: '0.0.0.0/0', Description: 'HTTP from the allowed clients', FromPort: 80, IpProtocol: 'tcp', ToPort: 80 },
  ]);
  for (const group of [app, web])
    t.deepEqual(
      group.properties.SecurityGroupEgress.map((e: any) => [e.CidrIp, e.FromPort]),
      [['0.0.0.0/0', 443]],
    );
});

/** The environment file a tier's user data writes, read back from the template (the default stack's, or `of`'s). */
function environmentOf(launchTemplatePrefix: string, of: Synth['json'] = synth.json): Record<string, string> {
  const [, resource] = Object.entries(of.Resources).find(
    ([id, r]) => r.Type === 'AWS::EC2::LaunchTemplate' && id.startsWith(launchTemplatePrefix),
  )!;
  const script = flatten(resource.Properties.LaunchTemplateData.UserData);
  const body = /<<'IMAGE_RECOGNITION_ENV_EOF'\n([\s\S]*?)\nIMAGE_RECOGNITION_ENV_EOF/.exec(script)?.[1] ?? '';
  return parseEnvironmentFile(body);
}

test('user data installs the release and writes the environment the code reads, per tier', (t) => {
  const [, app] = resourcesOf('AWS::EC2::LaunchTemplate').find(([id]) => id.startsWith('AppTier'))!;
  const script = flatten(app.Properties.LaunchTemplateData.UserData);
  t.regex(script, /^#!\/bin\/bash\n/);
  t.regex(script, /aws s3 cp .*"\$RELEASE_URL"/);
  t.regex(
    script,
    /readonly RELEASE_URL='<\{"Fn::Sub":"s3:\/\/cdk-hnb659fds-assets-\$\{AWS::AccountId\}-us-east-1\/[0-9a-f]{64}\.tgz"\}>'/,
  );
  t.regex(script, /tar -xzf "\$download\/release\.tgz"/);
  t.notRegex(script, /\bnpm\b|\bdnf\b/, 'nothing installed but the release');
  t.regex(script, /systemctl enable --now "\$UNIT"/);
  t.regex(script, /readonly UNIT='image-recognition-worker\.service'/);

  const worker = environmentOf('AppTier');
  t.like(worker, {
    ENDPOINT_MODE: 'aws',
    AWS_REGION: 'us-east-1',
    REQUEST_QUEUE: 'image-recognition-requests',
    DEAD_LETTER_QUEUE: 'image-recognition-requests-dlq',
    MAX_RECEIVES: '3',
    MODEL: RELEASE_MODEL_MANIFEST,
    MODEL_CACHE_DIR: '/var/lib/image-recognition/models',
    AUTO_SCALING_GROUP: 'image-recognition-app',
    LIFECYCLE_HOOK_TERMINATE: 'image-recognition-drain',
    LIFECYCLE_HOOK_LAUNCH: 'image-recognition-warm-up',
    RESPONSE_QUEUE_PREFIX: 'image-recognition-responses-',
  });
  t.is(worker.INPUT_BUCKET, `image-recognition-input-<{"Ref":"AWS::AccountId"}>-${CREATION_SUFFIX}`);
  t.is(worker.SCALER, undefined, 'workers run no controller');
  const web = environmentOf('WebTier');
  t.like(web, {
    ENDPOINT_MODE: 'aws',
    WORKERS: '0',
    HOST: '0.0.0.0',
    PORT: '3000',
    SCALER: 'aws',
    AUTO_SCALING_GROUP: 'image-recognition-app',
    WEB_AUTO_SCALING_GROUP: 'image-recognition-web',
    REQUEST_TIMEOUT_MS: '120000',
  });
  t.is(web.LIFECYCLE_HOOK_TERMINATE, undefined);
});

// ----- the app tier: scale from and to zero, never killing work --------------------------------

test('the app-tier group: 0..20, named, its lifecycle hooks from creation, metrics for the policies', (t) => {
  const group = onlyResource(
    'AWS::AutoScaling::AutoScalingGroup',
    (p) => p.AutoScalingGroupName === 'image-recognition-app',
  );
  t.like(group.properties, { MinSize: '0', MaxSize: '20' });
  t.is(group.properties.DesiredCapacity, undefined, 'the scaling policies own the desired capacity');
  const hooks = Object.fromEntries(
    group.properties.LifecycleHookSpecificationList.map((h: any) => [h.LifecycleTransition, h]),
  );
  const terminate = hooks['autoscaling:EC2_INSTANCE_TERMINATING'];
  t.like(terminate, { LifecycleHookName: 'image-recognition-drain', DefaultResult: 'CONTINUE' });
  const drain = workerDrainSeconds(synth.config.queue);
  t.true(
    terminate.HeartbeatTimeout > synth.stack.workerStopTimeoutSeconds && synth.stack.workerStopTimeoutSeconds > drain,
    `hook ${terminate.HeartbeatTimeout} s > unit stop ${synth.stack.workerStopTimeoutSeconds} s > drain ${drain} s`,
  );
  t.like(hooks['autoscaling:EC2_INSTANCE_LAUNCHING'], {
    LifecycleHookName: 'image-recognition-warm-up',
    DefaultResult: 'ABANDON',
    HeartbeatTimeout: synth.config.bootTimeoutSeconds,
  });
  t.is(resourcesOf('AWS::AutoScaling::LifecycleHook').length, 0, 'no hook added after the group exists');
  const collection = req.enableMetricsCollection('image-recognition-app');
  t.is(group.properties.MetricsCollection[0].Granularity, collection.Granularity);
  for (const metric of [...collection.Metrics!, 'GroupDesiredCapacity'])
    t.true(group.properties.MetricsCollection[0].Metrics.includes(metric), metric);
  t.truthy(
    (group.resource as any).UpdatePolicy.AutoScalingInstanceRefresh,
    'a new release replaces instances, warm pool included',
  );
});

test('a warm pool of stopped, prepared instances on the app tier', (t) => {
  const group = onlyResource(
    'AWS::AutoScaling::AutoScalingGroup',
    (p) => p.AutoScalingGroupName === 'image-recognition-app',
  );
  const pool = onlyResource('AWS::AutoScaling::WarmPool');
  t.deepEqual(pool.properties, {
    AutoScalingGroupName: { Ref: group.id },
    PoolState: 'Stopped',
    MinSize: 0,
    InstanceReusePolicy: { ReuseOnScaleIn: false },
  });
});

/** What `npm run scaling:setup -- --asg G --queue Q --dry-run` sends for the stack's names and policy. */
async function dryRun() {
  const report = await runSetup(
    {
      asg: 'image-recognition-app',
      queue: { name: 'image-recognition-requests', url: undefined },
      policy: await stackPolicy(synth.config),
      region: 'us-east-1',
    },
    { send: () => Promise.reject(new Error('a dry run sends nothing')) },
    { dryRun: true },
  );
  const of = <T>(command: string) => report.requests.filter((r) => r.command === command).map((r) => r.input as T);
  return {
    policies: of<PutScalingPolicyCommandInput>('PutScalingPolicyCommand'),
    alarms: of<PutMetricAlarmCommandInput>('PutMetricAlarmCommand'),
  };
}

test('scaling policies: the same requests scaling:setup sends (metric math target tracking, scale from and to zero), on the group', async (t) => {
  const { policies } = await dryRun();
  const inTemplate = resourcesOf('AWS::AutoScaling::ScalingPolicy');
  t.is(inTemplate.length, policies.length);
  t.is(policies.length, 3);
  const group = onlyResource(
    'AWS::AutoScaling::AutoScalingGroup',
    (p) => p.AutoScalingGroupName === 'image-recognition-app',
  );
  for (const sent of policies) {
    const { PolicyName, ...expected } = sent;
    // Told apart by type and steps (CloudFormation names policies itself: no PolicyName to match).
    const match = inTemplate.filter(
      ([, r]) =>
        r.Properties.PolicyType === expected.PolicyType &&
        JSON.stringify(r.Properties.StepAdjustments) === JSON.stringify(expected.StepAdjustments),
    );
    t.is(match.length, 1, PolicyName);
    t.deepEqual(match[0]![1].Properties, expected, PolicyName);
    t.deepEqual(match[0]![1].DependsOn, [group.id], `${PolicyName} waits for the group it names`);
  }
  const tt = inTemplate.find(([, r]) => r.Properties.PolicyType === 'TargetTrackingScaling')![1].Properties;
  const target = targetBacklogPerInstance(await stackPolicy(synth.config));
  t.is(
    tt.TargetTrackingConfiguration.CustomizedMetricSpecification.Metrics.find((m: any) => m.ReturnData).Expression,
    'IF(FILL(hb, 0) > 0, 0, m1 / m2)',
  );
  t.is(tt.TargetTrackingConfiguration.TargetValue, target);
  t.is(tt.TargetTrackingConfiguration.DisableScaleIn, true, 'scale-in is the controller’s, or scale to zero’s');
});

test("one scaling authority: every scaling policy stands aside in a minute with the controller's heartbeat, on the controller's own target", async (t) => {
  // The backlog target is the web tier's controller's (CONTROLLER_POLICY), not scaling:setup's default of 10.
  const policy = await stackPolicy(synth.config);
  t.is(targetBacklogPerInstance(policy), targetBacklogPerInstance(CONTROLLER_POLICY));
  t.true(targetBacklogPerInstance(policy) > 2_000);
  const heartbeat = {
    Namespace: 'ImageRecognition/Scaling',
    MetricName: 'ControllerHeartbeat',
    Dimensions: [{ Name: 'AutoScalingGroupName', Value: 'image-recognition-app' }],
  };
  const gateOf = (metrics: any[]) => {
    const hb = metrics.find((m) => m.Id === 'hb');
    t.deepEqual(hb.MetricStat.Metric, heartbeat);
    t.is(hb.MetricStat.Stat, 'SampleCount');
    return metrics.find((m) => m.ReturnData !== false).Expression as string;
  };
  const tt = resourcesOf('AWS::AutoScaling::ScalingPolicy').find(
    ([, r]) => r.Properties.PolicyType === 'TargetTrackingScaling',
  )![1].Properties;
  t.regex(gateOf(tt.TargetTrackingConfiguration.CustomizedMetricSpecification.Metrics), /^IF\(FILL\(hb, 0\) > 0, 0, /);
  const alarms = resourcesOf('AWS::CloudWatch::Alarm')
    .map(([, r]) => r.Properties)
    .filter((a) =>
      a.AlarmActions?.some(
        (x: { Ref?: string }) => synth.json.Resources[x.Ref ?? '']?.Type === 'AWS::AutoScaling::ScalingPolicy',
      ),
    );
  t.is(alarms.length, 2);
  for (const alarm of alarms) {
    // A value that breaches nothing while a controller is alive, and every datapoint of the window must breach.
    const idle = alarm.ComparisonOperator === 'GreaterThanOrEqualToThreshold' ? 0 : 1;
    t.true(gateOf(alarm.Metrics).startsWith(`IF(FILL(hb, 0) > 0, ${idle}, `), alarm.AlarmName);
    t.is(alarm.DatapointsToAlarm, alarm.EvaluationPeriods, alarm.AlarmName);
    t.is(alarm.TreatMissingData, 'notBreaching');
  }
  // The controller (the web tier) may send that heartbeat, in that namespace only, and read it back.
  const web = webTierPolicy(synth.stack.iamInputs).Statement;
  t.deepEqual(web.find((s) => s.Action.includes('cloudwatch:PutMetricData'))?.Condition, {
    StringEquals: { 'cloudwatch:namespace': 'ImageRecognition/Scaling' },
  });
  t.truthy(web.find((s) => s.Action.includes('cloudwatch:GetMetricData')));
  t.false(
    appTierPolicy(synth.stack.iamInputs).Statement.some((s) => s.Action.some((a) => a.startsWith('cloudwatch:'))),
    'the workers do not scale',
  );
  // A policy file may not give the CloudWatch policies a target of their own.
  const file = join(dir, 'own-target.json');
  await writeFile(file, JSON.stringify({ backlog: { override: 10 } }));
  const err = await t.throwsAsync(
    stackPolicy({ ...synth.config, scaling: { ...synth.config.scaling, policyFile: file } }),
    {
      instanceOf: DeployError,
    },
  );
  t.regex(err.message, /backlog target/);
});

test("scaling alarms: the same as scaling:setup sends, acting on the stack's policies, described as the stack's", async (t) => {
  const { alarms } = await dryRun();
  const policy = await stackPolicy(synth.config);
  const target = { asg: 'image-recognition-app', queueName: 'image-recognition-requests' };
  const owner = { by: 'CloudFormation stack ImageRecognition', change: 'update the stack' };
  t.is(alarms.length, 2);
  for (const sent of alarms) {
    const alarm = onlyResource('AWS::CloudWatch::Alarm', (p) => p.AlarmName === sent.AlarmName);
    const { AlarmDescription, AlarmActions, Tags, ...properties } = alarm.properties;
    const { AlarmDescription: _d, AlarmActions: _a, ...expected } = sent;
    t.deepEqual(properties, expected, sent.AlarmName);
    // It triggers the stack's policy of the same job (the dry run's is a placeholder ARN).
    const actions = AlarmActions as { Ref: string }[];
    t.is(actions.length, 1);
    const triggered = synth.json.Resources[actions[0]!.Ref]!;
    t.is(triggered.Type, 'AWS::AutoScaling::ScalingPolicy');
    const builder =
      sent.AlarmName === req.resourceNames(target.asg).scaleFromZeroAlarm
        ? req.scaleFromZeroAlarm
        : req.scaleToZeroAlarm;
    const policyInput =
      sent.AlarmName === req.resourceNames(target.asg).scaleFromZeroAlarm
        ? req.scaleFromZeroPolicy(target, policy)
        : req.scaleToZeroPolicy(target, policy);
    t.deepEqual(triggered.Properties.StepAdjustments, policyInput.StepAdjustments);
    // Said to be the stack's, and owning no metrics collection (scaling:setup --teardown leaves it on).
    t.is(AlarmDescription, builder(target, policy, 'arn', [], owner).AlarmDescription);
    t.regex(AlarmDescription, /owns-metrics-collection=none$/);
  }
});

// ----- the web tier ------------------------------------------------------------------------------

test('the web tier: a group behind an internet-facing load balancer, health on /readyz, idle timeout over the request timeout', (t) => {
  const group = onlyResource(
    'AWS::AutoScaling::AutoScalingGroup',
    (p) => p.AutoScalingGroupName === 'image-recognition-web',
  );
  t.like(group.properties, { MinSize: '1', MaxSize: '2', HealthCheckType: 'ELB' });
  const targetGroup = onlyResource('AWS::ElasticLoadBalancingV2::TargetGroup');
  t.like(targetGroup.properties, {
    HealthCheckPath: '/readyz',
    Port: 3000,
    Protocol: 'HTTP',
    Matcher: { HttpCode: '200' },
  });
  t.deepEqual(group.properties.TargetGroupARNs, [{ Ref: targetGroup.id }]);
  const lb = onlyResource('AWS::ElasticLoadBalancingV2::LoadBalancer');
  t.is(lb.properties.Scheme, 'internet-facing');
  const idle = Number(
    lb.properties.LoadBalancerAttributes.find((a: any) => a.Key === 'idle_timeout.timeout_seconds').Value,
  );
  t.true(idle > 120, `idle timeout ${idle} s > REQUEST_TIMEOUT_MS 120 s`);
  synth.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
    Port: 80,
    Protocol: 'HTTP',
    DefaultActions: [{ Type: 'forward', TargetGroupArn: { Ref: targetGroup.id } }],
  });
  synth.template.hasOutput('LoadBalancerUrl', {});
});

// ----- what to watch -----------------------------------------------------------------------------

test('the dashboard shows visible, in flight, oldest age, in service, desired, backlog per instance and dead letters', (t) => {
  const body = flatten(onlyResource('AWS::CloudWatch::Dashboard').properties.DashboardBody);
  for (const metric of [
    'ApproximateNumberOfMessagesVisible',
    'ApproximateNumberOfMessagesNotVisible',
    'ApproximateAgeOfOldestMessage',
    'GroupInServiceInstances',
    'GroupDesiredCapacity',
    'ControllerHeartbeat',
  ]) {
    t.true(body.includes(`"${metric}"`), metric);
  }
  const backlog = req
    .backlogPerInstanceQueries({ asg: 'image-recognition-app', queueName: 'image-recognition-requests' })
    .find((q) => q.ReturnData)!;
  t.true(body.includes(`"expression":"${backlog.Expression}"`), 'backlog per instance, the target tracking expression');
  const dlq = onlyResource('AWS::SQS::Queue', (p) => p.QueueName === 'image-recognition-requests-dlq');
  t.true(body.includes(`<{"Fn::GetAtt":["${dlq.id}","QueueName"]}>`), 'the dead-letter queue');
});

test('alarms: a dead letter arrived, a request waited too long, no scaling controller alive for five minutes', (t) => {
  const dlq = onlyResource('AWS::SQS::Queue', (p) => p.QueueName === 'image-recognition-requests-dlq');
  const dead = onlyResource('AWS::CloudWatch::Alarm', (p) => p.AlarmName === 'image-recognition-dead-letters');
  t.like(dead.properties, {
    MetricName: 'ApproximateNumberOfMessagesVisible',
    Threshold: 1,
    ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    Statistic: 'Maximum',
  });
  t.deepEqual(dead.properties.Dimensions, [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlq.id, 'QueueName'] } }]);
  const oldest = onlyResource('AWS::CloudWatch::Alarm', (p) => p.AlarmName === 'image-recognition-oldest-message');
  t.like(oldest.properties, {
    MetricName: 'ApproximateAgeOfOldestMessage',
    Threshold: synth.config.alarms.oldestMessageSeconds,
    ComparisonOperator: 'GreaterThanOrEqualToThreshold',
  });
  // The heartbeat the scaling policies stand aside for: five minutes without one, missing data breaching.
  const silent = onlyResource(
    'AWS::CloudWatch::Alarm',
    (p) => p.AlarmName === 'image-recognition-scaling-controller-silent',
  );
  t.like(silent.properties, {
    Namespace: req.HEARTBEAT.namespace,
    MetricName: req.HEARTBEAT.metricName,
    Statistic: 'SampleCount',
    Threshold: 1,
    ComparisonOperator: 'LessThanThreshold',
    EvaluationPeriods: 5,
    DatapointsToAlarm: 5,
    TreatMissingData: 'breaching',
  });
  t.deepEqual(silent.properties.Dimensions, [{ Name: 'AutoScalingGroupName', Value: 'image-recognition-app' }]);
});

// ----- the other way: an existing VPC, no warm pool, an s3:// model --------------------------------

test('variant: an existing VPC described offline, instances in its private subnets, no warm pool', (t) => {
  const types = Object.values(variant.json.Resources).map((r) => r.Type);
  t.false(types.includes('AWS::EC2::VPC'));
  t.false(types.includes('AWS::AutoScaling::WarmPool'));
  const group = Object.values(variant.json.Resources).find(
    (r) => r.Type === 'AWS::AutoScaling::AutoScalingGroup' && r.Properties.AutoScalingGroupName === 'eir-app',
  )!;
  t.deepEqual(group.Properties.VPCZoneIdentifier, ['subnet-0c0c0c0c', 'subnet-0d0d0d0d']);
  t.like(group.Properties, { MinSize: '1', MaxSize: '5' });
  const lt = Object.values(variant.json.Resources).find((r) => r.Type === 'AWS::EC2::LaunchTemplate')!;
  t.is(lt.Properties.LaunchTemplateData.NetworkInterfaces, undefined, 'no public address in private subnets');
  const lb = Object.values(variant.json.Resources).find((r) => r.Type === 'AWS::ElasticLoadBalancingV2::LoadBalancer')!;
  t.deepEqual(lb.Properties.Subnets, ['subnet-0a0a0a0a', 'subnet-0b0b0b0b']);
});

test('variant: both tiers may read an s3:// model, the policy without scale-to-zero has no such alarm, alarms e-mail', (t) => {
  // Not carried by the release: the instances read it from S3 (through the gateway endpoint).
  for (const tier of ['AppTier', 'WebTier'])
    t.is(environmentOf(tier, variant.json).MODEL, 's3://acme-models/mobilenet/model.json', tier);
  for (const role of Object.values(variant.json.Resources).filter((r) => r.Type === 'AWS::IAM::Role')) {
    const statement = role.Properties.Policies[0].PolicyDocument.Statement.find((s: any) => s.Sid === 'ReadTheModel');
    t.deepEqual(statement.Action, ['s3:GetObject']);
    t.is(flatten(statement.Resource), 'arn:<{"Ref":"AWS::Partition"}>:s3:::acme-models/mobilenet/model.json');
  }
  const policies = Object.values(variant.json.Resources).filter((r) => r.Type === 'AWS::AutoScaling::ScalingPolicy');
  t.deepEqual(
    policies.map((p) => p.Properties.StepAdjustments?.[0]?.ScalingAdjustment ?? p.Properties.PolicyType),
    ['TargetTrackingScaling', 1],
  );
  const alarms = Object.values(variant.json.Resources)
    .filter((r) => r.Type === 'AWS::CloudWatch::Alarm')
    .map((r) => r.Properties);
  t.deepEqual(alarms.map((a) => a.AlarmName).sort(), [
    'eir-app-sqs-scale-from-zero',
    'eir-dead-letters',
    'eir-oldest-message',
    'eir-scaling-controller-silent',
  ]);
  const topic = Object.entries(variant.json.Resources).find(
    ([, r]) => r.Type === 'AWS::SNS::Topic' && r.Properties.DisplayName.startsWith('Image recognition alarms'),
  )![0];
  t.true(
    Object.values(variant.json.Resources).some(
      (r) =>
        r.Type === 'AWS::SNS::Subscription' &&
        r.Properties.Endpoint === 'ops@example.com' &&
        r.Properties.Protocol === 'email',
    ),
  );
  for (const alarm of alarms.filter((a) => a.AlarmName !== 'eir-app-sqs-scale-from-zero'))
    t.deepEqual(alarm.AlarmActions, [{ Ref: topic }], alarm.AlarmName);
});

test('classifying what is in S3: read on exactly SOURCE_BUCKETS, each batch its answers queue, SNS publish on exactly the topics, the records that expire', (t) => {
  const statementsOf = (v: Synth['json'], role: string) =>
    Object.entries(v.Resources).find(([id, r]) => r.Type === 'AWS::IAM::Role' && id.startsWith(role))![1].Properties
      .Policies[0].PolicyDocument.Statement as { Sid: string; Action: string[]; Resource: unknown }[];
  const find = (statements: { Sid: string; Action: string[]; Resource: unknown }[], sid: string) => {
    const s = statements.find((x) => x.Sid === sid);
    return s ? { actions: [s.Action].flat(), resources: [s.Resource].flat().map(flatten) } : undefined;
  };
  const bucketArn = (b: string) => `arn:<{"Ref":"AWS::Partition"}>:s3:::${b}`;
  const app = statementsOf(variant.json, 'AppTierRole');
  const web = statementsOf(variant.json, 'WebTierRole');
  t.deepEqual(find(app, 'ReadSourceObjects'), {
    actions: ['s3:GetObject'],
    resources: ['acme-photos', 'acme-archive'].map((b) => `${bucketArn(b)}/*`),
  });
  t.deepEqual(find(web, 'ReadSourceObjects'), find(app, 'ReadSourceObjects'));
  t.deepEqual(find(web, 'ListSourceBuckets'), {
    actions: ['s3:ListBucket'],
    resources: ['acme-photos', 'acme-archive'].map(bucketArn),
  });
  t.deepEqual(find(web, 'NotifyTopics'), {
    actions: ['sns:Publish'],
    resources: ['arn:aws:sns:eu-west-1:123456789012:batches-done'],
  });
  t.regex(find(app, 'AnswerBatches')!.resources[0]!, /:eir-batch-\*$/);
  t.deepEqual(find(web, 'RunBatches')!.resources, find(app, 'AnswerBatches')!.resources);
  t.is(environmentOf('WebTier', variant.json).SOURCE_BUCKETS, 'acme-photos,acme-archive');
  t.is(environmentOf('WebTier', variant.json).BATCH_QUEUE_PREFIX, 'eir-batch-');
  // With none configured, no source bucket is readable and nothing may be published.
  const plain = statementsOf(synth.json, 'AppTierRole');
  t.is(find(plain, 'ReadSourceObjects'), undefined);
  t.is(find(statementsOf(synth.json, 'WebTierRole'), 'NotifyTopics'), undefined);
  t.is(environmentOf('WebTier').SOURCE_BUCKETS, undefined);
  // Idempotency keys and the recent-results index expire by themselves.
  const output = onlyResource('AWS::S3::Bucket', (p) =>
    p.LifecycleConfiguration?.Rules?.some((r: any) => r.Id === 'expire-idempotency-keys'),
  );
  t.deepEqual(
    output.properties.LifecycleConfiguration.Rules.map((r: any) => [r.Prefix, r.ExpirationInDays]),
    [
      ['idempotency/', 2],
      ['recent/', 30],
      ['requests/', 30],
    ],
  );
});

// ----- HTTPS, an isolated VPC ------------------------------------------------------------------------

const resourcesIn = (v: Variant, type: string) => Object.entries(v.json.Resources).filter(([, r]) => r.Type === type);

test('a new VPC spans two zones: two public subnets for the load balancer', (t) => {
  const subnets = resourcesOf('AWS::EC2::Subnet');
  t.is(subnets.length, 2);
  t.deepEqual(
    subnets.map(([, s]) => JSON.stringify(s.Properties.AvailabilityZone)),
    [0, 1].map((i) => JSON.stringify({ 'Fn::Select': [i, { 'Fn::GetAZs': '' }] })),
  );
  t.true(subnets.every(([, s]) => s.Properties.MapPublicIpOnLaunch === true));
});

test('HTTPS: a certificate gives a TLS listener on 443 and turns port 80 into a redirect to it', (t) => {
  const listeners = resourcesIn(secure, 'AWS::ElasticLoadBalancingV2::Listener').map(([, r]) => r.Properties);
  const https = listeners.find((l) => l.Port === 443)!;
  const http = listeners.find((l) => l.Port === 80)!;
  t.is(listeners.length, 2);
  t.like(https, { Protocol: 'HTTPS', Certificates: [{ CertificateArn: CERTIFICATE }] });
  t.regex(https.SslPolicy, /^ELBSecurityPolicy-TLS13-/);
  t.is(https.DefaultActions[0].Type, 'forward');
  t.deepEqual(http.DefaultActions, [
    { Type: 'redirect', RedirectConfig: { Protocol: 'HTTPS', Port: '443', StatusCode: 'HTTP_301' } },
  ]);
  const [, sg] = resourcesIn(secure, 'AWS::EC2::SecurityGroup').find(([, r]) =>
    r.Properties.GroupDescription.startsWith('Image recognition load balancer'),
  )!;
  t.deepEqual(
    sg.Properties.SecurityGroupIngress.map((r: any) => [r.CidrIp, r.FromPort]),
    [
      ['0.0.0.0/0', 80],
      ['0.0.0.0/0', 443],
    ],
  );
  const outputs = (Template.fromStack(secure.stack).toJSON() as any).Outputs;
  t.regex(flatten(outputs.LoadBalancerUrl.Value), /^https:\/\//);
  // Without a certificate: HTTP on 80 forwards, nothing listens on 443.
  t.deepEqual(
    resourcesOf('AWS::ElasticLoadBalancingV2::Listener').map(([, r]) => [
      r.Properties.Port,
      r.Properties.DefaultActions[0].Type,
    ]),
    [[80, 'forward']],
  );
});

test('an isolated VPC: instances in subnets with no route out, S3 through its gateway endpoint, SQS, Auto Scaling and CloudWatch through interface endpoints', (t) => {
  const types = Object.values(secure.json.Resources).map((r) => r.Type);
  t.false(types.includes('AWS::EC2::NatGateway'));
  t.false(types.includes('AWS::EC2::EIP'));
  const subnets = resourcesIn(secure, 'AWS::EC2::Subnet');
  const isolated = subnets.filter(([, s]) => s.Properties.MapPublicIpOnLaunch === false).map(([id]) => id);
  t.is(isolated.length, 2);
  // Their route tables have no default route (no internet gateway, no NAT).
  const tableOf = (subnet: string) =>
    resourcesIn(secure, 'AWS::EC2::SubnetRouteTableAssociation').find(
      ([, a]) => a.Properties.SubnetId.Ref === subnet,
    )![1].Properties.RouteTableId.Ref;
  const isolatedTables = isolated.map(tableOf);
  const routes = resourcesIn(secure, 'AWS::EC2::Route').map(([, r]) => r.Properties);
  t.deepEqual(
    routes.filter((r) => isolatedTables.includes(r.RouteTableId.Ref)),
    [],
    'no route from the instance subnets',
  );
  // Both groups' instances are there, with no public address.
  for (const [, group] of resourcesIn(secure, 'AWS::AutoScaling::AutoScalingGroup'))
    t.deepEqual(group.Properties.VPCZoneIdentifier.map((s: any) => s.Ref).sort(), [...isolated].sort());
  for (const [, lt] of resourcesIn(secure, 'AWS::EC2::LaunchTemplate'))
    t.is(lt.Properties.LaunchTemplateData.NetworkInterfaces, undefined);
  // S3: the gateway endpoint, on the instance subnets' route tables.
  const endpoints = resourcesIn(secure, 'AWS::EC2::VPCEndpoint').map(([, e]) => e.Properties);
  const gateway = endpoints.find((e) => e.VpcEndpointType === 'Gateway')!;
  t.regex(flatten(gateway.ServiceName), /\.s3$/);
  for (const table of isolatedTables)
    t.true(
      gateway.RouteTableIds.some((r: any) => r.Ref === table),
      table,
    );
  // The rest: interface endpoints with private DNS (the SDK's usual names resolve to them), in the instance subnets.
  const interfaces = endpoints.filter((e) => e.VpcEndpointType === 'Interface');
  t.deepEqual(interfaces.map((e) => flatten(e.ServiceName).split('.').pop()).sort(), [
    'autoscaling',
    'monitoring',
    'sqs',
  ]);
  for (const e of interfaces) {
    t.true(e.PrivateDnsEnabled);
    t.deepEqual(e.SubnetIds.map((s: any) => s.Ref).sort(), [...isolated].sort());
  }
  // Reached on 443 from the two tiers' security groups only.
  const groupId = (description: string) =>
    resourcesIn(secure, 'AWS::EC2::SecurityGroup').find(([, r]) =>
      r.Properties.GroupDescription.startsWith(description),
    )![0];
  const ingress = resourcesIn(secure, 'AWS::EC2::SecurityGroupIngress')
    .map(([, r]) => r.Properties)
    .filter((r) => r.GroupId['Fn::GetAtt'][0] === groupId('Image recognition VPC endpoints'));
  t.deepEqual(ingress.map((r) => [r.SourceSecurityGroupId['Fn::GetAtt'][0], r.FromPort]).sort(), [
    [groupId('Image recognition app tier'), 443],
    [groupId('Image recognition web tier'), 443],
  ]);
});
