/**
 * The web tier's half of the pipeline for one image: ingest → enqueue → (wait for) answer.
 */
import { lastValueFrom, of } from 'rxjs';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Answer, ImageRequest, Timings } from './messages.js';
import type { AnswerInbox } from './stages/answer.js';
import { enqueue, type EnqueueBatcher } from './stages/enqueue.js';
import { ingest, type Upload } from './stages/ingest.js';

export interface SubmitDeps {
  readonly s3: S3Client;
  readonly inputBucket: string;
  readonly enqueuer: EnqueueBatcher;
  readonly inbox: AnswerInbox;
  readonly timeoutMs: number;
  /** How long storing and enqueuing keep retrying through an outage. */
  readonly retryBudgetMs: number;
}

export interface Submitted {
  /** Timings of the web-side stages (the worker never sees `enqueue`). */
  readonly timings: Timings;
  /** Settles with the worker's answer, or rejects (TIMEOUT, SHUTTING_DOWN). */
  readonly answer: Promise<Answer>;
  /** Stop waiting: the request goes on, its result lands in the output bucket. */
  readonly abandon: () => void;
}

/** Resolves once the image is stored and its request is on the queue. */
export async function submitImage(deps: SubmitDeps, upload: Upload): Promise<Submitted> {
  // Wait first, send second: even an instant answer finds its waiter.
  const expectation = deps.inbox.expect(upload.requestId, deps.timeoutMs);
  let request: ImageRequest;
  try {
    request = await lastValueFrom(of(upload).pipe(ingest(deps.s3, deps.inputBucket, deps.retryBudgetMs), enqueue(deps.enqueuer, deps.inbox.queueUrl, deps.retryBudgetMs)));
  } catch (err) {
    expectation.cancel();
    throw err;
  }
  return { timings: request.timings, answer: expectation.answer, abandon: expectation.cancel };
}
