/**
 * Where the instances live: a new VPC, or an existing one.
 *
 * A new VPC has two public subnets or more (the load balancer needs two zones) and, by `vpc`:
 *   default         the instances in the public subnets (a public address each, no inbound rule);
 *   natGateways > 0 the instances in private subnets that reach the internet through NAT;
 *   isolated        the instances in private subnets with no route out of the VPC at all: what
 *                   they call reaches AWS through VPC endpoints — S3 through its gateway endpoint
 *                   (the release, uploads, results; no charge), and through interface endpoints
 *                   SQS (requests, answers), EC2 Auto Scaling (lifecycle hooks, the controller's
 *                   SetDesiredCapacity and Describe calls) and CloudWatch (metrics and alarms of
 *                   the scaling controller). Instance metadata and the time service are link-local.
 *                   Enough because the release needs nothing else at boot (deploy/release.ts).
 * Every new VPC has the S3 gateway endpoint, and a flow log into the log bucket unless turned off.
 */
import type { Stack } from 'aws-cdk-lib';
import { Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { DeployConfig } from './config.js';

export interface Network {
  readonly vpc: ec2.IVpc;
  /** Where the instances go. */
  readonly instanceSubnets: ec2.SubnetSelection;
  /** Instances in public subnets get a public address (their only way out). */
  readonly publicPlacement: boolean;
  /** The interface endpoints of an isolated VPC, by service (empty otherwise). */
  readonly endpoints: Readonly<Record<string, ec2.InterfaceVpcEndpoint>>;
  /** Their security group: HTTPS from the instances (`allowInstances`), nothing else. */
  readonly endpointSecurityGroup: ec2.SecurityGroup | undefined;
}

/** Lets the instances of `groups` reach the interface endpoints (if any) on 443. */
export function allowInstances(network: Network, groups: Readonly<Record<string, ec2.ISecurityGroup>>): void {
  for (const [tier, group] of Object.entries(groups))
    network.endpointSecurityGroup?.addIngressRule(group, ec2.Port.tcp(443), `HTTPS from the ${tier}`);
}

/** The interface endpoints an isolated VPC gets: every AWS API the instances call besides S3. */
export const ISOLATED_INTERFACE_ENDPOINTS: Readonly<Record<string, ec2.InterfaceVpcEndpointAwsService>> = {
  Sqs: ec2.InterfaceVpcEndpointAwsService.SQS,
  AutoScaling: ec2.InterfaceVpcEndpointAwsService.AUTOSCALING,
  CloudWatch: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
};

export function createNetwork(stack: Stack, config: DeployConfig, logBucket: s3.IBucket | undefined): Network {
  const { vpc } = config;
  if (vpc.id !== undefined) {
    const existing =
      vpc.availabilityZones !== undefined
        ? ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
            vpcId: vpc.id,
            availabilityZones: [...vpc.availabilityZones],
            publicSubnetIds: [...(vpc.publicSubnetIds ?? [])],
            ...(vpc.privateSubnetIds === undefined ? {} : { privateSubnetIds: [...vpc.privateSubnetIds] }),
          })
        : ec2.Vpc.fromLookup(stack, 'Vpc', { vpcId: vpc.id });
    return placement(existing, {}, undefined);
  }

  const instances: ec2.SubnetConfiguration | undefined = vpc.isolated
    ? { name: 'instances', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 }
    : vpc.natGateways > 0
      ? { name: 'instances', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 }
      : undefined;
  const created = new ec2.Vpc(stack, 'Vpc', {
    maxAzs: vpc.maxAzs,
    natGateways: vpc.isolated ? 0 : vpc.natGateways,
    subnetConfiguration: [
      { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
      ...(instances ? [instances] : []),
    ],
    // S3 traffic (uploads, results, the release) stays inside AWS, at no charge.
    gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    restrictDefaultSecurityGroup: false,
  });
  if (config.logging.flowLogs && logBucket) {
    // Who talked to whom, accepted or rejected: into the log bucket (S3 is the cheaper destination).
    created.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toS3(logBucket, 'vpc-flow-logs/'),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });
  } else {
    Validations.of(created).acknowledge({
      id: 'AwsSolutions-VPC7',
      reason: 'Flow logs were turned off for this deployment (logging.flowLogs false).',
    });
  }

  const endpoints: Record<string, ec2.InterfaceVpcEndpoint> = {};
  let securityGroup: ec2.SecurityGroup | undefined;
  if (vpc.isolated) {
    securityGroup = new ec2.SecurityGroup(stack, 'EndpointSecurityGroup', {
      vpc: created,
      allowAllOutbound: false,
      description: 'Image recognition VPC endpoints: HTTPS from the instances',
    });
    for (const [name, service] of Object.entries(ISOLATED_INTERFACE_ENDPOINTS)) {
      // Private DNS: the SDK's usual regional names resolve to the endpoint inside the VPC, no code change.
      endpoints[name] = created.addInterfaceEndpoint(`${name}Endpoint`, {
        service,
        subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
        privateDnsEnabled: true,
        securityGroups: [securityGroup],
        open: false,
      });
    }
  }
  return placement(created, endpoints, securityGroup);
}

function placement(
  vpc: ec2.IVpc,
  endpoints: Record<string, ec2.InterfaceVpcEndpoint>,
  endpointSecurityGroup: ec2.SecurityGroup | undefined,
): Network {
  const common = { vpc, endpoints, endpointSecurityGroup };
  if (vpc.isolatedSubnets.length > 0)
    return { ...common, instanceSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED }, publicPlacement: false };
  if (vpc.privateSubnets.length > 0)
    return { ...common, instanceSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }, publicPlacement: false };
  return { ...common, instanceSubnets: { subnetType: ec2.SubnetType.PUBLIC }, publicPlacement: true };
}
