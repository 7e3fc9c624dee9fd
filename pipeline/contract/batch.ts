/**
 * A batch: every object under an S3 prefix, classified where it is. What its record
 * (`batches/<id>/batch.json`) holds and what one object's line of results says. The record is the
 * batch's whole state — listing position, counts, who runs it — so any web instance can pick it up;
 * it is only ever replaced with a compare-and-swap on its ETag (store.ts `writeVersioned`).
 */
import type { AnswerError } from './errors.js';
import type { ClassificationResult } from './messages.js';
import type { S3Location } from './sources.js';

export type BatchStatus = 'listing' | 'running' | 'done' | 'failed' | 'cancelled';

export const FINISHED: ReadonlySet<BatchStatus> = new Set(['done', 'failed', 'cancelled']);

export interface BatchRecord {
  readonly v: 1;
  readonly id: string;
  readonly source: S3Location;
  /** A webhook URL or an SNS topic ARN, told the summary when the batch finishes. */
  readonly notify?: string;
  readonly createdAt: string;
  readonly status: BatchStatus;
  /** Pages of the listing written so far (`pages/<n>.json`), the objects in them, and whether that is all. */
  readonly listing: { readonly pages: number; readonly listed: number; readonly complete: boolean };
  /** Objects classified, and objects that failed (each counted once, whatever the redeliveries). */
  readonly counts: { readonly done: number; readonly failed: number };
  /** Objects answered per second, as last measured (for the ETA). */
  readonly rate?: number;
  /** The web instance running the batch, until when (epoch ms); another takes over after that. */
  readonly lease?: { readonly owner: string; readonly until: number };
  /** Which objects the counts include (a bitmap object under `progress/`). */
  readonly progress?: string;
  /** The queue the workers answer this batch's objects on. */
  readonly answers?: string;
  readonly finishedAt?: string;
  /** Why the batch failed (the source bucket is gone, access denied...). */
  readonly error?: { readonly code: string; readonly message: string };
  /** The summary was delivered to `notify` (so a coordinator taking over does not send it twice). */
  readonly notified?: boolean;
  /** When it started running (first claimed). */
  readonly startedAt?: string;
  /** The manifest's key in the output bucket, once written. */
  readonly results?: string;
}

/** One page of a batch's listing: its objects' keys in order from `first`, and where the next page starts. */
export interface BatchPage {
  readonly first: number;
  readonly keys: readonly string[];
  /** The continuation token of the next page; absent on the last one. */
  readonly next?: string;
}

/** One object's line in a batch's results: the usual result fields, or the error that ended it. */
export type BatchItem = { readonly seq: number; readonly source: string } & (
  | ClassificationResult
  | { readonly id: string; readonly file: string; readonly error: AnswerError; readonly completedAt: string }
);
