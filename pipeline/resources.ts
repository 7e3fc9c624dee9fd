/**
 * Buckets and queues, created idempotently: `npm start` runs this against the embedded endpoint,
 * `npm run setup:aws` against LocalStack or AWS. Running it twice changes nothing the second time.
 */

import { randomBytes } from 'node:crypto';
import { type BucketLocationConstraint, CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type QueueAttributeName,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import type { AwsClients } from '../lib/aws/clients.js';
import { isBucketTaken, isQueueNameTaken } from '../lib/aws/errors.js';
import type { Config } from '../lib/config.js';
import { ServiceError } from '../lib/errors.js';

export interface Resources {
  readonly requestQueueUrl: string;
  readonly deadLetterQueueUrl: string;
}

export class ResourceError extends ServiceError<'RESOURCE_UNAVAILABLE' | 'RESOURCE_NOT_CREATED'> {
  override readonly name = 'ResourceError';
}

export async function ensureBucket(clients: AwsClients, bucket: string, region: string): Promise<'created' | 'exists'> {
  try {
    await clients.s3.send(
      new CreateBucketCommand({
        Bucket: bucket,
        // us-east-1 is the one region that must not be named as a location constraint.
        ...(region === 'us-east-1'
          ? {}
          : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } }),
      }),
    );
    return 'created';
  } catch (err) {
    if (isBucketTaken(err)) {
      // BucketAlreadyExists means someone else may own it: HeadBucket tells whether we can use it.
      await clients.s3.send(new HeadBucketCommand({ Bucket: bucket })).catch((cause: unknown) => {
        throw new ResourceError(
          'RESOURCE_UNAVAILABLE',
          `bucket ${bucket} exists but is not accessible with these credentials`,
          { bucket },
          { cause },
        );
      });
      return 'exists';
    }
    throw new ResourceError(
      'RESOURCE_NOT_CREATED',
      `could not create bucket ${bucket}`,
      { bucket, region },
      { cause: err },
    );
  }
}

export async function ensureQueue(
  clients: AwsClients,
  name: string,
  attributes: Partial<Record<QueueAttributeName, string>>,
): Promise<string> {
  try {
    const created = await clients.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    return mustHaveUrl(created.QueueUrl, name);
  } catch (err) {
    // An existing queue with other attributes: keep it, bring its attributes in line.
    if (isQueueNameTaken(err)) {
      const { QueueUrl } = await clients.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
      const url = mustHaveUrl(QueueUrl, name);
      await clients.sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: attributes }));
      return url;
    }
    throw new ResourceError('RESOURCE_NOT_CREATED', `could not create queue ${name}`, { queue: name }, { cause: err });
  }
}

function mustHaveUrl(url: string | undefined, name: string): string {
  if (!url)
    throw new ResourceError('RESOURCE_NOT_CREATED', `the endpoint returned no URL for queue ${name}`, { queue: name });
  return url;
}

/**
 * Everything the pipeline needs that outlives a process: both buckets, the request queue and its
 * dead-letter queue (a request that failed `maxReceives` deliveries moves there).
 */
export async function ensureResources(clients: AwsClients, config: Config): Promise<Resources> {
  await ensureBucket(clients, config.names.inputBucket, config.aws.region);
  await ensureBucket(clients, config.names.outputBucket, config.aws.region);
  const deadLetterQueueUrl = await ensureQueue(clients, config.names.deadLetterQueue, {
    MessageRetentionPeriod: String(14 * 24 * 3600),
  });
  const { Attributes } = await clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: deadLetterQueueUrl, AttributeNames: ['QueueArn'] }),
  );
  if (!Attributes?.QueueArn)
    throw new ResourceError('RESOURCE_NOT_CREATED', `no ARN for queue ${config.names.deadLetterQueue}`, {
      queue: config.names.deadLetterQueue,
    });
  const requestQueueUrl = await ensureQueue(clients, config.names.requestQueue, {
    VisibilityTimeout: String(config.worker.visibilityTimeoutSeconds),
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: Attributes.QueueArn,
      maxReceiveCount: String(config.names.maxReceives),
    }),
  });
  return { requestQueueUrl, deadLetterQueueUrl };
}

/** Checks that both buckets exist and are ours to use (replay needs nothing else). */
export async function checkBuckets(clients: AwsClients, config: Config): Promise<void> {
  for (const bucket of [config.names.inputBucket, config.names.outputBucket]) {
    try {
      await clients.s3.send(new HeadBucketCommand({ Bucket: bucket }));
    } catch (err) {
      throw new ResourceError(
        'RESOURCE_UNAVAILABLE',
        `bucket ${bucket} is not reachable (endpoint ${config.aws.s3Endpoint ?? 'AWS'}); start the service with \`npm start\` or create it with \`npm run setup:aws\``,
        { bucket },
        { cause: err },
      );
    }
  }
}

/** Looks the resources up without creating anything (workers, readiness). */
export async function findResources(clients: AwsClients, config: Config): Promise<Resources> {
  try {
    const { QueueUrl } = await clients.sqs.send(new GetQueueUrlCommand({ QueueName: config.names.requestQueue }));
    const dlq = await clients.sqs.send(new GetQueueUrlCommand({ QueueName: config.names.deadLetterQueue }));
    await clients.s3.send(new HeadBucketCommand({ Bucket: config.names.inputBucket }));
    await clients.s3.send(new HeadBucketCommand({ Bucket: config.names.outputBucket }));
    return {
      requestQueueUrl: mustHaveUrl(QueueUrl, config.names.requestQueue),
      deadLetterQueueUrl: mustHaveUrl(dlq.QueueUrl, config.names.deadLetterQueue),
    };
  } catch (err) {
    if (err instanceof ResourceError) throw err;
    throw new ResourceError(
      'RESOURCE_UNAVAILABLE',
      `queue ${config.names.requestQueue} or buckets ${config.names.inputBucket}/${config.names.outputBucket} are not reachable ` +
        `(endpoint ${config.aws.sqsEndpoint ?? 'AWS'}); start the service with \`npm start\` or create them with \`npm run setup:aws\``,
      {
        queue: config.names.requestQueue,
        inputBucket: config.names.inputBucket,
        outputBucket: config.names.outputBucket,
      },
      { cause: err },
    );
  }
}

/** A response queue of this process's own: unique name, removed again by `deleteQueue` on shutdown. */
export async function createResponseQueue(clients: AwsClients, config: Config): Promise<{ name: string; url: string }> {
  const name = `${config.names.responseQueuePrefix}${process.pid}-${randomBytes(4).toString('hex')}`;
  const url = await ensureQueue(clients, name, {
    // Answers nobody is waiting for any more should not pile up forever.
    MessageRetentionPeriod: String(Math.max(60, Math.ceil(config.limits.requestTimeoutMs / 1000) * 2)),
    VisibilityTimeout: '30',
  });
  return { name, url };
}

/** The queue a batch's workers answer on: its coordinator is the only reader, whichever web instance that is. */
export async function createBatchQueue(clients: AwsClients, config: Config, batchId: string): Promise<string> {
  return ensureQueue(clients, `${config.names.batchQueuePrefix}${batchId}`, {
    // Answers wait for a coordinator that is being replaced (up to its lease): keep them for days.
    MessageRetentionPeriod: String(4 * 24 * 3600),
    VisibilityTimeout: '30',
  });
}

export async function deleteQueue(clients: AwsClients, url: string): Promise<void> {
  await clients.sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
}
