/**
 * Web side, the last step: wait for the worker's answer on this process's own response queue,
 * matched by request id. One receive loop serves every waiting request; an answer for a request
 * nobody waits for any more (timed out, or a duplicate delivery) is logged and dropped.
 */
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { Consumer } from 'sqs-consumer';
import type { Logger } from '../../lib/log.js';
import { PipelineError } from '../contract/errors.js';
import { type Answer, parseAnswer } from '../contract/messages.js';

interface Waiter {
  resolve(answer: Answer): void;
  reject(err: PipelineError): void;
  timer: NodeJS.Timeout;
}

export class AnswerInbox {
  private readonly waiters = new Map<string, Waiter>();
  private readonly consumer: Consumer;
  private stopped = false;
  /** Answers that found nobody waiting (late after a 202 or a timeout, or a duplicate delivery). */
  unmatched = 0;

  constructor(
    sqs: SQSClient,
    readonly queueUrl: string,
    private readonly log: Logger,
    waitTimeSeconds = 20,
  ) {
    this.consumer = Consumer.create({
      queueUrl,
      sqs,
      batchSize: 10,
      waitTimeSeconds,
      strictReturn: true,
      handleMessageBatch: async (messages) => {
        for (const message of messages) this.deliver(message);
        return messages;
      },
    });
    this.consumer.on('error', (err) => {
      // The last long poll of a stopped inbox may fail when the endpoint goes first: expected.
      if (this.stopped) this.log.debug('response queue receive failed after stop', { error: err, queueUrl });
      else this.log.error('response queue receive failed', { error: err, queueUrl });
    });
  }

  start(): void {
    this.consumer.start();
  }

  /** Requests still waiting for their answer. */
  get waiting(): number {
    return this.waiters.size;
  }

  /**
   * Registers interest in `requestId` *before* its request is sent, so even an instant answer
   * finds its waiter. `answer` rejects with TIMEOUT after `timeoutMs`; `cancel` forgets the request
   * (when it could not be sent) without settling `answer`.
   */
  expect(requestId: string, timeoutMs: number): { answer: Promise<Answer>; cancel(): void } {
    const answer = new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(requestId);
        reject(
          new PipelineError('TIMEOUT', `no answer within ${timeoutMs} ms`, {
            stage: 'answer',
            retryable: true,
            requestId,
            timeoutMs,
          }),
        );
      }, timeoutMs);
      this.waiters.set(requestId, { resolve, reject, timer });
    });
    // Nobody may be listening yet (the upload is still being stored): a timeout or shutdown in
    // that window must not become an unhandled rejection. Callers still see it through `answer`.
    answer.catch(() => undefined);
    return {
      answer,
      cancel: () => {
        const waiter = this.waiters.get(requestId);
        if (waiter) clearTimeout(waiter.timer);
        this.waiters.delete(requestId);
      },
    };
  }

  /** Fails every waiting request with SHUTTING_DOWN (their clients get a job to poll) but keeps receiving. */
  release(): void {
    for (const [requestId, waiter] of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(
        new PipelineError('SHUTTING_DOWN', 'the web tier is shutting down', {
          stage: 'answer',
          retryable: true,
          requestId,
        }),
      );
    }
    this.waiters.clear();
  }

  /** Stops receiving; requests still waiting fail with SHUTTING_DOWN. */
  stop(): void {
    this.stopped = true;
    this.consumer.stop();
    this.release();
  }

  private deliver(message: Message): void {
    let answer: Answer;
    try {
      answer = parseAnswer(message.Body);
    } catch (err) {
      this.log.error('unreadable answer dropped', { messageId: message.MessageId, error: err });
      return;
    }
    const waiter = this.waiters.get(answer.requestId);
    if (!waiter) {
      this.unmatched++;
      this.log.debug('answer for a request nobody waits for', { requestId: answer.requestId });
      return;
    }
    this.waiters.delete(answer.requestId);
    clearTimeout(waiter.timer);
    waiter.resolve(answer);
  }
}
