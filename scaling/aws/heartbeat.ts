/**
 * The controller's side of one scaling authority on AWS (`scaling/core/handover.ts`). At each tick
 * the leading copy has read the queue and the group, it sends a heartbeat when one is due
 * (PutMetricData: ImageRecognition/Scaling ControllerHeartbeat, per app-tier group), which the
 * group's CloudWatch policies stand aside for (`aws-requests.ts`); and it acts only once its ledger
 * is clear — from its own unbroken heartbeats, or, just after it took over from another copy, from
 * the heartbeats read back from CloudWatch (GetMetricData, at most once per heartbeat interval).
 *
 * Failures travel as data: a heartbeat that cannot be sent or read back is logged, and the ledger
 * goes stale, so the controller holds and the CloudWatch policies take over.
 */
import {
  type CloudWatchClient,
  GetMetricDataCommand,
  type GetMetricDataCommandOutput,
  PutMetricDataCommand,
} from '@aws-sdk/client-cloudwatch';
import { awsErrorName } from '../../lib/aws/errors.js';
import type { Logger } from '../../lib/log.js';
import { HANDOVER, type HandoverTiming, HeartbeatLedger } from '../core/handover.js';
import { getHeartbeats, putHeartbeat } from './aws-requests.js';

export interface HeartbeatOptions {
  readonly cloudwatch: CloudWatchClient;
  /** The app-tier group the controller scales: the heartbeat's dimension, as the policies read it. */
  readonly group: string;
  readonly log: Logger;
  readonly timing?: HandoverTiming;
  /** Seconds since the epoch (CloudWatch's minutes are the epoch's). */
  readonly clock?: () => number;
}

export class ControllerHeartbeat {
  private readonly ledger: HeartbeatLedger;
  private readonly clock: () => number;
  private lastRead = Number.NEGATIVE_INFINITY;
  private failures = 0;

  constructor(private readonly options: HeartbeatOptions) {
    this.ledger = new HeartbeatLedger(options.timing ?? HANDOVER);
    this.clock = options.clock ?? (() => Date.now() / 1000);
  }

  /** The controller's `handover`: says this copy leads and is alive; answers whether it may act. */
  readonly lead = async (): Promise<boolean> => {
    const now = this.clock();
    if (this.ledger.due(now)) await this.beat(now);
    if (this.ledger.clear(now)) return true;
    // Just took over (or came back after a gap): read the last periods' heartbeats once in a while.
    if (this.ledger.fresh(now) && now - this.lastRead >= this.ledger.timing.beatSeconds) {
      this.lastRead = now;
      await this.readBack(now);
    }
    return this.ledger.clear(now);
  };

  /** What the ledger says now. */
  state(): ReturnType<HeartbeatLedger['state']> {
    return this.ledger.state(this.clock());
  }

  private async beat(now: number): Promise<void> {
    const { cloudwatch, group, log } = this.options;
    try {
      await cloudwatch.send(new PutMetricDataCommand(putHeartbeat(group, new Date(now * 1000))));
      this.ledger.beaten(now);
      this.failures = 0;
    } catch (err) {
      this.failures++;
      // Past the gap the ledger goes stale: the controller holds, the CloudWatch policies take over.
      log[this.ledger.fresh(now) ? 'warn' : 'error']('controller heartbeat not sent', {
        group,
        awsErrorName: awsErrorName(err),
        error: err,
        consecutiveFailures: this.failures,
        fresh: this.ledger.fresh(now),
      });
    }
  }

  private async readBack(now: number): Promise<void> {
    const { cloudwatch, group, log } = this.options;
    const span = this.ledger.window(now);
    const P = this.ledger.timing.periodSeconds;
    let out: GetMetricDataCommandOutput;
    try {
      out = await cloudwatch.send(
        new GetMetricDataCommand(
          getHeartbeats(group, { start: new Date(span.start * 1000), end: new Date(span.end * 1000) }, P),
        ),
      );
    } catch (err) {
      log.warn('controller heartbeats not read back: holding', { group, awsErrorName: awsErrorName(err), error: err });
      return;
    }
    const result = out.MetricDataResults?.[0];
    const counts = new Map(
      (result?.Timestamps ?? []).map((t, i) => [Math.round(t.getTime() / 1000), result?.Values?.[i] ?? 0] as const),
    );
    const perPeriod: number[] = [];
    for (let start = span.start; start < span.end; start += P) perPeriod.push(counts.get(start) ?? 0);
    this.ledger.verify(now, perPeriod);
    log.info(
      this.ledger.clear(now)
        ? 'controller heartbeats in every recent period: taking over'
        : 'a recent period without a controller heartbeat: holding while the CloudWatch policies may act',
      { group, periods: perPeriod, from: new Date(span.start * 1000).toISOString() },
    );
  }
}
