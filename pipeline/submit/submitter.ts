/**
 * The one door from the web tier into the pipeline. Built once, it owns what the web tier's process
 * needs to hand images to the workers and hear back: its own response queue, the answer inbox, the
 * batching of request messages, load shedding, job status, readiness, and the order in which these
 * stop. Routes only translate HTTP to `submit` and its outcome back.
 *
 *   submit(upload) = [result cache →] admission → ingest (the bytes to the input bucket)
 *                    → enqueue (the request message) → the worker's answer on this process's
 *                    response queue, or `pending`
 *
 * The result cache (cache.ts) is a front: the same bytes classified before are answered from the
 * store, anything else goes on to the queue and is remembered once answered.
 */
import { randomUUID } from 'node:crypto';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { Producer } from 'sqs-producer';
import type { AwsClients } from '../../lib/aws/clients.js';
import type { Config } from '../../lib/config.js';
import type { Logger } from '../../lib/log.js';
import { retry } from '../../lib/retry.js';
import { resolveModel } from '../../models/index.js';
import { PipelineError } from '../contract/errors.js';
import { type Answer, roundMs } from '../contract/messages.js';
import { type S3Location, s3Url } from '../contract/sources.js';
import type { WebMetrics } from '../metrics.js';
import { createResponseQueue, deleteQueue, type Resources } from '../resources.js';
import type { JobStatus, Store } from '../store.js';
import { Admission, type AdmissionInputs } from './admission.js';
import { AnswerInbox } from './answer.js';
import { modelFingerprint, ResultCache } from './cache.js';
import { EnqueueBatcher, enqueue } from './enqueue.js';
import { ingest } from './ingest.js';
import { ResponseQueueJanitor } from './janitor.js';
import type { Notifier } from './notify.js';
import { checkSourceObject } from './sources.js';
import { type Answerer, type Outcome, type Submission, uploadOf } from './submission.js';

export type { Outcome, Submission } from './submission.js';

export interface SubmitterOptions {
  readonly config: Config;
  readonly clients: AwsClients;
  readonly resources: Resources;
  readonly store: Store;
  readonly log: Logger;
  /** Counts outcomes and stage times. */
  readonly metrics?: WebMetrics;
  /** The backlog and the workers, for refusing what could not be answered in time (admission.ts). */
  readonly load?: AdmissionInputs;
  /** Delivers a by-reference request's answer to its `notify`. */
  readonly notifier?: Notifier;
}

/** What a started submitter holds. */
interface Parts {
  readonly options: SubmitterOptions;
  readonly inbox: AnswerInbox;
  readonly enqueuer: EnqueueBatcher;
  readonly responseQueue: { readonly name: string; readonly url: string };
  readonly janitor: ResponseQueueJanitor;
  readonly cache: ResultCache | undefined;
  readonly admission: Admission | undefined;
  readonly notifier: Notifier | undefined;
}

export class Submitter {
  /** The queue path, behind the result cache when there is one. */
  private readonly answer: Answerer;
  private stopping: Promise<void> | undefined;

  private constructor(private readonly parts: Parts) {
    const queued: Answerer = (id, submission, waitMs, started) => this.throughTheQueue(id, submission, waitMs, started);
    this.answer = parts.cache ? parts.cache.front(queued) : queued;
  }

  /**
   * Creates this process's response queue and starts listening on it; keeps it marked alive, and
   * removes the response queues that processes which no longer run left behind (janitor.ts).
   */
  static async start(options: SubmitterOptions): Promise<Submitter> {
    const { config, clients, resources, store, log } = options;
    const responseQueue = await createResponseQueue(clients, config);
    const janitor = new ResponseQueueJanitor({
      sqs: clients.sqs,
      prefix: config.names.responseQueuePrefix,
      ownQueueUrl: responseQueue.url,
      log: log.child('janitor'),
    });
    await janitor.start();
    const inbox = new AnswerInbox(
      clients.sqs,
      responseQueue.url,
      log.child('answers'),
      config.worker.receiveWaitSeconds,
    );
    inbox.start();
    const enqueuer = new EnqueueBatcher(Producer.create({ queueUrl: resources.requestQueueUrl, sqs: clients.sqs }));
    let cache: ResultCache | undefined;
    if (config.resultCache) {
      // The manifest alone (no download, no model load): the fingerprint of what the workers run.
      const manifest = await resolveModel(config.model.source, { modelsDir: config.model.modelsDir });
      cache = new ResultCache({
        store,
        fingerprint: modelFingerprint(manifest),
        modelId: manifest.id,
        retryBudgetMs: config.limits.outageRetryMs,
        log: log.child('cache'),
      });
    }
    log.info('response queue ready', {
      responseQueue: responseQueue.name,
      resultCache: cache ? cache.fingerprint : 'off',
    });
    const admission = options.load ? new Admission(options.load, config.limits.requestTimeoutMs) : undefined;
    return new Submitter({
      options,
      inbox,
      enqueuer,
      responseQueue,
      janitor,
      cache,
      admission,
      notifier: options.notifier,
    });
  }

  get responseQueueUrl(): string {
    return this.parts.responseQueue.url;
  }

  /** Images of this process still waiting for their answer (accepted, not yet answered). */
  get waiting(): number {
    return this.parts.inbox.waiting;
  }

  /** Answers that found nobody waiting (late after a `pending`, or a duplicate delivery). */
  get unmatchedAnswers(): number {
    return this.parts.inbox.unmatched;
  }

  /**
   * Stores the image, queues its request and waits up to `waitMs` for the answer. Throws a
   * PipelineError when the image could not be accepted (refused by load shedding, or storage or
   * queue unreachable through the outage budget): then nothing was queued. Once accepted, every
   * outcome is returned.
   */
  submit(submission: Submission, waitMs: number): Promise<Outcome> {
    return this.counted(this.answer(randomUUID(), submission, waitMs, performance.now()));
  }

  /** Counts an outcome in the metrics: refused when it throws, else by its kind. */
  private async counted(pending: Promise<Outcome>): Promise<Outcome> {
    const { metrics, config } = this.parts.options;
    let outcome: Outcome;
    try {
      outcome = await pending;
    } catch (err) {
      metrics?.answered('refused', config.model.source);
      throw err;
    }
    if (outcome.kind === 'done') metrics?.answered('classified', outcome.result.model, outcome.result.timings);
    else metrics?.answered(outcome.kind, config.model.source);
    return outcome;
  }

  /**
   * Classifies an object of the client's own bucket where it is (checked first: allowed, there, not
   * too large, an image), and waits up to `waitMs` for the answer like an upload. With `notify`, the
   * answer is also delivered there when it comes — after a `pending` too, while this process runs.
   */
  async submitReference(
    reference: { readonly source: S3Location; readonly notify?: string },
    waitMs: number,
  ): Promise<Outcome> {
    const { config, store } = this.parts.options;
    const started = performance.now();
    await checkSourceObject(store, config, reference.source);
    return this.counted(this.queueReference(reference, waitMs, started));
  }

  /** Queues a checked reference and waits for its answer like an upload. */
  private async queueReference(
    reference: { readonly source: S3Location; readonly notify?: string },
    waitMs: number,
    started: number,
  ): Promise<Outcome> {
    const { options, inbox, enqueuer, admission } = this.parts;
    const { config, store } = options;
    const id = randomUUID();
    const file = reference.source.key.slice(reference.source.key.lastIndexOf('/') + 1);
    admission?.check(id, inbox.waiting);
    const expectation = inbox.expect(id, config.limits.requestTimeoutMs);
    let enqueueMs: number | undefined;
    try {
      await retry(
        () =>
          store.putRequestRecord({ id, file, source: s3Url(reference.source), createdAt: new Date().toISOString() }),
        { budgetMs: config.limits.outageRetryMs },
      );
      const item = {
        requestId: id,
        ...reference.source,
        file,
        timings: {},
        kind: 'reference' as const,
        protocol: 'api' as const,
      };
      enqueueMs = (await enqueue(enqueuer, item, inbox.queueUrl, config.limits.outageRetryMs)).timings.enqueue;
    } catch (err) {
      expectation.cancel();
      throw err;
    }
    if (reference.notify) this.deliverWhenAnswered(reference.notify, expectation.answer);
    return this.wait(id, expectation, waitMs, started, 0, enqueueMs, reference.notify !== undefined);
  }

  /** The answer, when it comes, to `notify` (in the background: never in the way of the HTTP answer). */
  private deliverWhenAnswered(notify: string, answer: Promise<Answer>): void {
    const { notifier } = this.parts;
    answer.then(
      (a) =>
        void notifier?.deliver(
          notify,
          'image.classified',
          a.ok
            ? { event: 'image.classified', id: a.requestId, result: a.result }
            : { event: 'image.failed', id: a.requestId, error: a.error },
        ),
      () => undefined,
    );
  }

  private async throughTheQueue(id: string, submission: Submission, waitMs: number, started: number): Promise<Outcome> {
    const { inbox, enqueuer, admission, options } = this.parts;
    const { limits } = options.config;
    // What needs a worker is refused at once when the workers could not answer it in time.
    admission?.check(id, inbox.waiting);
    // Wait first, send second: even an instant answer finds its waiter.
    const expectation = inbox.expect(id, limits.requestTimeoutMs);
    let enqueueMs: number | undefined;
    try {
      const stored = await ingest(options.store, uploadOf(id, submission), limits.outageRetryMs);
      enqueueMs = (await enqueue(enqueuer, stored, inbox.queueUrl, limits.outageRetryMs)).timings.enqueue;
    } catch (err) {
      expectation.cancel();
      throw err;
    }
    return this.wait(id, expectation, waitMs, started, submission.uploadMs, enqueueMs);
  }

  /**
   * Waits up to `waitMs` for an accepted image's answer: done, failed, or pending when the wait runs
   * out (then the expectation is dropped — unless `keepWaiting`, for a notification still to send).
   */
  private async wait(
    id: string,
    expectation: { answer: Promise<Answer>; cancel(): void },
    waitMs: number,
    started: number,
    uploadMs: number,
    enqueueMs: number | undefined,
    keepWaiting = false,
  ): Promise<Outcome> {
    const { admission } = this.parts;
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'waited'>((resolve) => (timer = setTimeout(() => resolve('waited'), waitMs)));
    try {
      const answer = await Promise.race([expectation.answer, waited]);
      if (answer === 'waited') {
        if (!keepWaiting) expectation.cancel();
        return { kind: 'pending', id };
      }
      if (!answer.ok) {
        return {
          kind: 'failed',
          id,
          error: new PipelineError(answer.error.code, answer.error.message, {
            stage: answer.error.stage,
            retryable: false,
            requestId: id,
          }),
        };
      }
      const total = roundMs(uploadMs + performance.now() - started);
      admission?.observe(answer.result, total);
      return {
        kind: 'done',
        id,
        result: { ...answer.result, timings: { ...answer.result.timings, enqueue: enqueueMs, total } },
      };
    } catch (err) {
      // Accepted but not answered here (this process is stopping): the work goes on; hand back the job.
      if (err instanceof PipelineError && err.code === 'SHUTTING_DOWN') return { kind: 'pending', id };
      if (err instanceof PipelineError) return { kind: 'failed', id, error: err };
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Where a request stands, from the buckets. */
  job(id: string): Promise<JobStatus | undefined> {
    return this.parts.options.store.jobStatus(id, this.parts.options.config.names.maxReceives);
  }

  /** Throws unless the request queue, this process's response queue and both buckets answer. */
  async checkReady(): Promise<void> {
    const { clients, resources, store } = this.parts.options;
    await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: resources.requestQueueUrl, AttributeNames: ['QueueArn'] }),
    );
    await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: this.parts.responseQueue.url, AttributeNames: ['QueueArn'] }),
    );
    await store.checkReachable();
  }

  /** Everything still waiting ends as `pending` (its client gets the job); answers are still received. */
  releaseWaiting(): void {
    this.parts.inbox.release();
  }

  /** Stops receiving answers, then removes this process's response queue. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { janitor, inbox, responseQueue, options } = this.parts;
      janitor.stop();
      inbox.stop();
      await deleteQueue(options.clients, responseQueue.url).catch((err: unknown) =>
        options.log.warn('could not delete the response queue', { queue: responseQueue.name, error: err }),
      );
    })();
    return this.stopping;
  }
}
