/**
 * Worker side, stage 3: receive request messages with sqs-consumer (batches of up to 10) and emit
 * one `Job` per message; then fetch each job's image from S3.
 *
 * sqs-consumer deletes what its batch handler returns. The handler here waits until every job of
 * the batch has come out of the pipeline (the subscriber calls `job.done`), then returns the
 * messages that are finished: succeeded, or failed for good and answered. Jobs that failed for a
 * reason that may pass (S3 down...) are left for SQS to deliver again after the visibility timeout.
 */
import { GetObjectCommand, NoSuchKey, type S3Client } from '@aws-sdk/client-s3';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { Observable, type OperatorFunction } from 'rxjs';
import { Consumer } from 'sqs-consumer';
import { PipelineError } from '../errors.js';
import { stage, type Job } from '../job.js';
import { retry } from '../retry.js';
import type { Logger } from '../log.js';
import { decodeNameFromMetadata } from '../keys.js';
import { MessageFormatError, parseImageRequest, protocolOf } from '../messages.js';

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
  /** Aborting stops receiving; the observable completes once the batches in flight are finished. */
  readonly signal?: AbortSignal;
  readonly log: Logger;
}

/** A job as it leaves `consume`: it must be handed back through `done` once it is final. */
export interface ConsumedJob extends Job {
  readonly message: Message;
  readonly done: (final: Job) => void;
}

/** Whether a final job's message should be deleted. */
export const isFinished = (job: Job): boolean => !job.failure || !job.failure.retryable;

/**
 * Emits jobs until `signal` aborts, then completes once every batch in flight has been handed back
 * and deleted. (Unsubscribing instead stops at once and leaves in-flight messages to SQS.)
 */
export function consume(sqs: SQSClient, options: ConsumeOptions): Observable<ConsumedJob> {
  return new Observable<ConsumedJob>((subscriber) => {
    const handleMessageBatch = (messages: Message[]) =>
      new Promise<Message[]>((resolveBatch) => {
        const finished: Message[] = [];
        let pending = messages.length;
        // sqs-consumer has no deadline for batch handlers; a job stuck in a stage must not hold its
        // poller (and, through the heartbeat, its messages) for ever.
        const deadline = setTimeout(() => {
          options.log.error('batch not finished in time; unfinished messages will be redelivered', { pending, deadlineMs: options.batchDeadlineMs });
          resolveBatch([...finished]);
        }, options.batchDeadlineMs);
        const settle = (message: Message) => (final: Job) => {
          if (isFinished(final)) finished.push(message);
          if (--pending === 0) {
            clearTimeout(deadline);
            resolveBatch(finished);
          }
        };
        for (const message of messages) {
          const done = settle(message);
          let job: ConsumedJob;
          try {
            const request = parseImageRequest(message.Body);
            const queueWait = Math.max(0, Date.now() - request.enqueuedAt);
            job = { request, message, done, timings: { ...request.timings, queueWait } };
          } catch (err) {
            // A message we cannot read can never succeed and has nobody to answer: drop it loudly.
            options.log.error('unreadable request message dropped', { messageId: message.MessageId, error: err });
            const failure = new PipelineError('BAD_MESSAGE', (err as MessageFormatError).message, 'consume', false, { messageId: message.MessageId });
            done({ request: { v: 1, requestId: 'unknown', bucket: '', key: '', file: '', enqueuedAt: 0, timings: {} }, timings: {}, failure });
            continue;
          }
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
    let stopped = 0;
    const stopAll = () => {
      for (const consumer of consumers) {
        consumer.once('stopped', () => {
          if (++stopped === consumers.length) subscriber.complete();
        });
        consumer.stop();
      }
    };
    if (options.signal?.aborted) stopAll();
    else options.signal?.addEventListener('abort', stopAll, { once: true });
    return () => {
      options.signal?.removeEventListener('abort', stopAll);
      for (const consumer of consumers) consumer.stop();
    };
  });
}

/** Fetches the image bytes from S3. A missing object is final; an unreachable S3 is not. */
export function fetchInput(s3: S3Client, concurrency: number, retryBudgetMs: number): OperatorFunction<Job, Job> {
  return stage('fetch', 's3Get', 'INPUT_MISSING', concurrency, async (job) => {
    try {
      const get = new GetObjectCommand({ Bucket: job.request.bucket, Key: job.request.key });
      const object = await retry(() => s3.send(get), { budgetMs: retryBudgetMs });
      if (!object.Body) throw new Error('empty response body');
      const bytes = await object.Body.transformToByteArray();
      // Replayed inputs know only their key (a sanitized name): the client's own name is in the metadata.
      const file = decodeNameFromMetadata(object.Metadata?.['file-name']) ?? job.request.file;
      return {
        bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        protocol: protocolOf(object.Metadata),
        ...(file === job.request.file ? {} : { request: { ...job.request, file } }),
      };
    } catch (err) {
      if (err instanceof NoSuchKey || (err as Error).name === 'NoSuchKey') {
        throw new PipelineError('INPUT_MISSING', `input s3://${job.request.bucket}/${job.request.key} does not exist`, 'fetch', false,
          { requestId: job.request.requestId, bucket: job.request.bucket, key: job.request.key }, { cause: err });
      }
      throw err;
    }
  });
}
