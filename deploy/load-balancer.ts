/**
 * The web tier's front door: an internet-facing Application Load Balancer in the public subnets.
 *
 * Without a certificate it serves HTTP on 80. With `certificateArn` (ACM, the stack's region) it
 * serves HTTPS on 443 with the current TLS 1.3/1.2 policy, and HTTP on 80 answers every request with
 * a permanent redirect to the same URL on HTTPS. Its idle timeout is `webTier.idleTimeoutSeconds`,
 * which the web tier also reads (LB_IDLE_TIMEOUT_SECONDS) to keep its own connections open longer.
 * Access logs go to the log bucket unless turned off.
 */
import { Duration, type Stack, Validations } from 'aws-cdk-lib';
import type * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { DeployConfig } from './config.js';

export interface LoadBalancerProps {
  readonly config: DeployConfig;
  readonly vpc: ec2.IVpc;
  readonly webTierGroup: autoscaling.AutoScalingGroup;
  readonly logBucket: s3.IBucket | undefined;
}

export interface FrontDoor {
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly securityGroup: ec2.SecurityGroup;
  /** `https://<dns name>/` with a certificate, `http://<dns name>/` without. */
  readonly url: string;
}

export function createLoadBalancer(stack: Stack, props: LoadBalancerProps): FrontDoor {
  const { config, vpc, webTierGroup, logBucket } = props;
  const https = config.certificateArn !== undefined;
  const securityGroup = new ec2.SecurityGroup(stack, 'LoadBalancerSecurityGroup', {
    vpc,
    allowAllOutbound: false,
    description: `Image recognition load balancer: ${https ? 'HTTPS (and HTTP, redirected)' : 'HTTP'} from the allowed clients`,
  });
  const clients = ec2.Peer.ipv4(config.clientCidr);
  securityGroup.addIngressRule(
    clients,
    ec2.Port.tcp(80),
    https ? 'HTTP from the allowed clients (redirected to HTTPS)' : 'HTTP from the allowed clients',
  );
  if (https) securityGroup.addIngressRule(clients, ec2.Port.tcp(443), 'HTTPS from the allowed clients');
  if (config.clientCidr === '0.0.0.0/0') {
    Validations.of(securityGroup).acknowledge({
      id: 'AwsSolutions-EC23',
      reason:
        'The public entry point of a public image-recognition service: clients anywhere reach the load balancer only (instances take traffic from it alone). clientCidr narrows it.',
    });
  }

  const loadBalancer = new elbv2.ApplicationLoadBalancer(stack, 'LoadBalancer', {
    vpc,
    internetFacing: true,
    securityGroup,
    // Longer than a classic request may wait for its answer (REQUEST_TIMEOUT_MS), so the web tier
    // answers first; shorter than the web tier's keep-alive (LB_IDLE_TIMEOUT_SECONDS, the same value).
    idleTimeout: Duration.seconds(config.webTier.idleTimeoutSeconds),
    // Requests whose header fields are not valid HTTP are dropped here, not handed to the web tier.
    dropInvalidHeaderFields: true,
  });
  if (config.logging.accessLogs && logBucket) loadBalancer.logAccessLogs(logBucket, 'load-balancer');
  else {
    Validations.of(loadBalancer).acknowledge({
      id: 'AwsSolutions-ELB2',
      reason: 'Access logs were turned off for this deployment (logging.accessLogs false).',
    });
  }

  const forward = (listener: elbv2.ApplicationListener) =>
    listener.addTargets('WebTier', {
      port: config.webTier.port,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targets: [webTierGroup],
      healthCheck: {
        path: '/readyz',
        healthyHttpCodes: '200',
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 3,
      },
      // A leaving web instance still answers the requests it holds (up to the request timeout).
      deregistrationDelay: Duration.seconds(config.webTier.requestTimeoutSeconds + 10),
    });

  if (config.certificateArn !== undefined) {
    forward(
      loadBalancer.addListener('Https', {
        port: 443,
        protocol: elbv2.ApplicationProtocol.HTTPS,
        certificates: [elbv2.ListenerCertificate.fromArn(config.certificateArn)],
        sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
        open: false,
      }),
    );
    loadBalancer.addListener('Http', {
      port: 80,
      protocol: elbv2.ApplicationProtocol.HTTP,
      open: false,
      defaultAction: elbv2.ListenerAction.redirect({ protocol: 'HTTPS', port: '443', permanent: true }),
    });
  } else {
    forward(loadBalancer.addListener('Http', { port: 80, protocol: elbv2.ApplicationProtocol.HTTP, open: false }));
  }
  return {
    loadBalancer,
    securityGroup,
    url: `${https ? 'https' : 'http'}://${loadBalancer.loadBalancerDnsName}/`,
  };
}
