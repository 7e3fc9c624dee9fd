/**
 * The web tier as a running thing: its own response queue, the answer inbox, the producer for the
 * request queue, and the HTTP server. `stop` closes them in the order that loses nothing it can keep.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { Producer } from 'sqs-producer';
import type { AwsClients } from '../pipeline/aws/clients.js';
import { createResponseQueue, deleteQueue, type Resources } from '../pipeline/aws/resources.js';
import type { Config } from '../pipeline/config.js';
import type { Logger } from '../pipeline/log.js';
import { AnswerInbox } from '../pipeline/stages/answer.js';
import { createApp } from './app.js';

export interface WebTier {
  readonly url: string;
  readonly responseQueueUrl: string;
  readonly server: Server;
  stop(): Promise<void>;
}

export async function startWebTier(config: Config, clients: AwsClients, resources: Resources, log: Logger): Promise<WebTier> {
  const responseQueue = await createResponseQueue(clients, config);
  const inbox = new AnswerInbox(clients.sqs, responseQueue.url, log.child('answers'), config.worker.receiveWaitSeconds);
  inbox.start();
  const producer = Producer.create({ queueUrl: resources.requestQueueUrl, sqs: clients.sqs });

  const app = createApp({
    submit: { s3: clients.s3, inputBucket: config.names.inputBucket, producer, inbox, timeoutMs: config.limits.requestTimeoutMs },
    limits: config.limits,
    log: log.child('http'),
    checkReady: async () => {
      await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: resources.requestQueueUrl, AttributeNames: ['QueueArn'] }));
      await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: responseQueue.url, AttributeNames: ['QueueArn'] }));
      await clients.s3.send(new HeadBucketCommand({ Bucket: config.names.inputBucket }));
      await clients.s3.send(new HeadBucketCommand({ Bucket: config.names.outputBucket }));
    },
  });

  const server = app.listen({ host: config.http.host, port: config.http.port });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  // Uploads of large files on slow links must not be cut by Node's default request timeout,
  // and answers can take as long as the configured wait.
  server.requestTimeout = config.limits.requestTimeoutMs + 30_000;
  const { address, port } = server.address() as AddressInfo;
  const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  log.info('web tier listening', { url, responseQueue: responseQueue.name });

  let stopping: Promise<void> | undefined;
  return {
    url,
    responseQueueUrl: responseQueue.url,
    server,
    stop() {
      stopping ??= (async () => {
        // No new connections; requests in progress keep their sockets until answered or failed.
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const deadline = Date.now() + 10_000;
        while (inbox.waiting > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        inbox.stop();
        server.closeAllConnections();
        await closed;
        await deleteQueue(clients, responseQueue.url).catch((err: unknown) =>
          log.warn('could not delete the response queue', { queue: responseQueue.name, error: err }),
        );
        log.info('web tier stopped');
      })();
      return stopping;
    },
  };
}
