/**
 * Response queues cannot pile up. Each web-tier process owns a response queue
 * (`<RESPONSE_QUEUE_PREFIX><pid>-<random>`) and deletes it on a clean stop; a process that dies
 * (kill -9, a terminated instance) leaves it behind. So every process:
 *
 * - keeps its own queue's `heartbeat` tag fresh (epoch seconds, every minute), and
 * - sweeps every few minutes: a queue under the prefix whose heartbeat is older than `staleMs`
 *   (ten minutes: ten missed heartbeats), or that has no heartbeat and was created longer ago than
 *   that, belongs to a process that no longer runs, and is deleted.
 *
 * Safe with several web instances: a live process renews its tag long before anyone would call its
 * queue stale (only a process frozen for ten minutes could lose its queue, and it would then be
 * gone for its clients anyway); two janitors deleting the same dead queue is harmless (the second
 * one finds it gone). Time comes from the instances' clocks, which NTP keeps within seconds.
 */
import {
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ListQueuesCommand,
  ListQueueTagsCommand,
  type SQSClient,
  TagQueueCommand,
} from '@aws-sdk/client-sqs';
import { isQueueMissing } from '../../lib/aws/errors.js';
import type { Logger } from '../../lib/log.js';

export interface JanitorOptions {
  readonly sqs: SQSClient;
  /** Response queues are named `<prefix>...`. */
  readonly prefix: string;
  /** This process's own queue: tagged, never swept. */
  readonly ownQueueUrl: string;
  readonly log: Logger;
  /** A queue unheard of for this long is stale (default 10 min). */
  readonly staleMs?: number;
  /** How often the own queue's heartbeat is renewed (default 1 min). */
  readonly heartbeatMs?: number;
  /** How often the sweep runs (default 5 min; the first one right after start). */
  readonly sweepMs?: number;
}

export const HEARTBEAT_TAG = 'heartbeat';

export class ResponseQueueJanitor {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly staleMs: number;

  constructor(private readonly options: JanitorOptions) {
    this.staleMs = options.staleMs ?? 10 * 60_000;
  }

  /** Tags the own queue now, then keeps renewing it and sweeping in the background. */
  async start(): Promise<void> {
    await this.beat();
    const every = (ms: number, work: () => Promise<unknown>) => {
      const timer = setInterval(
        () =>
          void work().catch((err: unknown) =>
            this.options.log.warn('response queue janitor: a round failed; trying again later', { error: err }),
          ),
        ms,
      );
      timer.unref();
      this.timers.push(timer);
    };
    every(this.options.heartbeatMs ?? 60_000, () => this.beat());
    every(this.options.sweepMs ?? 5 * 60_000, () => this.sweep());
    const first = setTimeout(
      () =>
        void this.sweep().catch((err: unknown) =>
          this.options.log.warn('response queue janitor: the first sweep failed', { error: err }),
        ),
      1_000,
    );
    first.unref();
    this.timers.push(first);
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers.length = 0;
  }

  /** Renews this process's heartbeat tag. */
  async beat(): Promise<void> {
    await this.options.sqs.send(
      new TagQueueCommand({
        QueueUrl: this.options.ownQueueUrl,
        Tags: { [HEARTBEAT_TAG]: String(Math.floor(Date.now() / 1000)) },
      }),
    );
  }

  /** Deletes the stale response queues of other processes; returns their URLs. */
  async sweep(): Promise<string[]> {
    const { sqs, prefix, ownQueueUrl, log } = this.options;
    const deleted: string[] = [];
    let NextToken: string | undefined;
    do {
      const page = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix, NextToken, MaxResults: 1000 }));
      for (const url of page.QueueUrls ?? []) {
        if (url === ownQueueUrl) continue;
        try {
          const age = await this.silenceMs(url);
          if (age < this.staleMs) continue;
          await sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
          deleted.push(url);
          log.info('deleted the response queue of a web process that no longer runs', {
            queueUrl: url,
            silentForSeconds: Math.round(age / 1000),
          });
        } catch (err) {
          if (!isQueueMissing(err)) throw err; // another janitor got there first
        }
      }
      NextToken = page.NextToken;
    } while (NextToken);
    return deleted;
  }

  /** How long a queue's owner has been silent: since its last heartbeat, or since it was created. */
  private async silenceMs(url: string): Promise<number> {
    const { Tags } = await this.options.sqs.send(new ListQueueTagsCommand({ QueueUrl: url }));
    const beat = Number(Tags?.[HEARTBEAT_TAG]);
    if (Number.isFinite(beat) && beat > 0) return Date.now() - beat * 1000;
    const { Attributes } = await this.options.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['CreatedTimestamp'] }),
    );
    const created = Number(Attributes?.CreatedTimestamp);
    return Number.isFinite(created) && created > 0 ? Date.now() - created * 1000 : 0;
  }
}
