/**
 * The web tier's half of the pipeline for one image: ingest → enqueue → (wait for) answer.
 */
import { lastValueFrom, of } from 'rxjs';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Producer } from 'sqs-producer';
import type { Answer, ImageRequest, Timings } from './messages.js';
import type { AnswerInbox } from './stages/answer.js';
import { enqueue } from './stages/enqueue.js';
import { ingest, type Upload } from './stages/ingest.js';

export interface SubmitDeps {
  readonly s3: S3Client;
  readonly inputBucket: string;
  readonly producer: Producer;
  readonly inbox: AnswerInbox;
  readonly timeoutMs: number;
}

/** The answer, with the timings of the web-side stages (the worker never sees `enqueue`). */
export async function submitImage(deps: SubmitDeps, upload: Upload): Promise<{ answer: Answer; timings: Timings }> {
  // Wait first, send second: even an instant answer finds its waiter.
  const expectation = deps.inbox.expect(upload.requestId, deps.timeoutMs);
  let request: ImageRequest;
  try {
    request = await lastValueFrom(of(upload).pipe(ingest(deps.s3, deps.inputBucket), enqueue(deps.producer, deps.inbox.queueUrl)));
  } catch (err) {
    expectation.cancel();
    throw err;
  }
  return { answer: await expectation.answer, timings: request.timings };
}
