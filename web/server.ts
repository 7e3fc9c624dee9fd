/**
 * The web tier as a running thing: its own response queue, the answer inbox, the producer for the
 * request queue, and the HTTP server. `stop` closes them in the order that loses nothing it can keep.
 */
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { Producer } from 'sqs-producer';
import type { AwsClients } from '../pipeline/aws/clients.js';
import { createResponseQueue, deleteQueue, type Resources } from '../pipeline/aws/resources.js';
import type { Config } from '../pipeline/config.js';
import type { Logger } from '../pipeline/log.js';
import { jobStatus } from '../pipeline/jobs.js';
import { AnswerInbox } from '../pipeline/stages/answer.js';
import { EnqueueBatcher } from '../pipeline/stages/enqueue.js';
import { createApp } from './app.js';

export interface WebTier {
  readonly url: string;
  readonly responseQueueUrl: string;
  readonly server: Server;
  /** Answers received for requests nobody waited for any more (duplicates, late answers). */
  readonly unmatchedAnswers: () => number;
  stop(): Promise<void>;
}

export async function startWebTier(
  config: Config,
  clients: AwsClients,
  resources: Resources,
  log: Logger,
  status: () => Promise<object>,
): Promise<WebTier> {
  const responseQueue = await createResponseQueue(clients, config);
  const inbox = new AnswerInbox(clients.sqs, responseQueue.url, log.child('answers'), config.worker.receiveWaitSeconds);
  inbox.start();
  const enqueuer = new EnqueueBatcher(Producer.create({ queueUrl: resources.requestQueueUrl, sqs: clients.sqs }));

  const app = createApp({
    submit: { s3: clients.s3, inputBucket: config.names.inputBucket, enqueuer, inbox, timeoutMs: config.limits.requestTimeoutMs, retryBudgetMs: config.limits.outageRetryMs },
    limits: config.limits,
    log: log.child('http'),
    status,
    job: (id) => jobStatus(clients.s3, { input: config.names.inputBucket, output: config.names.outputBucket }, id, config.names.maxReceives),
    checkReady: async () => {
      await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: resources.requestQueueUrl, AttributeNames: ['QueueArn'] }));
      await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: responseQueue.url, AttributeNames: ['QueueArn'] }));
      await clients.s3.send(new HeadBucketCommand({ Bucket: config.names.inputBucket }));
      await clients.s3.send(new HeadBucketCommand({ Bucket: config.names.outputBucket }));
    },
  });

  const server = app.listen({ host: config.http.host, port: config.http.port });
  let inFlight = 0;
  server.on('request', (_req, res: ServerResponse) => {
    inFlight++;
    res.once('close', () => inFlight--);
  });
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
    unmatchedAnswers: () => inbox.unmatched,
    stop() {
      stopping ??= (async () => {
        // No new connections; requests in progress keep their sockets until answered or failed.
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        // Requests still uploading, storing or waiting get 5 s to finish normally; then the ones
        // still waiting for an answer get their job id back (202, or 503 on the classic route).
        await until(() => inFlight === 0, 5_000);
        inbox.release();
        await until(() => inFlight === 0, 2_000);
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

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}
