/**
 * The whole service on AWS, as one CloudFormation stack:
 *
 *   clients ─HTTP(S)─▶ Application Load Balancer ─▶ web tier (Auto Scaling group, `npm start`, WORKERS=0,
 *                                                 the scaling controller) ──▶ S3 input bucket, SQS request queue
 *   app tier (Auto Scaling group from 0, warm pool, `npm run worker`) ◀── the request queue ──▶ dead-letter queue
 *                                                 ──▶ S3 output bucket, the web processes' response queues
 *
 * Everything the service code reads comes from here through each instance's environment file
 * (deploy/boot.ts), and everything it runs from the release artifact (deploy/release.ts); the
 * instance roles are the documents of scaling/aws/iam.ts; the scaling policies and their alarms are
 * built by scaling/aws/aws-requests.ts, as `npm run scaling:setup` builds them. The network
 * (deploy/network.ts), the buckets (deploy/storage.ts), the load balancer (deploy/load-balancer.ts)
 * and what to watch (deploy/monitoring.ts) are built in their own files; cdk-nag's findings that are
 * right for the service are acknowledged where their resources are made (deploy/nag.ts).
 */
import { Aws, CfnOutput, Duration, Stack, type StackProps, Tags } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY } from 'aws-cdk-lib/cx-api';
import type { Construct } from 'constructs';
import * as req from '../scaling/aws/aws-requests.js';
import {
  appTierPolicy,
  type IamInputs,
  type IamPolicyDocument,
  instanceTrustPolicy,
  webTierPolicy,
} from '../scaling/aws/iam.js';
import type { ScalingPolicy } from '../scaling/core/policy.js';
import {
  type EnvironmentSettings,
  environmentFile,
  instanceEnvironment,
  LAYOUT,
  STOP_MARGIN_SECONDS,
  type Tier,
  unitFile,
  userDataScript,
  webDrainSeconds,
  workerDrainSeconds,
} from './boot.js';
import { cfnAlarmProps, cfnScalingPolicyProps } from './cfn.js';
import type { DeployConfig } from './config.js';
import { createLoadBalancer } from './load-balancer.js';
import { addMonitoring, createTopics, groupNotifications } from './monitoring.js';
import { acknowledgeWildcardResources } from './nag.js';
import { allowInstances, createNetwork } from './network.js';
import { createBuckets } from './storage.js';

export interface ImageRecognitionStackProps extends StackProps {
  readonly config: DeployConfig;
  /** The app tier's scaling policy (config.ts `stackPolicy`). */
  readonly policy: ScalingPolicy;
  /** The release artifact to ship (npm run deploy:package). */
  readonly releaseFile: string;
  /**
   * MODEL for the instances when the release carries the model (its release.json `model.manifest`,
   * relative to the release root); undefined: `config.model`, which the instances then fetch.
   */
  readonly releaseModel?: string;
}

/** Group metrics the dashboard shows, beside the one the scaling policies divide by. */
const DASHBOARD_GROUP_METRICS = [
  'GroupDesiredCapacity',
  'GroupPendingInstances',
  'GroupTerminatingInstances',
  'GroupTotalInstances',
];

/** The public SSM parameter naming the current Amazon Linux 2023 image (the default kernel) for an architecture. */
export function amazonLinux2023Parameter(architecture: ec2.InstanceArchitecture): string {
  return `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${architecture === ec2.InstanceArchitecture.ARM_64 ? 'arm64' : 'x86_64'}`;
}

/** AL2023's root device; 8 GiB is its image's size (the release and the model take well under 2). */
const ROOT_DEVICE = '/dev/xvda';
const ROOT_GIB = 8;

export class ImageRecognitionStack extends Stack {
  /** The names every part uses (literal, or account/region tokens for the default bucket names). */
  readonly names: DeployConfig['names'] & { readonly inputBucket: string; readonly outputBucket: string };
  /** What the instance roles' documents are built from (scaling/aws/iam.ts). */
  readonly iamInputs: IamInputs;
  readonly appTierGroup: autoscaling.AutoScalingGroup;
  readonly webTierGroup: autoscaling.AutoScalingGroup;
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly requestQueue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  /** Seconds: the worker unit's stop timeout and the termination hook's heartbeat timeout. */
  readonly workerStopTimeoutSeconds: number;
  readonly terminateHookTimeoutSeconds: number;

  constructor(scope: Construct, id: string, props: ImageRecognitionStackProps) {
    super(scope, id, props);
    const { config, policy } = props;
    // S3 server access logs are granted by a bucket policy on the log bucket, not an ACL (its ACLs are
    // off: BucketOwnerEnforced); set here, before any resource, so every app gets it (cdk.json or not).
    this.node.setContext(S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY, true);
    Tags.of(this).add('project', 'image-recognition');
    this.templateOptions.description = `Elastic image recognition: web tier behind a load balancer, app tier scaled on the request queue (${config.names.prefix})`;

    // ---- storage (deploy/storage.ts: bucket names unique to each creation of the stack) ------------
    const buckets = createBuckets(this, config);
    this.names = { ...config.names, inputBucket: buckets.inputName, outputBucket: buckets.outputName };
    const names = this.names;

    // ---- network (deploy/network.ts) -----------------------------------------------------------
    const network = createNetwork(this, config, buckets.logs);
    const { vpc, instanceSubnets, publicPlacement } = network;

    // ---- queues and notification topics ------------------------------------------------------------
    const topics = createTopics(this, config);

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      queueName: names.deadLetterQueue,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.requestQueue = new sqs.Queue(this, 'RequestQueue', {
      queueName: names.requestQueue,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(config.queue.visibilityTimeoutSeconds),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: config.queue.maxReceives },
    });

    // ---- the release -------------------------------------------------------------------------
    const release = new Asset(this, 'Release', { path: props.releaseFile });

    // ---- instance roles: scaling/aws/iam.ts's documents, as they are ------------------------------
    this.iamInputs = {
      partition: this.partition,
      region: this.region,
      accountId: this.account,
      asg: names.appTierGroup,
      queue: names.requestQueue,
      deadLetterQueue: names.deadLetterQueue,
      responseQueuePrefix: names.responseQueuePrefix,
      batchQueuePrefix: names.batchQueuePrefix,
      sourceBuckets: config.sources.buckets,
      notifyTopics: config.notify.topics,
      inputBucket: names.inputBucket,
      outputBucket: names.outputBucket,
      artifact: { bucket: release.s3BucketName, key: release.s3ObjectKey },
      model: config.model,
    };
    const appProfile = this.instanceProfile('AppTier', 'app-tier', appTierPolicy(this.iamInputs));
    const webProfile = this.instanceProfile('WebTier', 'web-tier', webTierPolicy(this.iamInputs));

    // ---- security groups: the web tier from the load balancer (deploy/load-balancer.ts), the app tier
    // from nobody; instances talk HTTPS out: AWS APIs (directly, through NAT, or VPC endpoints).
    const webSecurityGroup = new ec2.SecurityGroup(this, 'WebTierSecurityGroup', {
      vpc,
      allowAllOutbound: false,
      description: 'Image recognition web tier: from the load balancer only',
    });
    webSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS out: AWS APIs');
    const appSecurityGroup = new ec2.SecurityGroup(this, 'AppTierSecurityGroup', {
      vpc,
      allowAllOutbound: false,
      description: 'Image recognition app tier: no inbound traffic',
    });
    appSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS out: AWS APIs');
    allowInstances(network, { 'web tier': webSecurityGroup, 'app tier': appSecurityGroup });

    // ---- what each instance boots into --------------------------------------------------------
    this.workerStopTimeoutSeconds = workerDrainSeconds(config.queue) + STOP_MARGIN_SECONDS;
    // The group waits for the drain (the worker completes the hook), with the unit's own stop as a bound.
    this.terminateHookTimeoutSeconds = this.workerStopTimeoutSeconds + STOP_MARGIN_SECONDS;
    const settings: EnvironmentSettings = {
      region: this.region,
      inputBucket: names.inputBucket,
      outputBucket: names.outputBucket,
      requestQueue: names.requestQueue,
      deadLetterQueue: names.deadLetterQueue,
      responseQueuePrefix: names.responseQueuePrefix,
      batchQueuePrefix: names.batchQueuePrefix,
      sourceBuckets: config.sources.buckets,
      maxReceives: config.queue.maxReceives,
      visibilityTimeoutSeconds: config.queue.visibilityTimeoutSeconds,
      receiveWaitSeconds: config.queue.receiveWaitSeconds,
      model: props.releaseModel ?? config.model,
      appTierGroup: names.appTierGroup,
      webTierGroup: names.webTierGroup,
      terminateHook: names.terminateHook,
      launchHook: names.launchHook,
      webPort: config.webTier.port,
      requestTimeoutSeconds: config.webTier.requestTimeoutSeconds,
      loadBalancerIdleSeconds: config.webTier.idleTimeoutSeconds,
      controllerPeriodSeconds: config.scaling.controllerPeriodSeconds,
    };
    const stopTimeouts: Record<Tier, number> = {
      worker: this.workerStopTimeoutSeconds,
      web: webDrainSeconds(config.queue) + STOP_MARGIN_SECONDS,
    };
    const launchTemplate = (
      tier: Tier,
      instanceType: string,
      securityGroup: ec2.ISecurityGroup,
      instanceProfile: iam.IInstanceProfile,
    ) => {
      const type = new ec2.InstanceType(instanceType);
      const script = userDataScript({
        tier,
        layout: LAYOUT,
        release: { url: release.s3ObjectUrl, id: release.assetHash },
        region: this.region,
        environment: environmentFile(
          instanceEnvironment(tier, settings),
          `Image recognition ${tier} (stack ${this.stackName})`,
        ),
        unit: unitFile(tier, { layout: LAYOUT, stopTimeoutSeconds: stopTimeouts[tier] }),
      });
      return new ec2.LaunchTemplate(this, tier === 'worker' ? 'AppTierLaunchTemplate' : 'WebTierLaunchTemplate', {
        // The current Amazon Linux 2023, read from its public SSM parameter at each deployment.
        machineImage: ec2.MachineImage.fromSsmParameter(amazonLinux2023Parameter(type.architecture), {
          os: ec2.OperatingSystemType.LINUX,
        }),
        instanceType: type,
        userData: ec2.UserData.custom(script),
        securityGroup,
        instanceProfile,
        // IMDSv2 only; one hop: the service runs on the host, nothing in a container should reach the role.
        httpEndpoint: true,
        httpTokens: ec2.LaunchTemplateHttpTokens.REQUIRED,
        httpPutResponseHopLimit: 1,
        blockDevices: [
          {
            deviceName: ROOT_DEVICE,
            volume: ec2.BlockDeviceVolume.ebs(ROOT_GIB, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }),
          },
        ],
        ...(publicPlacement ? { associatePublicIpAddress: true } : {}),
      });
    };

    // ---- the app tier -------------------------------------------------------------------------
    this.appTierGroup = new autoscaling.AutoScalingGroup(this, 'AppTier', {
      vpc,
      vpcSubnets: instanceSubnets,
      launchTemplate: launchTemplate('worker', config.appTier.instanceType, appSecurityGroup, appProfile),
      autoScalingGroupName: names.appTierGroup,
      notifications: groupNotifications(topics),
      minCapacity: config.appTier.min,
      maxCapacity: config.appTier.max,
      // The grace starts once the launch hook is completed (the worker is ready), so it can be short.
      healthChecks: autoscaling.HealthChecks.ec2({ gracePeriod: Duration.minutes(5) }),
      groupMetrics: [
        new autoscaling.GroupMetrics(
          ...[...req.enableMetricsCollection(names.appTierGroup).Metrics!, ...DASHBOARD_GROUP_METRICS].map(
            (m) => new autoscaling.GroupMetric(m),
          ),
        ),
      ],
      // A new release replaces workers (each drains through the termination hook), warm pool included.
      updatePolicy: autoscaling.UpdatePolicy.instanceRefresh({
        strategy: autoscaling.InstanceRefreshStrategy.ROLLING,
        minHealthyPercentage: 100,
        maxHealthyPercentage: 200,
      }),
    });
    const appGroup = this.appTierGroup.node.defaultChild as autoscaling.CfnAutoScalingGroup;
    // Hooks belong to the group from its creation: no instance (warm pool included) launches before them.
    appGroup.lifecycleHookSpecificationList = [
      {
        // Scale-in never kills work: the worker stops receiving, finishes what it holds, then completes this.
        lifecycleHookName: names.terminateHook,
        lifecycleTransition: autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
        heartbeatTimeout: this.terminateHookTimeoutSeconds,
        defaultResult: autoscaling.DefaultResult.CONTINUE,
      },
      {
        // A launching (or warming) instance is prepared — release installed, model loaded — when the
        // worker completes this; one that never gets there is abandoned (terminated, replaced).
        lifecycleHookName: names.launchHook,
        lifecycleTransition: autoscaling.LifecycleTransition.INSTANCE_LAUNCHING,
        heartbeatTimeout: config.bootTimeoutSeconds,
        defaultResult: autoscaling.DefaultResult.ABANDON,
      },
    ];
    if (config.appTier.warmPool) {
      // Scale-out starts a stopped, prepared instance instead of booting one.
      this.appTierGroup.addWarmPool({
        poolState: autoscaling.PoolState.STOPPED,
        minSize: config.appTier.warmPoolMinSize,
        ...(config.appTier.warmPoolMaxPrepared === undefined
          ? {}
          : { maxGroupPreparedCapacity: config.appTier.warmPoolMaxPrepared }),
        reuseOnScaleIn: config.appTier.reuseOnScaleIn,
      });
    }
    this.scalingPolicies(policy, appGroup);

    // ---- the web tier behind the load balancer --------------------------------------------------
    this.webTierGroup = new autoscaling.AutoScalingGroup(this, 'WebTier', {
      vpc,
      vpcSubnets: instanceSubnets,
      launchTemplate: launchTemplate('web', config.webTier.instanceType, webSecurityGroup, webProfile),
      autoScalingGroupName: names.webTierGroup,
      notifications: groupNotifications(topics),
      minCapacity: config.webTier.min,
      maxCapacity: config.webTier.max,
      // Unhealthy when the load balancer says so (/readyz), once it has had time to boot.
      healthChecks: autoscaling.HealthChecks.withAdditionalChecks({
        additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB],
        gracePeriod: Duration.seconds(config.bootTimeoutSeconds),
      }),
      updatePolicy: autoscaling.UpdatePolicy.instanceRefresh({
        strategy: autoscaling.InstanceRefreshStrategy.ROLLING,
        minHealthyPercentage: 100,
        maxHealthyPercentage: 200,
      }),
    });
    const frontDoor = createLoadBalancer(this, {
      config,
      vpc,
      webTierGroup: this.webTierGroup,
      logBucket: buckets.logs,
    });
    this.loadBalancer = frontDoor.loadBalancer;

    // ---- dashboard, alarms, outputs --------------------------------------------------------------
    const monitoring = addMonitoring(this, {
      config,
      policy,
      requestQueue: this.requestQueue,
      deadLetterQueue: this.deadLetterQueue,
      appTierGroupName: names.appTierGroup,
      loadBalancer: this.loadBalancer,
      topics,
    });

    new CfnOutput(this, 'LoadBalancerUrl', {
      value: frontDoor.url,
      description: 'POST images here (npm run workload -- --url ...)',
    });
    new CfnOutput(this, 'StatusUrl', { value: `${frontDoor.url}api/v1/status` });
    new CfnOutput(this, 'DashboardUrl', {
      value: `https://${this.region}.console.${Aws.URL_SUFFIX}/cloudwatch/home?region=${this.region}#dashboards:name=${monitoring.dashboardName}`,
    });
    new CfnOutput(this, 'AppTierGroupName', { value: names.appTierGroup });
    new CfnOutput(this, 'WebTierGroupName', { value: names.webTierGroup });
    new CfnOutput(this, 'InputBucketName', { value: buckets.input.bucketName });
    new CfnOutput(this, 'OutputBucketName', { value: buckets.output.bucketName });
    new CfnOutput(this, 'RequestQueueUrl', { value: this.requestQueue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.deadLetterQueue.queueUrl });
  }

  /** A role whose only policy is `document` (no grant can add to it), and its instance profile. */
  private instanceProfile(id: string, policyName: string, document: IamPolicyDocument): iam.IInstanceProfile {
    const role = new iam.CfnRole(this, `${id}Role`, {
      description: `Image recognition ${policyName} instances (scaling/aws/iam.ts)`,
      assumeRolePolicyDocument: instanceTrustPolicy(),
      policies: [{ policyName, policyDocument: document }],
    });
    // Each wildcard resource with its reason (deploy/nag.ts). A statement without one is refused here:
    // its finding could otherwise hide behind another statement's acknowledgement of the same resource.
    const unexplained = acknowledgeWildcardResources(this, role, document);
    if (unexplained.length > 0) {
      throw new Error(
        `IAM statements of ${policyName} with a wildcard resource and no reason in deploy/nag.ts WILDCARD_REASONS: ${unexplained.join(', ')}`,
      );
    }
    const profile = new iam.CfnInstanceProfile(this, `${id}InstanceProfile`, { roles: [role.ref] });
    return iam.InstanceProfile.fromInstanceProfileAttributes(this, `${id}Profile`, {
      instanceProfileArn: profile.attrArn,
      role: iam.Role.fromRoleArn(this, `${id}RoleRef`, role.attrArn, { mutable: false }),
    });
  }

  /**
   * The scaling policies and alarms of `npm run scaling:setup`, from its own builders
   * (`req.scalingRequests`, which the simulator's `as-deployed` mode runs as they are): target
   * tracking on backlog per instance, scale from zero, scale to zero (the last two as the policy
   * enables them). Each one stands aside in every minute the controller's heartbeat says it is alive
   * (docs/scaling.md › One scaling authority). The group's metrics collection is the group's own
   * property (above).
   */
  private scalingPolicies(policy: ScalingPolicy, group: autoscaling.CfnAutoScalingGroup): void {
    const target: req.SetupTarget = { asg: this.names.appTierGroup, queueName: this.names.requestQueue };
    const owner: req.AlarmOwner = { by: `CloudFormation stack ${this.stackName}`, change: 'update the stack' };
    const scalingPolicy = (id: string, input: Parameters<typeof cfnScalingPolicyProps>[0]) => {
      const resource = new autoscaling.CfnScalingPolicy(this, id, cfnScalingPolicyProps(input));
      // The group is named, not referenced: the policy must still wait for it.
      resource.addResourceDependency(group);
      return resource;
    };
    // The stack, not an alarm, enabled the group metric: teardown by scaling:setup must not disable it.
    const requests = req.scalingRequests(target, policy, [], owner);
    scalingPolicy('BacklogTargetTracking', requests.targetTracking);
    for (const step of requests.steps) {
      const resource = scalingPolicy(`${step.id}Policy`, step.policy);
      new cloudwatch.CfnAlarm(this, `${step.id}Alarm`, cfnAlarmProps(step.alarm(resource.ref)));
    }
  }
}
