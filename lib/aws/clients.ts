/**
 * The one place that builds AWS clients. Stages receive these clients and never look at where they
 * point: the embedded endpoint, LocalStack and AWS differ only in the options chosen here.
 */
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { type Config, sqsReadTimeoutSeconds } from '../config.js';
import { isTransientAwsError } from './errors.js';

export interface AwsClients {
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  /** Notifications to a topic (a batch's `notify` may name one); the embedded endpoint serves SNS too. */
  readonly sns: SNSClient;
  destroy(): void;
}

/** The embedded endpoint accepts any credentials; the SDK still wants some to sign with. */
export const embeddedCredentials = () => ({ accessKeyId: 'embedded', secretAccessKey: 'embedded' });

/** An S3 client for the embedded endpoint itself (its own maintenance: importing old data). */
export function createEmbeddedS3Client(endpoint: string, region = 'us-east-1'): S3Client {
  return new S3Client({ region, endpoint, credentials: embeddedCredentials(), forcePathStyle: true, maxAttempts: 4 });
}

export function createAwsClients(config: Config): AwsClients {
  const { region, mode, sqsEndpoint, s3Endpoint, s3ForcePathStyle, profile } = config.aws;
  // A fresh object per client: the SDK annotates credentials objects it is given.
  const credentials = () =>
    mode === 'embedded' ? embeddedCredentials() : config.aws.credentials ? { ...config.aws.credentials } : undefined;
  const auth = () => {
    const given = credentials();
    return given ? { credentials: given } : profile ? { profile } : {};
  };
  // Every call is bounded: an endpoint that accepts connections but never answers must turn into
  // an error the retry logic sees, not a request that hangs for ever.
  const s3 = new S3Client({
    region,
    ...auth(),
    ...(s3Endpoint === undefined ? {} : { endpoint: s3Endpoint }),
    forcePathStyle: s3ForcePathStyle,
    // No CRC over every body the SDK sends or receives (its default since 2025): uploads and results
    // cross TLS on AWS, loopback here, and third-party S3 implementations do not all speak the
    // flexible checksums. It saves a pass over each image (docs/benchmarks.md › The floor).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 4,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
  });
  unsignedPayloads(s3);
  const sqs = new SQSClient({
    region,
    ...auth(),
    ...(sqsEndpoint ? { endpoint: sqsEndpoint } : {}),
    // Queue URLs from emulators name hosts that may not resolve; always talk to the configured endpoint.
    useQueueUrlAsEndpoint: sqsEndpoint === undefined,
    maxAttempts: 4,
    // Longer than a long poll, shorter than the visibility timeout (lib/config.ts sqsReadTimeoutSeconds).
    requestHandler: { connectionTimeout: 5_000, requestTimeout: sqsReadTimeoutSeconds(config.worker) * 1000 },
  });
  pauseFailedReceives(sqs);
  const sns = new SNSClient({
    region,
    ...auth(),
    ...(sqsEndpoint ? { endpoint: sqsEndpoint } : {}),
    maxAttempts: 4,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
  });
  return {
    s3,
    sqs,
    sns,
    destroy() {
      s3.destroy();
      sqs.destroy();
      sns.destroy();
    },
  };
}

/**
 * SigV4 signs a hash of the body unless the request says `UNSIGNED-PAYLOAD`, which S3 accepts:
 * hashing every uploaded image costs a pass over its bytes on the web tier's hot path, for an
 * integrity check TLS already gives (and loopback needs none of).
 */
function unsignedPayloads(s3: S3Client): void {
  type Middleware = Parameters<typeof s3.middlewareStack.addRelativeTo>[0];
  const unsigned: Middleware = ((next: (args: { request: unknown }) => Promise<unknown>) =>
    async (args: { request: unknown }) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    }) as unknown as Middleware;
  s3.middlewareStack.addRelativeTo(unsigned, {
    relation: 'before',
    toMiddleware: 'httpSigningMiddleware',
    name: 'unsignedPayload',
    override: true,
  });
}

/**
 * sqs-consumer polls again at once after a failed receive unless it recognises the error as a
 * connection problem, and it does not recognise a refused or reset connection: while the endpoint
 * is down every consumer would spin, burning CPU and writing an error line every few milliseconds.
 * A ReceiveMessage that fails for a transient reason reports its failure only after a pause —
 * 250 ms, doubling to 5 s while failures go on, back to none after a success.
 */
function pauseFailedReceives(sqs: SQSClient): void {
  let failures = 0;
  sqs.middlewareStack.add(
    (next, context) => async (args) => {
      try {
        const output = await next(args);
        if (context.commandName === 'ReceiveMessageCommand') failures = 0;
        return output;
      } catch (err) {
        if (context.commandName === 'ReceiveMessageCommand' && isTransientAwsError(err)) {
          await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 250 * 2 ** Math.min(failures++, 5))));
        }
        throw err;
      }
    },
    { step: 'initialize', name: 'pauseFailedReceives' },
  );
}

/** Clients for the scaling control plane: Auto Scaling, CloudWatch, and SQS for queue attributes. */
export interface ControlClients {
  readonly autoscaling: AutoScalingClient;
  readonly cloudwatch: CloudWatchClient;
  readonly sqs: SQSClient;
  destroy(): void;
}

/**
 * Real AWS only (these services have no emulator here): the SDK's own region and credential chain
 * unless `region` is given. Tests intercept them with aws-sdk-client-mock.
 */
export function createControlClients(region?: string): ControlClients {
  // Bounded like the data-plane clients: a control-plane call that hangs must fail the controller's
  // period, not stall it (these calls answer in well under a second).
  const options = {
    ...(region === undefined ? {} : { region }),
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 15_000 },
  };
  const autoscaling = new AutoScalingClient(options);
  const cloudwatch = new CloudWatchClient(options);
  const sqs = new SQSClient(options);
  return {
    autoscaling,
    cloudwatch,
    sqs,
    destroy() {
      autoscaling.destroy();
      cloudwatch.destroy();
      sqs.destroy();
    },
  };
}
