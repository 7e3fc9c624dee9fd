/**
 * Web side, the second step: send the request message (bucket, key, request id, reply-to) to the
 * request queue. Requests arriving together (a burst of uploads) share SendMessageBatch calls: the
 * batcher waits at most `maxWaitMs` for up to 10 messages.
 */
import type { Producer } from 'sqs-producer';
import { isTransientAwsError } from '../../lib/aws/errors.js';
import { retry } from '../../lib/retry.js';
import { PipelineError } from '../contract/errors.js';
import { type ImageRequest, roundMs, serializeMessage } from '../contract/messages.js';

/** What a request message is made of: an image stored (an upload) or named (an object of the client's). */
export type Queueable = Pick<ImageRequest, 'requestId' | 'bucket' | 'key' | 'file' | 'timings' | 'kind' | 'protocol'>;

/** sqs-producer's FailedMessagesError (not exported): the ids of the entries SQS refused. */
function refusedIds(err: unknown): Set<string> | undefined {
  const ids = (err as { failedMessages?: unknown })?.failedMessages;
  return Array.isArray(ids) ? new Set(ids.map(String)) : undefined;
}

interface Pending {
  readonly id: string;
  readonly body: string;
  resolve(): void;
  reject(err: unknown): void;
}

/** Collects messages into SendMessageBatch calls of up to 10 (SQS's limit). */
export class EnqueueBatcher {
  private pending: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly producer: Producer,
    private readonly maxWaitMs = 2,
  ) {}

  send(id: string, body: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ id, body, resolve, reject });
      if (this.pending.length >= 10) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.maxWaitMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.pending.length > 0) void this.sendBatch(this.pending.splice(0, 10));
  }

  private async sendBatch(batch: Pending[]): Promise<void> {
    try {
      await this.producer.send(batch.map(({ id, body }) => ({ id, body })));
      for (const item of batch) item.resolve();
    } catch (err) {
      // Only the entries SQS refused failed; the rest of the batch is on the queue.
      const failed = refusedIds(err);
      for (const item of batch) {
        if (!failed || failed.has(item.id)) item.reject(err);
        else item.resolve();
      }
    }
  }
}

/** sqs-producer wraps SDK errors; look at the cause too. A refused batch entry is worth a retry. */
const isTransientQueueError = (err: unknown): boolean =>
  refusedIds(err) !== undefined || isTransientAwsError(err) || isTransientAwsError((err as { cause?: unknown })?.cause);

/** Sends the request message for a stored upload (through the batcher), retrying for `retryBudgetMs`. */
export async function enqueue(
  batcher: EnqueueBatcher,
  item: Queueable,
  replyTo: string | undefined,
  retryBudgetMs: number,
): Promise<ImageRequest> {
  const started = performance.now();
  const request: ImageRequest = {
    v: 1,
    requestId: item.requestId,
    bucket: item.bucket,
    key: item.key,
    file: item.file,
    ...(item.kind ? { kind: item.kind } : {}),
    ...(item.protocol ? { protocol: item.protocol } : {}),
    ...(replyTo ? { replyTo } : {}),
    enqueuedAt: Date.now(),
    timings: item.timings,
  };
  try {
    const body = serializeMessage(request);
    await retry(() => batcher.send(item.requestId, body), { budgetMs: retryBudgetMs, retryIf: isTransientQueueError });
  } catch (err) {
    throw new PipelineError(
      'QUEUE_UNAVAILABLE',
      `could not enqueue the request: ${(err as Error).message}`,
      { stage: 'enqueue', retryable: isTransientQueueError(err), requestId: item.requestId, key: item.key },
      { cause: err },
    );
  }
  return { ...request, timings: { ...request.timings, enqueue: roundMs(performance.now() - started) } };
}
