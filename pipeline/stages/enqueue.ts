/** Web side, stage 2: send the request message (bucket, key, request id, reply-to) to the request queue. */
import { mergeMap, type OperatorFunction } from 'rxjs';
import type { Producer } from 'sqs-producer';
import { PipelineError, isTransientAwsError } from '../errors.js';
import { round } from '../job.js';
import { retry } from '../retry.js';
import type { ImageRequest } from '../messages.js';
import type { Ingested } from './ingest.js';

/** sqs-producer wraps SDK errors; look at the cause too. */
const isTransientQueueError = (err: unknown): boolean => isTransientAwsError(err) || isTransientAwsError((err as { cause?: unknown })?.cause);

export function enqueue(producer: Producer, replyTo: string | undefined, retryBudgetMs: number): OperatorFunction<Ingested, ImageRequest> {
  return mergeMap(async (item) => {
    const started = performance.now();
    const request: ImageRequest = {
      v: 1,
      requestId: item.requestId,
      bucket: item.bucket,
      key: item.key,
      file: item.file,
      ...(replyTo ? { replyTo } : {}),
      enqueuedAt: Date.now(),
      timings: item.timings,
    };
    try {
      const body = JSON.stringify(request);
      const sent = await retry(() => producer.send({ id: item.requestId, body }), { budgetMs: retryBudgetMs, retryIf: isTransientQueueError });
      if (sent.length !== 1) throw new Error(`the queue accepted ${sent.length} of 1 messages`);
    } catch (err) {
      throw new PipelineError('QUEUE_UNAVAILABLE', `could not enqueue the request: ${(err as Error).message}`, 'enqueue',
        isTransientAwsError(err), { requestId: item.requestId, key: item.key }, { cause: err });
    }
    return { ...request, timings: { ...request.timings, enqueue: round(performance.now() - started) } };
  });
}
