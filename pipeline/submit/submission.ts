/**
 * What the web tier hands the pipeline (a `Submission`), how it ends (`Outcome`), and the shape of
 * a step that answers one (`Answerer`): the queue path of the submitter, or the result cache in
 * front of it.
 */
import type { PipelineError } from '../contract/errors.js';
import type { ClassificationResult, Protocol } from '../contract/messages.js';
import type { Upload } from './ingest.js';

export interface Submission {
  /** The client's file name, exactly as sent. */
  readonly file: string;
  readonly bytes: Buffer;
  /** Decided from the bytes. */
  readonly contentType: string;
  readonly protocol: Protocol;
  /** Milliseconds the upload took to arrive (from the request's first byte). */
  readonly uploadMs: number;
}

/** How a submitted image ended, as far as this process waited. */
export type Outcome =
  | { readonly kind: 'done'; readonly id: string; readonly result: ClassificationResult }
  | { readonly kind: 'failed'; readonly id: string; readonly error: PipelineError }
  /** Accepted and still in work (the wait ran out, or this process is stopping): poll the job. */
  | { readonly kind: 'pending'; readonly id: string };

/**
 * Answers an image that has its request id: through the queue and a worker, or by something in
 * front of that. `started`: when this process began on it (`performance.now()`).
 */
export type Answerer = (id: string, submission: Submission, waitMs: number, started: number) => Promise<Outcome>;

/** What the input bucket keeps of a submission, under its request id. */
export const uploadOf = (requestId: string, submission: Submission): Upload => ({
  requestId,
  file: submission.file,
  bytes: submission.bytes,
  contentType: submission.contentType,
  protocol: submission.protocol,
  timings: { upload: submission.uploadMs },
});
