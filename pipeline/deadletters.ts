/**
 * The dead-letter watcher. A request that failed `maxReceives` deliveries (a worker crashed on it
 * each time, or S3 kept failing) lands in the dead-letter queue. The watcher records it in the
 * output bucket (`dead-letters/<id>.json`, which survives restarts), tells the waiting client with
 * a DEAD_LETTER error instead of letting it hang, and removes it from the queue. The input stays in
 * the input bucket: `npm run replay -- --dlq` re-drives every recorded dead letter after a fix.
 */
import { type Message, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { Consumer } from 'sqs-consumer';
import type { Logger } from '../lib/log.js';
import { BatchStore } from './batch-store.js';
import { deadLetterError, type ImageRequest, parseImageRequest, serializeMessage } from './contract/messages.js';
import { s3Url } from './contract/sources.js';
import type { DeadLetterRecord, Store } from './store.js';

export interface DeadLetterWatcherOptions {
  readonly sqs: SQSClient;
  readonly store: Store;
  readonly queueUrl: string;
  readonly maxReceives: number;
  readonly waitTimeSeconds: number;
  readonly log: Logger;
}

export function startDeadLetterWatcher(options: DeadLetterWatcherOptions): { stop(): void } {
  const { sqs, store, log } = options;
  const batches = new BatchStore(store);
  const handle = async (message: Message): Promise<Message> => {
    let request: ImageRequest;
    try {
      request = parseImageRequest(message.Body);
    } catch (err) {
      log.error('unreadable dead letter dropped', {
        messageId: message.MessageId,
        body: message.Body?.slice(0, 500),
        error: err,
      });
      return message;
    }
    const record: DeadLetterRecord = {
      request,
      receiveCount: Number(message.Attributes?.ApproximateReceiveCount ?? options.maxReceives),
      deadAt: new Date().toISOString(),
    };
    // Record first: if this throws, the message stays and is handled again. An object of a batch
    // also gets its failed line in the batch's results.
    await store.putDeadLetter(record);
    if (request.batch) {
      await batches.putItem(request.batch.id, {
        seq: request.batch.seq,
        source: s3Url(request),
        id: request.requestId,
        file: request.file,
        error: deadLetterError(request, options.maxReceives),
        completedAt: record.deadAt,
      });
    }
    log.error('request dead-lettered', {
      requestId: request.requestId,
      key: request.key,
      receiveCount: record.receiveCount,
    });
    if (request.replyTo) {
      await sqs
        .send(
          new SendMessageCommand({
            QueueUrl: request.replyTo,
            MessageBody: serializeMessage({
              v: 1,
              requestId: request.requestId,
              ok: false,
              error: deadLetterError(request, options.maxReceives),
            }),
          }),
        )
        .catch((err: unknown) =>
          log.warn('could not tell the client about a dead letter (its web tier may be gone)', {
            requestId: request.requestId,
            error: err,
          }),
        );
    }
    return message;
  };
  const consumer = Consumer.create({
    queueUrl: options.queueUrl,
    sqs,
    batchSize: 10,
    waitTimeSeconds: options.waitTimeSeconds,
    messageSystemAttributeNames: ['ApproximateReceiveCount'],
    strictReturn: true,
    handleMessageBatch: async (messages) => {
      const handled: Message[] = [];
      for (const message of messages) {
        try {
          handled.push(await handle(message));
        } catch (err) {
          log.error('dead letter not recorded; will retry', { messageId: message.MessageId, error: err });
        }
      }
      return handled;
    },
  });
  let stopped = false;
  consumer.on('error', (err) => {
    // The last long poll of a stopped watcher may fail when the endpoint goes first: expected.
    if (stopped) log.debug('dead-letter queue receive failed after stop', { error: err });
    else log.error('dead-letter queue receive failed', { error: err });
  });
  consumer.start();
  return {
    stop: () => {
      stopped = true;
      consumer.stop();
    },
  };
}
