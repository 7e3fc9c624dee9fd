/**
 * The one door from the web tier into the pipeline. Built once from the clients and the
 * configuration, it owns everything the web tier's process needs to hand images to the workers and
 * hear back: its own response queue, the answer inbox, the batching of request messages, job
 * status, readiness, and the order in which these stop. Routes only translate HTTP to `submit` and
 * its outcome back.
 *
 *   submit(upload) = ingest (the bytes to the input bucket) → enqueue (the request message)
 *                    → the worker's answer on this process's response queue, or `pending`
 */
import { randomUUID } from 'node:crypto';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { Producer } from 'sqs-producer';
import type { AwsClients } from './aws/clients.js';
import { createResponseQueue, deleteQueue, type Resources } from './aws/resources.js';
import type { Config } from './config.js';
import { Admission, type AdmissionInputs } from './admission.js';
import { asPipelineError, PipelineError } from './errors.js';
import { modelFingerprint, ResultCache, sha256Of, type CachedResult } from './cache.js';
import { retry } from './retry.js';
import { resolveModel } from '../models/index.js';
import { roundMs } from './job.js';
import { ResponseQueueJanitor } from './janitor.js';
import type { Logger } from './log.js';
import type { WebMetrics } from './metrics.js';
import type { ClassificationResult, Protocol } from './messages.js';
import { AnswerInbox } from './stages/answer.js';
import { EnqueueBatcher, enqueue } from './stages/enqueue.js';
import { ingest } from './stages/ingest.js';
import type { JobStatus, Store } from './store.js';

export interface SubmitterOptions {
  /** Counts outcomes and stage times. */
  readonly metrics?: WebMetrics;
  /** The backlog and the workers, for refusing what could not be answered in time (admission.ts). */
  readonly load?: AdmissionInputs;
}

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

export class Submitter {
  private constructor(
    private readonly config: Config,
    private readonly clients: AwsClients,
    private readonly resources: Resources,
    private readonly store: Store,
    private readonly inbox: AnswerInbox,
    private readonly enqueuer: EnqueueBatcher,
    private readonly responseQueue: { readonly name: string; readonly url: string },
    private readonly janitor: ResponseQueueJanitor,
    private readonly log: Logger,
    private readonly metrics: WebMetrics | undefined,
    private readonly cache: ResultCache | undefined,
    private readonly admission: Admission | undefined,
  ) {}

  /**
   * Creates this process's response queue and starts listening on it; keeps it marked alive, and
   * removes the response queues that processes which no longer run left behind (janitor.ts).
   */
  static async start(config: Config, clients: AwsClients, resources: Resources, store: Store, log: Logger, options: SubmitterOptions = {}): Promise<Submitter> {
    const responseQueue = await createResponseQueue(clients, config);
    const janitor = new ResponseQueueJanitor({ sqs: clients.sqs, prefix: config.names.responseQueuePrefix, ownQueueUrl: responseQueue.url, log: log.child('janitor') });
    await janitor.start();
    const inbox = new AnswerInbox(clients.sqs, responseQueue.url, log.child('answers'), config.worker.receiveWaitSeconds);
    inbox.start();
    const enqueuer = new EnqueueBatcher(Producer.create({ queueUrl: resources.requestQueueUrl, sqs: clients.sqs }));
    let cache: ResultCache | undefined;
    if (config.resultCache) {
      // The manifest alone (no download, no model load): the fingerprint of what the workers run.
      const manifest = await resolveModel(config.model.source, { modelsDir: config.model.modelsDir });
      cache = new ResultCache(store, modelFingerprint(manifest), manifest.id, log.child('cache'));
      await cache.start();
    }
    log.info('response queue ready', { responseQueue: responseQueue.name, resultCache: cache ? cache.fingerprint : 'off' });
    const admission = options.load ? new Admission(options.load, config.limits.requestTimeoutMs) : undefined;
    return new Submitter(config, clients, resources, store, inbox, enqueuer, responseQueue, janitor, log, options.metrics, cache, admission);
  }

  get responseQueueUrl(): string {
    return this.responseQueue.url;
  }

  /** Images of this process still waiting for their answer (accepted, not yet answered). */
  get waiting(): number {
    return this.inbox.waiting;
  }

  /** Answers that found nobody waiting (late after a `pending`, or a duplicate delivery). */
  get unmatchedAnswers(): number {
    return this.inbox.unmatched;
  }

  /**
   * Stores the image, queues its request and waits up to `waitMs` for the answer. Throws a
   * PipelineError when the image could not be accepted (storage or queue unreachable through the
   * outage budget): then nothing was queued. Once accepted, every outcome is returned.
   */
  async submit(submission: Submission, waitMs: number): Promise<Outcome> {
    let outcome: Outcome;
    try {
      outcome = await this.submitOne(submission, waitMs);
    } catch (err) {
      this.metrics?.answered('refused', this.config.model.source);
      throw err;
    }
    if (outcome.kind === 'done') this.metrics?.answered('classified', outcome.result.model, outcome.result.timings);
    else this.metrics?.answered(outcome.kind, this.config.model.source);
    return outcome;
  }

  private async submitOne(submission: Submission, waitMs: number): Promise<Outcome> {
    const started = performance.now();
    const id = randomUUID();
    const budget = this.config.limits.outageRetryMs;
    const sha = this.cache ? sha256Of(submission.bytes) : undefined;
    if (this.cache && sha) {
      const lookupStarted = performance.now();
      const hit = await this.cache.lookup(sha).catch((err: unknown) => {
        this.log.warn('result cache lookup failed; classifying as usual', { requestId: id, error: err });
        return undefined;
      });
      if (hit) return this.answerFromCache(id, submission, hit, roundMs(performance.now() - lookupStarted), started);
    }
    // What needs a worker is refused at once when the workers could not answer it in time.
    this.admission?.check(id, this.inbox.waiting);
    // Wait first, send second: even an instant answer finds its waiter.
    const expectation = this.inbox.expect(id, this.config.limits.requestTimeoutMs);
    let enqueueMs: number | undefined;
    try {
      const stored = await ingest(this.store, { requestId: id, file: submission.file, bytes: submission.bytes, contentType: submission.contentType, protocol: submission.protocol, timings: { upload: submission.uploadMs } }, budget);
      enqueueMs = (await enqueue(this.enqueuer, stored, this.inbox.queueUrl, budget)).timings.enqueue;
    } catch (err) {
      expectation.cancel();
      throw err;
    }
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'waited'>((resolve) => (timer = setTimeout(() => resolve('waited'), waitMs)));
    try {
      const answer = await Promise.race([expectation.answer, waited]);
      if (answer === 'waited') {
        expectation.cancel();
        return { kind: 'pending', id };
      }
      if (!answer.ok) {
        return { kind: 'failed', id, error: new PipelineError(answer.error.code, answer.error.message, { stage: answer.error.stage, retryable: false, requestId: id }) };
      }
      const total = roundMs(submission.uploadMs + performance.now() - started);
      if (sha) this.cache?.remember(sha, answer.result);
      this.admission?.observe(answer.result, total);
      return { kind: 'done', id, result: { ...answer.result, timings: { ...answer.result.timings, enqueue: enqueueMs, total } } };
    } catch (err) {
      // Accepted but not answered here (this process is stopping): the work goes on; hand back the job.
      if (err instanceof PipelineError && err.code === 'SHUTTING_DOWN') return { kind: 'pending', id };
      if (err instanceof PipelineError) return { kind: 'failed', id, error: err };
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * An earlier answer for the same bytes: stored as this request's own — input, `results/<id>.json`,
   * the classic output — without the queue or a worker.
   */
  private async answerFromCache(id: string, submission: Submission, hit: CachedResult, cacheLookup: number, started: number): Promise<Outcome> {
    const budget = this.config.limits.outageRetryMs;
    const stored = await ingest(this.store, { requestId: id, file: submission.file, bytes: submission.bytes, contentType: submission.contentType, protocol: submission.protocol, timings: { upload: submission.uploadMs } }, budget);
    const { from, ...answer } = hit;
    const persistStarted = performance.now();
    const result: ClassificationResult = { ...answer, id, file: submission.file, cachedFrom: from, timings: { ...stored.timings, cacheLookup }, completedAt: new Date().toISOString() };
    try {
      await retry(() => this.store.putResult(result, submission.protocol), { budgetMs: budget });
    } catch (err) {
      throw asPipelineError(err, 'persist', { requestId: id }, 'STORAGE_UNAVAILABLE');
    }
    const persist = roundMs(performance.now() - persistStarted);
    return { kind: 'done', id, result: { ...result, timings: { ...result.timings, persist, total: roundMs(submission.uploadMs + performance.now() - started) } } };
  }

  /** Where a request stands, from the buckets. */
  job(id: string): Promise<JobStatus | undefined> {
    return this.store.jobStatus(id, this.config.names.maxReceives);
  }

  /** Throws unless the request queue, this process's response queue and both buckets answer. */
  async checkReady(): Promise<void> {
    await this.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: this.resources.requestQueueUrl, AttributeNames: ['QueueArn'] }));
    await this.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: this.responseQueue.url, AttributeNames: ['QueueArn'] }));
    await this.store.checkReachable();
  }

  /** Everything still waiting ends as `pending` (its client gets the job); answers are still received. */
  releaseWaiting(): void {
    this.inbox.release();
  }

  /** Stops receiving answers, then removes this process's response queue. */
  async stop(): Promise<void> {
    this.janitor.stop();
    this.cache?.stop();
    this.inbox.stop();
    await deleteQueue(this.clients, this.responseQueue.url).catch((err: unknown) =>
      this.log.warn('could not delete the response queue', { queue: this.responseQueue.name, error: err }),
    );
  }
}
