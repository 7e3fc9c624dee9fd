/**
 * Worker side, the first stage: receive request messages with sqs-consumer (batches of up to 10)
 * and emit one `Job` per message.
 *
 * sqs-consumer deletes what its batch handler returns. The handler waits until every job of its
 * batch has come out of the pipeline — the subscriber hands each one back through `done` — and
 * returns the messages whose outcome is final (`settlementOf`); the others are left for SQS to
 * deliver again after the visibility timeout. The ack stays here, keyed by message id: jobs carry
 * only their message.
 */
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { Observable } from 'rxjs';
import { Consumer } from 'sqs-consumer';
import type { Logger } from '../../../lib/log.js';
import { PipelineError, settlementOf } from '../../contract/errors.js';
import { parseImageRequest } from '../../contract/messages.js';
import type { Job } from '../job.js';

export interface ConsumeOptions {
  readonly queueUrl: string;
  /** Messages per receive, 1..10. */
  readonly batchSize: number;
  readonly visibilityTimeoutSeconds: number;
  /** Receive loops running at once: 2 lets the next batch be fetched and decoded during inference. */
  readonly pollers: number;
  readonly waitTimeSeconds: number;
  /** A batch not finished by then is handed back as it is: finished messages are deleted, the rest redelivered. */
  readonly batchDeadlineMs: number;
  /** Aborting stops receiving; `jobs` completes once the batches in flight are finished. */
  readonly signal?: AbortSignal;
  readonly log: Logger;
}

export interface Consumed {
  /** One job per message received, until `signal` aborts and every batch in flight is handed back. */
  readonly jobs: Observable<Job>;
  /** Hands a job back once it is final for this worker: its message is deleted or left to SQS. */
  done(job: Job): void;
}

export function consume(sqs: SQSClient, options: ConsumeOptions): Consumed {
  const settle = new Map<string, (job: Job) => void>();
  const done = (job: Job) => {
    const id = job.message?.MessageId;
    const callback = id === undefined ? undefined : settle.get(id);
    if (!callback) {
      options.log.warn('a job came back after its batch was handed back (deadline passed), or was never handed out', {
        requestId: job.request.requestId,
        messageId: id,
      });
      return;
    }
    settle.delete(id!);
    callback(job);
  };

  const jobs = new Observable<Job>((subscriber) => {
    const handleMessageBatch = (messages: Message[]) =>
      new Promise<Message[]>((resolveBatch) => {
        const finished: Message[] = [];
        let pending = messages.length;
        // sqs-consumer has no deadline for batch handlers; a job stuck in a stage must not hold its
        // poller (and, through the heartbeat, its messages) for ever.
        const deadline = setTimeout(() => {
          options.log.error('batch not finished in time; unfinished messages will be redelivered', {
            pending,
            deadlineMs: options.batchDeadlineMs,
          });
          for (const message of messages) settle.delete(message.MessageId!);
          resolveBatch([...finished]);
        }, options.batchDeadlineMs);
        const handBack = (message: Message) => (final: Job) => {
          if (settlementOf(final.failure).final) finished.push(message);
          if (--pending === 0) {
            clearTimeout(deadline);
            resolveBatch(finished);
          }
        };
        for (const message of messages) {
          const back = handBack(message);
          let job: Job;
          try {
            const request = parseImageRequest(message.Body);
            // From when the queue took the message (SentTimestamp) — not from enqueuedAt, which is
            // set before the web tier's SendMessageBatch and would count the enqueue stage twice.
            const sent = Number(message.Attributes?.SentTimestamp ?? request.enqueuedAt);
            const queueWait = Math.max(0, Date.now() - (Number.isFinite(sent) ? sent : request.enqueuedAt));
            job = { request, message, timings: { ...request.timings, queueWait } };
          } catch (err) {
            // A message we cannot read can never succeed and has nobody to answer: drop it loudly.
            options.log.error('unreadable request message dropped', { messageId: message.MessageId, error: err });
            const failure = new PipelineError(
              'BAD_MESSAGE',
              (err as Error).message,
              { stage: 'consume', retryable: false, messageId: message.MessageId },
              { cause: err },
            );
            back({
              request: { v: 1, requestId: 'unknown', bucket: '', key: '', file: '', enqueuedAt: 0, timings: {} },
              message,
              timings: {},
              failure,
            });
            continue;
          }
          settle.set(message.MessageId!, back);
          subscriber.next(job);
        }
      });

    const consumers = Array.from({ length: options.pollers }, () =>
      Consumer.create({
        queueUrl: options.queueUrl,
        sqs,
        batchSize: options.batchSize,
        visibilityTimeout: options.visibilityTimeoutSeconds,
        waitTimeSeconds: options.waitTimeSeconds,
        messageSystemAttributeNames: ['SentTimestamp'],
        handleMessageBatch,
        // Keep extending the visibility of a batch still being worked on, so a slow batch is not
        // delivered a second time; a crashed worker stops beating and its messages come back.
        heartbeatInterval: Math.max(1, Math.floor(options.visibilityTimeoutSeconds / 3)),
        // On stop, wait for the last receive and its batch (including the delete) to finish.
        pollingCompleteWaitTimeMs: (options.waitTimeSeconds + options.visibilityTimeoutSeconds) * 1000,
        strictReturn: true,
      }),
    );
    for (const consumer of consumers) {
      consumer.on('error', (err) => options.log.error('receive failed', { error: err }));
      consumer.on('processing_error', (err) => options.log.error('batch failed', { error: err }));
      consumer.on('timeout_error', (err) => options.log.error('batch timed out', { error: err }));
      consumer.start();
    }
    // sqs-consumer looks once a second whether its last receive and that batch (deletes included)
    // are done; looking every 50 ms makes a stop take as long as the work in hand, not up to a
    // second more. Its own 'stopped' still ends the wait when pollingCompleteWaitTimeMs runs out.
    let watch: NodeJS.Timeout | undefined;
    const finish = () => {
      if (subscriber.closed) return;
      clearInterval(watch);
      subscriber.complete();
    };
    const stopAll = () => {
      let stopped = 0;
      for (const consumer of consumers) {
        consumer.once('stopped', () => {
          if (++stopped === consumers.length) finish();
        });
        consumer.stop();
      }
      watch = setInterval(() => {
        if (consumers.every((consumer) => !consumer.status.isPolling)) finish();
      }, 50);
    };
    if (options.signal?.aborted) stopAll();
    else options.signal?.addEventListener('abort', stopAll, { once: true });
    return () => {
      clearInterval(watch);
      options.signal?.removeEventListener('abort', stopAll);
      for (const consumer of consumers) consumer.stop();
    };
  });
  return { jobs, done };
}
