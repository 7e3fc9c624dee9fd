/**
 * Worker side, the last stage: send each answer the rule says to send (`settlementOf`) — the result,
 * or the error that ended the job for good — to the reply-to queue of the web-tier process that is
 * waiting. Answers leaving together (one inference batch) share SendMessageBatch calls per reply
 * queue. An answer that could not be sent makes the job retryable: its message comes back.
 */
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { from, mergeMap, type OperatorFunction, pipe } from 'rxjs';
import { isQueueMissing } from '../../../lib/aws/errors.js';
import { retry } from '../../../lib/retry.js';
import { asPipelineError, PipelineError, settlementOf } from '../../contract/errors.js';
import { type Answer, roundMs, serializeMessage } from '../../contract/messages.js';
import type { Job } from '../job.js';
import { batchUntil } from './batch-until.js';

export function answerOf(job: Job): Answer {
  return job.failure
    ? { v: 1, requestId: job.request.requestId, ok: false, error: job.failure.toAnswerError() }
    : { v: 1, requestId: job.request.requestId, ok: true, result: job.result! };
}

const needsAnswer = (job: Job) => job.request.replyTo !== undefined && settlementOf(job.failure).answer;

/** Sends up to 10 answers to one reply queue; returns the jobs with failures where sending failed. */
async function answerGroup(
  sqs: SQSClient,
  replyTo: string,
  jobs: readonly Job[],
  retryBudgetMs: number,
): Promise<Job[]> {
  const started = performance.now();
  const entries = jobs.map((job, i) => ({ Id: String(i), MessageBody: serializeMessage(answerOf(job)) }));
  try {
    const { Failed } = await retry(
      () => sqs.send(new SendMessageBatchCommand({ QueueUrl: replyTo, Entries: entries })),
      { budgetMs: retryBudgetMs },
    );
    const refused = new Map((Failed ?? []).map((f) => [Number(f.Id), f]));
    const respond = roundMs(performance.now() - started);
    return jobs.map((job, i) => {
      const f = refused.get(i);
      if (!f) return { ...job, timings: { ...job.timings, respond } };
      // Not answered means not finished, whatever the job's outcome: keep the message for redelivery.
      const failure = new PipelineError(
        'QUEUE_UNAVAILABLE',
        `the answer was refused: ${f.Code} ${f.Message ?? ''}`,
        { stage: 'respond', retryable: true, requestId: job.request.requestId, replyTo },
        { cause: job.failure },
      );
      return { ...job, failure };
    });
  } catch (err) {
    // The reply queue is gone (its web process stopped): the result is persisted, nobody waits.
    if (isQueueMissing(err)) return [...jobs];
    return jobs.map((job) => {
      const failure = asPipelineError(
        err,
        'respond',
        { requestId: job.request.requestId, replyTo },
        'QUEUE_UNAVAILABLE',
      );
      return {
        ...job,
        failure: failure.retryable
          ? failure
          : new PipelineError(failure.code, failure.message, { ...failure.context, retryable: true }, { cause: err }),
      };
    });
  }
}

export function respond(sqs: SQSClient, concurrency: number, retryBudgetMs: number): OperatorFunction<Job, Job> {
  return pipe(
    batchUntil<Job>(10, 2),
    mergeMap(async (batch) => {
      const groups = new Map<string, Job[]>();
      for (const job of batch.filter(needsAnswer)) {
        const group = groups.get(job.request.replyTo!) ?? [];
        group.push(job);
        groups.set(job.request.replyTo!, group);
      }
      const answered = new Map<Job, Job>();
      await Promise.all(
        [...groups].map(async ([replyTo, jobs]) => {
          const out = await answerGroup(sqs, replyTo, jobs, retryBudgetMs);
          for (const [i, job] of jobs.entries()) answered.set(job, out[i]!);
        }),
      );
      return batch.map((job) => answered.get(job) ?? job);
    }, concurrency),
    mergeMap((batch) => from(batch)),
  );
}
