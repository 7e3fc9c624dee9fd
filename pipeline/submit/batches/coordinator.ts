/**
 * Runs one batch, in whichever web instance holds its lease. All its state is in the output bucket
 * and its queues, so a coordinator that dies (kill -9, a restart, an instance gone) is replaced by
 * the next one to claim the lease, which goes on from the record:
 *
 *   list    one page (≤ 1000 keys) of the prefix at a time. The page is written first
 *           (`pages/<n>.json`: its keys and the token of the next page), then its objects are
 *           queued — one request each, SendMessageBatch — then the record moves past it. A page
 *           queued twice (a coordinator that died in between) is harmless: see count.
 *   count   workers answer on the batch's own queue. Each answer marks its object in the progress
 *           bitmap, once, whatever the redeliveries; the bitmap and the counts are saved (bitmap
 *           first, then the record by compare-and-swap) before the answers are deleted, so a
 *           coordinator that dies loses none and counts none twice.
 *   finish  when every listed object is answered (or the batch was cancelled): the manifest
 *           (`results.jsonl`, streamed in listing order), the summary to `notify`, the queue and
 *           the active mark removed.
 *
 * The lease is renewed with every save. A save whose compare-and-swap fails re-reads the record: a
 * cancel (another instance) is taken in; a lease now held by another instance means this one lost
 * it, and stops without writing.
 */

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { DeleteMessageBatchCommand, type Message, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { AwsClients } from '../../../lib/aws/clients.js';
import { isAccessDenied, isNoSuchBucket, isQueueMissing } from '../../../lib/aws/errors.js';
import type { Config } from '../../../lib/config.js';
import type { Logger } from '../../../lib/log.js';
import type { BatchStore } from '../../batch-store.js';
import { type BatchPage, type BatchRecord, FINISHED } from '../../contract/batch.js';
import { batchManifestKey, batchProgressKey } from '../../contract/keys.js';
import { type ImageRequest, parseAnswer, serializeMessage } from '../../contract/messages.js';
import { s3Url } from '../../contract/sources.js';
import { createBatchQueue, deleteQueue, type Resources } from '../../resources.js';
import type { Store } from '../../store.js';
import type { EnqueueBatcher } from '../enqueue.js';
import type { Notifier } from '../notify.js';
import { Progress } from './progress.js';
import { batchView } from './view.js';

export interface CoordinatorDeps {
  readonly config: Config;
  readonly clients: AwsClients;
  readonly resources: Resources;
  readonly store: Store;
  readonly batches: BatchStore;
  readonly enqueuer: EnqueueBatcher;
  readonly notifier: Notifier;
  readonly log: Logger;
  /** This web process, as lease owner. */
  readonly owner: string;
  /** How long a lease lasts unless renewed (another instance takes over after that). */
  readonly leaseMs: number;
}

/** A lease owner's name: this host and process, and a random part (a pid comes back after a restart). */
export const ownerName = (): string => `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;

/** The request id of object `seq` of batch `id` (answers carry it back). */
export const itemRequestId = (id: string, seq: number): string => `${id}_${seq}`;
const seqOf = (requestId: string): number => Number(requestId.slice(requestId.lastIndexOf('_') + 1));

/** How often the counts are saved while answers come in, and at the latest (the lease's renewal). */
const SAVE_EVERY_MS = 1_000;

export class BatchCoordinator {
  private progress = new Progress();
  /** Answers counted but not yet saved: deleted from the queue only after the save. */
  private held: Message[] = [];
  private savedAt = 0;
  private generation = 0;
  private rateSample: { at: number; answered: number } | undefined;
  private nextToken: string | undefined;

  private constructor(
    private readonly deps: CoordinatorDeps,
    private record: BatchRecord,
    private etag: string,
  ) {}

  /**
   * Takes the batch's lease if it is free (never taken, expired, or this process's own): a
   * coordinator to run, or undefined when another instance runs it.
   */
  static async claim(deps: CoordinatorDeps, id: string): Promise<BatchCoordinator | undefined> {
    const current = await deps.batches.read(id);
    if (!current) {
      await deps.batches.retire(id);
      return undefined;
    }
    const { lease } = current.value;
    if (lease && lease.owner !== deps.owner && lease.until > Date.now()) return undefined;
    let record: BatchRecord = { ...current.value, lease: { owner: deps.owner, until: Date.now() + deps.leaseMs } };
    if (!FINISHED.has(record.status) && record.answers === undefined) {
      record = { ...record, answers: await createBatchQueue(deps.clients, deps.config, id) };
    }
    if (record.startedAt === undefined) record = { ...record, startedAt: new Date().toISOString() };
    const etag = await deps.batches.replace(record, current.etag);
    if (etag === undefined) return undefined;
    const coordinator = new BatchCoordinator(deps, record, etag);
    if (record.progress) {
      const bytes = await deps.batches.getProgress(record.progress);
      if (bytes) coordinator.progress = Progress.decode(bytes);
    }
    deps.log.info('batch claimed', {
      batch: id,
      status: record.status,
      listed: record.listing.listed,
      ...record.counts,
    });
    return coordinator;
  }

  get id(): string {
    return this.record.id;
  }

  /** Runs the batch until it finishes, the lease is lost, or `signal` aborts (then the lease is let go for the next instance). */
  async run(signal: AbortSignal): Promise<void> {
    try {
      while (!signal.aborted) {
        if (FINISHED.has(this.record.status)) {
          await this.finish();
          return;
        }
        if (!this.record.listing.complete) {
          if (!(await this.listNextPage())) return;
        }
        await this.receiveAnswers(this.record.listing.complete ? 2 : 0, signal);
        const answered = this.progress.done + this.progress.failed;
        const due = Date.now() - this.savedAt >= SAVE_EVERY_MS || this.held.length >= 500;
        if (this.record.listing.complete && answered >= this.record.listing.listed) {
          // Every object answered: the manifest first, so a batch that says `done` has its results in place.
          await this.writeManifest();
          this.record = { ...this.record, status: 'done', finishedAt: new Date().toISOString() };
          if (!(await this.save())) return;
        } else if (due && !(await this.save())) return;
      }
      // Stopping (the web tier goes): save what was counted and let the lease go now.
      this.record = { ...this.record, lease: { owner: this.deps.owner, until: 0 } };
      await this.save(0);
    } catch (err) {
      this.deps.log.error('batch coordinator failed; the lease lapses and it is taken up again', {
        batch: this.id,
        error: err,
      });
    }
  }

  /** Writes the next page of the listing (or reuses it, if a coordinator before this one wrote it) and queues its objects. */
  private async listNextPage(): Promise<boolean> {
    const { batches, store } = this.deps;
    const { id, source, listing } = this.record;
    let page = await batches.getPage(id, listing.pages);
    if (!page) {
      let token: string | undefined;
      if (listing.pages > 0) token = this.nextToken ?? (await batches.getPage(id, listing.pages - 1))?.next;
      let listed: { keys: string[]; next?: string };
      try {
        listed = await store.listPage(source.bucket, source.key, token, this.deps.config.batches.pageSize);
      } catch (err) {
        if (isNoSuchBucket(err) || isAccessDenied(err)) {
          const code = isNoSuchBucket(err) ? 'SOURCE_NOT_FOUND' : 'SOURCE_NOT_ALLOWED';
          this.record = {
            ...this.record,
            status: 'failed',
            finishedAt: new Date().toISOString(),
            error: { code, message: `listing ${s3Url(source)} failed: ${(err as Error).message}` },
          };
          return this.save();
        }
        throw err;
      }
      // A key ending in `/` is a folder marker (the console makes them), not an object.
      const keys = listed.keys.filter((k) => !k.endsWith('/'));
      page = { first: listing.listed, keys, ...(listed.next ? { next: listed.next } : {}) };
      await batches.putPage(id, listing.pages, page);
    }
    await this.enqueue(page);
    this.nextToken = page.next;
    const complete = page.next === undefined;
    this.record = {
      ...this.record,
      status: complete ? 'running' : 'listing',
      listing: { pages: listing.pages + 1, listed: page.first + page.keys.length, complete },
    };
    // Saved now: a coordinator after this one goes on from the next page.
    return this.save();
  }

  private async enqueue(page: BatchPage): Promise<void> {
    const { id, source, answers } = this.record;
    await Promise.all(
      page.keys.map((key, i) => {
        const seq = page.first + i;
        const request: ImageRequest = {
          v: 1,
          requestId: itemRequestId(id, seq),
          bucket: source.bucket,
          key,
          file: key.slice(key.lastIndexOf('/') + 1),
          kind: 'reference',
          protocol: 'api',
          batch: { id, seq },
          ...(answers ? { replyTo: answers } : {}),
          enqueuedAt: Date.now(),
          timings: {},
        };
        return this.deps.enqueuer.send(request.requestId, serializeMessage(request));
      }),
    );
  }

  /** Counts what the workers answered, holding the messages until the counts are saved. */
  private async receiveAnswers(waitSeconds: number, signal: AbortSignal): Promise<void> {
    const queue = this.record.answers;
    if (!queue) return;
    for (let round = 0; round < 50 && !signal.aborted; round++) {
      const { Messages = [] } = await this.deps.clients.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queue,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: round === 0 ? waitSeconds : 0,
        }),
      );
      for (const message of Messages) {
        this.held.push(message);
        try {
          const answer = parseAnswer(message.Body);
          this.progress.mark(seqOf(answer.requestId), answer.ok);
        } catch (err) {
          this.deps.log.warn('unreadable answer on a batch queue dropped', { batch: this.id, error: err });
        }
      }
      if (Messages.length < 10) return;
    }
  }

  /**
   * Saves the counts (the bitmap, then the record by compare-and-swap, renewing the lease), then
   * deletes the answers they include. False when the lease is lost: stop, write nothing more.
   */
  private async save(leaseMs = this.deps.leaseMs): Promise<boolean> {
    const { batches, owner } = this.deps;
    const counts = { done: this.progress.done, failed: this.progress.failed };
    // A new bitmap only when the counts moved; a save with nothing new only renews the lease.
    const moved =
      counts.done !== this.record.counts.done || counts.failed !== this.record.counts.failed || !this.record.progress;
    const key = moved ? batchProgressKey(this.id, owner, ++this.generation) : this.record.progress!;
    if (moved) await batches.putProgress(key, this.progress.encode());
    const now = Date.now();
    const rate = this.measureRate(now);
    const mine = (record: BatchRecord): BatchRecord => ({
      ...record,
      counts,
      progress: key,
      ...(rate === undefined ? {} : { rate }),
      lease: { owner, until: leaseMs === 0 ? 0 : now + leaseMs },
    });
    let next = mine(this.record);
    let etag = await batches.replace(next, this.etag);
    while (etag === undefined) {
      const current = await batches.read(this.id);
      if (!current || current.value.lease?.owner !== owner) {
        this.deps.log.warn('batch lease lost to another instance; stopping here', {
          batch: this.id,
          owner: current?.value.lease?.owner,
        });
        if (moved) await batches.deleteProgress(key).catch(() => undefined);
        return false;
      }
      // Changed by someone else while ours: a cancel. Theirs wins for the status, ours for the counts.
      const cancelled = current.value.status === 'cancelled' && !FINISHED.has(this.record.status);
      next = mine(
        cancelled
          ? { ...this.record, status: 'cancelled', finishedAt: current.value.finishedAt ?? new Date().toISOString() }
          : { ...this.record, ...pickExternal(current.value) },
      );
      this.etag = current.etag;
      etag = await batches.replace(next, this.etag);
    }
    const previous = this.record.progress;
    this.record = next;
    this.etag = etag;
    this.savedAt = now;
    if (previous && previous !== key) await batches.deleteProgress(previous).catch(() => undefined);
    await this.deleteHeld();
    return true;
  }

  /** Answers per second since the last save (smoothed), for the ETA. */
  private measureRate(now: number): number | undefined {
    const answered = this.progress.done + this.progress.failed;
    const last = this.rateSample;
    this.rateSample = { at: now, answered };
    if (!last || now - last.at < 200) return this.record.rate;
    const instant = ((answered - last.answered) * 1000) / (now - last.at);
    const previous = this.record.rate;
    return Math.round((previous === undefined ? instant : 0.7 * previous + 0.3 * instant) * 100) / 100;
  }

  private async deleteHeld(): Promise<void> {
    const queue = this.record.answers;
    const held = this.held;
    this.held = [];
    if (!queue) return;
    for (let i = 0; i < held.length; i += 10) {
      const entries = held.slice(i, i + 10).map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle! }));
      // An answer not deleted comes back and is found already counted.
      await this.deps.clients.sqs
        .send(new DeleteMessageBatchCommand({ QueueUrl: queue, Entries: entries }))
        .catch((err: unknown) => {
          if (!isQueueMissing(err))
            this.deps.log.warn('could not delete counted answers (they will be counted once when they come back)', {
              batch: this.id,
              error: err,
            });
        });
    }
  }

  private async writeManifest(): Promise<void> {
    await this.deps.batches.writeManifest(this.id, manifestLines(this.deps.batches.items(this.id)));
    this.record = { ...this.record, results: batchManifestKey(this.id) };
  }

  /** The manifest, the summary to `notify`, then the queue and the active mark go. Each step is skipped when a coordinator before did it. */
  private async finish(): Promise<void> {
    const { batches, notifier, log, clients } = this.deps;
    const { id } = this.record;
    if (!this.record.results) {
      await this.writeManifest();
      if (!(await this.save())) return;
    }
    if (this.record.notify && !this.record.notified) {
      // Delivery may take a while (retries): the lease is renewed around it.
      const delivered = await notifier.deliver(this.record.notify, 'batch.finished', {
        event: 'batch.finished',
        batch: batchView(this.record, this.deps.config.names.outputBucket),
      });
      this.record = { ...this.record, notified: delivered };
      if (!(await this.save())) return;
    }
    if (this.record.answers) await deleteQueue(clients, this.record.answers).catch(() => undefined);
    if (this.record.progress) await batches.deleteProgress(this.record.progress).catch(() => undefined);
    await batches.retire(id);
    log.info('batch finished', {
      batch: id,
      status: this.record.status,
      listed: this.record.listing.listed,
      ...this.record.counts,
    });
  }
}

/** What another instance may change in a record while this one runs it: only a cancel. */
const pickExternal = (record: BatchRecord): Partial<BatchRecord> =>
  record.status === 'cancelled'
    ? { status: 'cancelled', ...(record.finishedAt ? { finishedAt: record.finishedAt } : {}) }
    : {};

async function* manifestLines(items: AsyncIterable<unknown>): AsyncGenerator<Buffer> {
  let chunk = '';
  for await (const item of items) {
    chunk += `${JSON.stringify(item)}\n`;
    if (chunk.length >= 256 * 1024) {
      yield Buffer.from(chunk);
      chunk = '';
    }
  }
  if (chunk) yield Buffer.from(chunk);
}
