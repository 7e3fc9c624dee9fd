/**
 * The buckets: uploads (input), results (output), and the log bucket that receives the load
 * balancer's and the buckets' access logs and the VPC's flow log (config `logging`).
 *
 * Bucket names are global, and a retained bucket keeps its name after `cdk destroy`: a stack
 * created again with the same names would fail on them. So a bucket the stack names itself carries
 * a suffix unique to each creation of the stack — the first group of the stack id's UUID, which
 * CloudFormation draws anew for every stack it creates and keeps for the stack's life (updates do
 * not rename anything). Retained buckets of an earlier stack stay as they are, beside the new ones;
 * to go on with them, give their names (`names.inputBucket`, `names.outputBucket`) with
 * `importBuckets`: the stack then only sets their TLS-only policies.
 */
import { Duration, Fn, RemovalPolicy, type Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { DeployConfig } from './config.js';

export interface Buckets {
  readonly input: s3.IBucket;
  readonly output: s3.IBucket;
  /** Their names, as literals or deployment-time tokens (for IAM documents and environment files). */
  readonly inputName: string;
  readonly outputName: string;
  /** Undefined when `logging` asks for neither access logs nor flow logs. */
  readonly logs: s3.Bucket | undefined;
}

/** Eight hex digits unique to this creation of the stack: the first group of its stack id's UUID. */
export function stackCreationSuffix(stack: Stack): string {
  // arn:aws:cloudformation:<region>:<account>:stack/<name>/<uuid>
  return Fn.select(0, Fn.split('-', Fn.select(2, Fn.split('/', stack.stackId))));
}

/** `<prefix>-<what>-<account>-<suffix>`: at most 24 + 8 + 12 + 9 characters, under S3's 63. */
export function defaultBucketName(stack: Stack, prefix: string, what: 'input' | 'output' | 'logs'): string {
  return `${prefix}-${what}-${stack.account}-${stackCreationSuffix(stack)}`;
}

export function createBuckets(stack: Stack, config: DeployConfig): Buckets {
  const { names, logging } = config;
  const common = {
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    encryption: s3.BucketEncryption.S3_MANAGED,
    enforceSSL: true,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
  };

  let logs: s3.Bucket | undefined;
  if (logging.accessLogs || logging.flowLogs) {
    logs = new s3.Bucket(stack, 'LogBucket', {
      ...common,
      bucketName: defaultBucketName(stack, names.prefix, 'logs'),
      // Load balancer access logs accept SSE-S3 only (Elastic Load Balancing: access log bucket requirements).
      encryption: s3.BucketEncryption.S3_MANAGED,
      lifecycleRules: [{ id: 'expire-logs', expiration: Duration.days(logging.expireDays) }],
      // Never empty once the load balancer writes to it, so CloudFormation could not delete it: kept.
      // (No access logs of its own: a log destination is exempt from AwsSolutions-S1, and logging it
      // into itself would log each delivery of a log.)
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  // The log bucket is exempt from AwsSolutions-S1 as the destination of the buckets' access logs; when
  // they do not log (imported, or access logs off) it receives only the load balancer's logs or flow logs.
  if (logs && (config.importBuckets || !logging.accessLogs)) {
    Validations.of(logs).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'This is the log bucket: logging its own accesses into itself would log each delivery of a log, and the buckets it holds logs for are not logging into it in this deployment.',
    });
  }

  const bucket = (id: 'InputBucket' | 'OutputBucket', what: 'input' | 'output', given: string | undefined) => {
    if (config.importBuckets) {
      // checkServing (config.ts) made sure the names are given.
      const imported = s3.Bucket.fromBucketName(stack, id, given!);
      const policy = new s3.BucketPolicy(stack, `${id}Policy`, { bucket: imported });
      // What enforceSSL writes for a bucket the stack creates.
      policy.document.addStatements(
        new iam.PolicyStatement({
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          actions: ['s3:*'],
          resources: [imported.bucketArn, imported.arnForObjects('*')],
          conditions: { Bool: { 'aws:SecureTransport': 'false' } },
        }),
      );
      return { bucket: imported as s3.IBucket, name: given! };
    }
    const name = given ?? defaultBucketName(stack, names.prefix, what);
    const created = new s3.Bucket(stack, id, {
      ...common,
      bucketName: name,
      removalPolicy: config.retainBuckets ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      ...(logging.accessLogs && logs ? { serverAccessLogsBucket: logs, serverAccessLogsPrefix: `s3/${what}/` } : {}),
      // The output bucket's short-lived records go by themselves: Idempotency-Key answers are kept a day
      // (two, to be safe), the recent-results index and by-reference request records a month.
      ...(what === 'output'
        ? {
            lifecycleRules: [
              { id: 'expire-idempotency-keys', prefix: 'idempotency/', expiration: Duration.days(2) },
              { id: 'expire-recent-index', prefix: 'recent/', expiration: Duration.days(30) },
              { id: 'expire-request-records', prefix: 'requests/', expiration: Duration.days(30) },
            ],
          }
        : {}),
    });
    if (!logging.accessLogs) {
      Validations.of(created).acknowledge({
        id: 'AwsSolutions-S1',
        reason: 'Access logs were turned off for this deployment (logging.accessLogs false).',
      });
    }
    return { bucket: created as s3.IBucket, name };
  };
  const input = bucket('InputBucket', 'input', names.inputBucket);
  const output = bucket('OutputBucket', 'output', names.outputBucket);
  return { input: input.bucket, output: output.bucket, inputName: input.name, outputName: output.name, logs };
}
