/**
 * The request queue's depth as the scaler sees it: one GetQueueAttributes call for
 * ApproximateNumberOfMessages (visible, waiting) and ApproximateNumberOfMessagesNotVisible
 * (in flight: received by a worker, not yet deleted). The same two numbers the CloudWatch
 * metrics of the AWS setup are built on.
 */
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { awsErrorName, isQueueMissing } from '../../lib/aws/errors.js';
import { ScalingError } from './errors.js';

export interface QueueDepth {
  /** Messages waiting to be received. */
  readonly visible: number;
  /** Messages received and not yet deleted. */
  readonly inFlight: number;
}

const COMMAND = 'GetQueueAttributesCommand';
const VISIBLE = 'ApproximateNumberOfMessages';
const IN_FLIGHT = 'ApproximateNumberOfMessagesNotVisible';

function count(attributes: Partial<Record<string, string>> | undefined, name: string, queueUrl: string): number {
  const raw = attributes?.[name];
  const value = raw === undefined ? Number.NaN : Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new ScalingError(
      'AWS_ERROR',
      `${COMMAND} on ${queueUrl} returned no usable ${name} (got ${JSON.stringify(raw)})`,
      {
        command: COMMAND,
        queueUrl,
        attribute: name,
        value: raw,
      },
    );
  }
  return value;
}

/**
 * Queue depth that does not read a busy system as idle: a worker that finished an image within
 * `windowMs` counts as one message in flight. Requests that spend a few tens of ms in the queue are
 * easy to miss by sampling it; the pool hears of every finished image.
 */
export function depthWithActivity(
  depth: () => Promise<QueueDepth>,
  lastActivityAt: () => number,
  windowMs = 1_000,
): () => Promise<QueueDepth> {
  return async () => {
    const d = await depth();
    return Date.now() - lastActivityAt() < windowMs ? { ...d, inFlight: Math.max(d.inFlight, 1) } : d;
  };
}

/**
 * Reads the queue's visible and in-flight message counts.
 * Throws `ScalingError` `QUEUE_NOT_FOUND` (the queue is gone) or `AWS_ERROR` (anything else,
 * with `context.awsErrorName`), always with `context.queueUrl` and `context.command`.
 */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<QueueDepth> {
  let attributes: Partial<Record<string, string>> | undefined;
  try {
    const out = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: [VISIBLE, IN_FLIGHT] }),
    );
    attributes = out.Attributes;
  } catch (err) {
    const name = awsErrorName(err);
    const message = err instanceof Error ? err.message : String(err);
    const context = { command: COMMAND, queueUrl, awsErrorName: name };
    if (isQueueMissing(err)) {
      throw new ScalingError('QUEUE_NOT_FOUND', `Queue ${queueUrl} does not exist: ${message}`, context, {
        cause: err,
      });
    }
    throw new ScalingError('AWS_ERROR', `${COMMAND} on ${queueUrl} failed: ${name}: ${message}`, context, {
      cause: err,
    });
  }
  return { visible: count(attributes, VISIBLE, queueUrl), inFlight: count(attributes, IN_FLIGHT, queueUrl) };
}
