/**
 * Worker side, stage 7: send the answer — the result, or the error that ended the job for good — to
 * the reply-to queue of the web-tier process that is waiting. Transient failures are not answered:
 * the message will be delivered again and the client keeps waiting for the real answer.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { mergeMap, type OperatorFunction } from 'rxjs';
import { asPipelineError, round, type Job } from '../job.js';
import { retry } from '../retry.js';
import type { Answer } from '../messages.js';

export function answerOf(job: Job): Answer {
  return job.failure
    ? { v: 1, requestId: job.request.requestId, ok: false, error: job.failure.toJSON() }
    : { v: 1, requestId: job.request.requestId, ok: true, result: job.result! };
}

export function respond(sqs: SQSClient, concurrency: number, retryBudgetMs: number): OperatorFunction<Job, Job> {
  return mergeMap(async (job: Job): Promise<Job> => {
    const replyTo = job.request.replyTo;
    if (!replyTo || job.failure?.retryable) return job;
    const started = performance.now();
    try {
      const send = new SendMessageCommand({ QueueUrl: replyTo, MessageBody: JSON.stringify(answerOf(job)) });
      await retry(() => sqs.send(send), { budgetMs: retryBudgetMs });
      return { ...job, timings: { ...job.timings, respond: round(performance.now() - started) } };
    } catch (err) {
      // The reply queue may be gone (its web process stopped): the result is persisted, nobody waits.
      if ((err as Error).name === 'QueueDoesNotExist' || (err as Error).name === 'AWS.SimpleQueueService.NonExistentQueue') return job;
      return job.failure ? job : { ...job, failure: asPipelineError(err, 'respond', job, 'QUEUE_UNAVAILABLE') };
    }
  }, concurrency);
}
