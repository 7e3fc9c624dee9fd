/**
 * The scaling controller: one loop, two actuators. It scales the app tier on the request queue's
 * backlog with the same policy and the same pure `decide` the AWS setup and the simulator use; what
 * it moves is an `Actuator` — this machine's worker processes (`service/pool.ts`, the local
 * autoscaler of `npm start`) or the app tier's Auto Scaling group (`scaling/aws/asg-actuator.ts`,
 * in the web tier on AWS). With several copies running (one per web instance) an optional
 * `leadership` check lets one act while the others watch and stand by, and an optional `handover`
 * keeps it from acting while the group's CloudWatch policies still may (`core/handover.ts`): one
 * scaling authority at a time.
 *
 * The queue depth is sampled many times per period (on average every `sampleEveryMs`, default
 * 100 ms, randomly spaced; a sample never overlaps the previous one) and, at the end of each
 * `policy.periodSeconds` (a fixed grid), a tick:
 *  1. takes the period's maximum visible and in-flight counts (the statistic `decide` expects, as
 *     the simulator and the CloudWatch alarms use it) and the pool's counts (desired, running);
 *  2. folds that datapoint into the signals (`trackSignals`) and calls `decide`;
 *     (a desired count that grew since the last tick, by anyone, counts as a scale-out: its instances
 *     are young);
 *  3. if the desired count changes, record lastScaleOut / lastScaleIn, log the decision with all its
 *     inputs, keep it in the history and call `pool.resize` *without waiting for it*: a scale-out
 *     resolves only when the new processes have loaded their model (seconds), and later ticks must
 *     keep deciding meanwhile. A resize that fails is logged and issued again at the next tick.
 *
 * Scale-in goes through `pool.resize` only, and the pool retires a worker by SIGTERM: the worker
 * stops receiving, finishes the messages it holds and exits. Nothing is killed mid-batch.
 *
 * Sampling within the period matters: under light load a message is visible or in flight for a
 * fraction of a second, and one reading per period (or readings on a grid that aliases with
 * periodic arrivals) reads most periods as empty: the pool scaled to zero while requests kept
 * coming and started a worker again for the next one. Random spacing makes the samples
 * independent; a period still reads empty when all ~10 samples miss the queue's busy moments,
 * which for `scaleToZero.emptyPeriods` periods in a row needs the queue to be nearly always empty.
 */
import { ServiceError, serializeError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { type Decision, decide, NO_SIGNALS, type Signals, trackSignals } from './decide.js';
import { describeValue, ScalingError } from './errors.js';
import { type ScalingPolicy, targetBacklogPerInstance, validatePolicy } from './policy.js';
import type { QueueDepth } from './queue-depth.js';
import type { AutoscalerStatus, ControllerInfo, DecisionInputs, DecisionRecord, ResizeOutcome } from './status.js';
import { isObject } from './values.js';

/** What the controller moves: worker processes here, or an Auto Scaling group's desired capacity. */
export interface Actuator {
  /** What it is, for the status and the logs (`worker processes`, `auto scaling group app-tier`). */
  readonly label?: string;
  /** Workers (instances) wanted, as last known (set synchronously by `resize`). */
  readonly desired: number;
  /** Workers up and taking messages, as last known. */
  readonly running: number;
  /** Starts or retires workers; resolves when the change is made (locally: the new workers are ready). Retiring drains. */
  resize(count: number): Promise<void>;
  /** Reads `desired` and `running` afresh before each decision (an Auto Scaling group changes on its own). */
  refresh?(): Promise<void>;
}

export interface ControllerOptions {
  readonly policy: ScalingPolicy;
  readonly actuator: Actuator;
  /** Reads the request queue's depth, e.g. `() => queueDepth(sqs, url)`. */
  readonly depth: () => Promise<QueueDepth>;
  readonly log: Logger;
  /** How many scaling decisions `status()` keeps (default 50). */
  readonly historySize?: number;
  /** Mean interval between queue depth samples, randomly spaced ×0.5–1.5 (default min(100 ms, the period)). */
  readonly sampleEveryMs?: number;
  /** A depth read slower than this counts as a failed sample (default max(5 s, 3 periods)). */
  readonly depthTimeoutMs?: number;
  /**
   * Whether this copy may act now (several web instances each run one; see
   * `scaling/aws/leadership.ts`). Absent: it always may. A copy that may not keeps observing, so it
   * can take over with its signals up to date.
   */
  readonly leadership?: () => Promise<boolean>;
  /**
   * The group's other scaler, when it has one (`scaling/aws/heartbeat.ts`): called at each tick this
   * copy leads and has read the queue and the group, it says so (the heartbeat) and answers whether
   * this copy may act; false while the CloudWatch policies may still act (role `handover`: it holds).
   * Absent: it always may.
   */
  readonly handover?: () => Promise<boolean>;
}

/** The depth read did not answer within `depthTimeoutMs`. */
export class DepthTimeoutError extends ServiceError<'DEPTH_TIMEOUT'> {
  override readonly name: string = 'DepthTimeoutError';
  declare readonly context: { readonly timeoutMs: number };

  constructor(
    code: 'DEPTH_TIMEOUT',
    message: string,
    context: { readonly timeoutMs: number },
    options?: { readonly cause?: unknown },
  ) {
    super(code, message, context, options);
  }

  static after(timeoutMs: number): DepthTimeoutError {
    return new DepthTimeoutError('DEPTH_TIMEOUT', `the queue depth was not read within ${timeoutMs} ms`, { timeoutMs });
  }
}

interface Settings {
  readonly policy: ScalingPolicy;
  readonly pool: Actuator;
  readonly depth: () => Promise<QueueDepth>;
  readonly log: Logger;
  readonly historySize: number;
  readonly depthTimeoutMs: number;
  readonly sampleEveryMs: number;
  readonly leadership: (() => Promise<boolean>) | undefined;
  readonly handover: (() => Promise<boolean>) | undefined;
}

const invalid = (option: string, reason: string, value: unknown): ScalingError =>
  new ScalingError('INVALID_OPTIONS', `ScalingController: ${option} ${reason} (got ${describeValue(value)})`, {
    option,
    reason,
  });

const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** Checks the options once; throws `ScalingError` INVALID_OPTIONS (or `PolicyValidationError`). */
export function validateControllerOptions(options: ControllerOptions): Settings {
  if (!isObject(options)) throw invalid('(options)', 'must be an object', options);
  const policy = validatePolicy(options.policy);
  const pool: unknown = options.actuator;
  if (!isObject(pool) || typeof pool.resize !== 'function')
    throw invalid('actuator', 'must have a resize(count) method', pool);
  if (!isCount(pool.desired)) throw invalid('actuator.desired', 'must be an integer >= 0', pool.desired);
  if (!isCount(pool.running)) throw invalid('actuator.running', 'must be an integer >= 0', pool.running);
  if (options.leadership !== undefined && typeof options.leadership !== 'function')
    throw invalid('leadership', 'must be a function returning a Promise of a boolean', options.leadership);
  if (options.handover !== undefined && typeof options.handover !== 'function')
    throw invalid('handover', 'must be a function returning a Promise of a boolean', options.handover);
  if (typeof options.depth !== 'function')
    throw invalid('depth', 'must be a function returning a Promise of { visible, inFlight }', options.depth);
  const log: unknown = options.log;
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    if (!isObject(log) || typeof log[level] !== 'function')
      throw invalid('log', `must be a Logger (lib/log.ts); ${level}() is missing`, log);
  }
  const historySize = options.historySize ?? 50;
  if (!Number.isInteger(historySize) || historySize < 1 || historySize > 10_000) {
    throw invalid('historySize', 'must be an integer in 1..10000', historySize);
  }
  const depthTimeoutMs = options.depthTimeoutMs ?? Math.max(5_000, 3_000 * policy.periodSeconds);
  if (typeof depthTimeoutMs !== 'number' || !Number.isFinite(depthTimeoutMs) || depthTimeoutMs <= 0) {
    throw invalid('depthTimeoutMs', 'must be a number > 0', depthTimeoutMs);
  }
  const periodMs = policy.periodSeconds * 1000;
  const sampleEveryMs = options.sampleEveryMs ?? Math.min(100, periodMs);
  if (
    typeof sampleEveryMs !== 'number' ||
    !Number.isFinite(sampleEveryMs) ||
    sampleEveryMs < 10 ||
    sampleEveryMs > periodMs
  ) {
    throw invalid('sampleEveryMs', `must be a number of ms in 10..${periodMs} (the period)`, sampleEveryMs);
  }
  return {
    policy,
    pool: options.actuator,
    depth: options.depth,
    log: options.log,
    historySize,
    depthTimeoutMs,
    sampleEveryMs,
    leadership: options.leadership,
    handover: options.handover,
  };
}

type MutableRecord = Omit<DecisionRecord, 'resize'> & { resize: ResizeOutcome };

const nowSeconds = (): number => Date.now() / 1000;
/** A duration in whole milliseconds, as the status reports it. */
const wholeMs = (ms: number): number => Math.round(ms);

export class ScalingController {
  private readonly settings: Settings;
  /** What this copy did at its last tick (`standby`: another copy leads; `handover`: it holds). */
  private role: ControllerInfo['role'] = 'leader';
  /** The group's desired capacity as last seen (read, or set by this copy); null before the first tick. */
  private observedDesired: number | null = null;
  private timer: NodeJS.Timeout | undefined;
  private active = false;
  /** performance.now() at start(): periods end at origin + k × period. */
  private origin = 0;
  private periodStart = 0;
  /** Maxima of the samples of the current period (undefined: no sample yet). */
  private periodMax: { visible: number; inFlight: number; samples: number } | undefined;
  /** performance.now() of the end of the current period: origin + k × period. */
  private nextTickAt = 0;
  private signals: Signals = NO_SIGNALS;
  private lastScaleOut: number | null = null;
  private lastScaleIn: number | null = null;
  private lastDepth: AutoscalerStatus['queue'] = { visible: 0, inFlight: 0, sampledAt: null };
  private readonly history: MutableRecord[] = [];
  /** Bumped by every resize issued; a failure of an older one is not retried. */
  private generation = 0;
  /** The decision whose resize failed, to issue again at the next tick. */
  private retry: { readonly target: number; readonly record: MutableRecord; readonly decidedAt: number } | null = null;
  private depthFailures = 0;

  constructor(options: ControllerOptions) {
    this.settings = validateControllerOptions(options);
  }

  /** Starts sampling, and deciding every `policy.periodSeconds`. Calling it while started does nothing. */
  start(): void {
    if (this.active) return;
    this.active = true;
    this.origin = performance.now();
    this.periodStart = nowSeconds();
    this.periodMax = undefined;
    this.nextTickAt = this.origin + this.settings.policy.periodSeconds * 1000;
    const { policy, log } = this.settings;
    log.info('scaling controller started', {
      actuator: this.settings.pool.label ?? 'worker pool',
      minCapacity: policy.minCapacity,
      maxCapacity: policy.maxCapacity,
      periodSeconds: policy.periodSeconds,
      sampleEveryMs: this.settings.sampleEveryMs,
      targetBacklogPerInstance: targetBacklogPerInstance(policy),
      desired: this.settings.pool.desired,
      running: this.settings.pool.running,
    });
    this.schedule();
  }

  /** Stops sampling and deciding. A sample being read is dropped; resizes already issued go on. */
  stop(): void {
    if (!this.active) return;
    this.active = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    // What was decided stays: the desired count is left as it is (on AWS the alarms take over).
    this.settings.log.info('scaling controller stopped', {
      desired: this.settings.pool.desired,
      running: this.settings.pool.running,
    });
  }

  /** For `GET /api/v1/status`. */
  status(): AutoscalerStatus {
    const { policy, pool } = this.settings;
    return {
      queue: { ...this.lastDepth },
      workers: { desired: pool.desired, running: pool.running },
      policy: {
        minCapacity: policy.minCapacity,
        maxCapacity: policy.maxCapacity,
        periodSeconds: policy.periodSeconds,
        targetBacklogPerInstance: targetBacklogPerInstance(policy),
      },
      decisions: this.history.map((r) => ({ ...r })),
      controller: { actuator: pool.label ?? 'worker pool', role: this.role },
    };
  }

  // -------------------------------------------------------------------------------------------

  private schedule(): void {
    const { policy, sampleEveryMs } = this.settings;
    const periodMs = policy.periodSeconds * 1000;
    const now = performance.now();
    // Random spacing (0.5–1.5 × the interval): periodic arrivals cannot alias with the samples and
    // hide in the gaps between them. Never past the end of the period, so ticks keep their grid.
    const jittered = sampleEveryMs * (0.5 + Math.random());
    const delay = Math.max(0, Math.min(jittered, this.nextTickAt - now));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runStep(periodMs);
    }, delay);
  }

  private async runStep(periodMs: number): Promise<void> {
    try {
      await this.sample();
      // The first sample at or past the end of the period closes it (a slow sample delays the tick,
      // several missed period ends make one longer period).
      const now = performance.now();
      if (this.active && now >= this.nextTickAt - 1) {
        this.nextTickAt = this.origin + (Math.floor((now - this.origin) / periodMs) + 1) * periodMs;
        await this.tick();
      }
    } catch (err) {
      this.settings.log.error('autoscaler step failed', { error: err });
    }
    if (this.active) this.schedule();
  }

  private async readDepth(): Promise<QueueDepth> {
    const { depth, depthTimeoutMs } = this.settings;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(DepthTimeoutError.after(depthTimeoutMs)), depthTimeoutMs);
    });
    try {
      // Promise.race handles a late rejection of the losing read.
      return await Promise.race([depth(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** One depth sample folded into the period's maxima; a failed read is logged and left out. */
  private async sample(): Promise<void> {
    let depth: QueueDepth;
    try {
      depth = await this.readDepth();
    } catch (err) {
      this.depthFailures++;
      this.settings.log[
        this.depthFailures * this.settings.sampleEveryMs >= 3_000 * this.settings.policy.periodSeconds
          ? 'error'
          : 'warn'
      ]('queue depth unavailable: sample skipped', {
        error: err,
        consecutiveFailures: this.depthFailures,
      });
      return;
    }
    this.depthFailures = 0;
    this.lastDepth = { visible: depth.visible, inFlight: depth.inFlight, sampledAt: new Date().toISOString() };
    const max = this.periodMax;
    this.periodMax = max
      ? {
          visible: Math.max(max.visible, depth.visible),
          inFlight: Math.max(max.inFlight, depth.inFlight),
          samples: max.samples + 1,
        }
      : { visible: depth.visible, inFlight: depth.inFlight, samples: 1 };
  }

  /** Closes the period: one datapoint from the maxima, one decision (acted on by the leader only). */
  private async tick(): Promise<void> {
    const { policy, pool, log, leadership, handover } = this.settings;
    if (pool.refresh) await pool.refresh();
    const leading = leadership === undefined || (await leadership());
    if (!leading) this.setRole('standby');
    const max = this.periodMax;
    if (max === undefined) {
      // No sample this period: the datapoint is missing, the signals keep their state and the
      // next datapoint covers this period too.
      log.warn('no queue depth sample this period: no scaling decision', { periodSeconds: policy.periodSeconds });
      return;
    }
    this.periodMax = undefined;
    const now = nowSeconds();
    const running = pool.running;
    const desired = pool.desired;
    // The group grew, and not by this copy (the CloudWatch policies before a handover, another copy,
    // a person): its new instances are as young as this copy's own scale-outs.
    if (this.observedDesired !== null && desired > this.observedDesired) this.lastScaleOut = now;
    this.observedDesired = desired;
    this.signals = trackSignals(
      this.signals,
      { start: this.periodStart, end: now, visible: max.visible, inFlight: max.inFlight, running },
      policy,
    );
    this.periodStart = now;
    const inputs: DecisionInputs = {
      visible: max.visible,
      inFlight: max.inFlight,
      running,
      desired,
      lastScaleOut: this.lastScaleOut,
      lastScaleIn: this.lastScaleIn,
      idleSince: this.signals.idleSince,
      backlogSince: this.signals.backlogSince,
    };
    const decision = decide(policy, { now, ...inputs });
    if (!leading) {
      log.debug('standing by', { ...inputs, wouldDecide: decision.desired, rule: decision.rule });
      return;
    }
    // Leading, with the queue and the group read: say so, and act only once nothing else can.
    const clear = handover === undefined || (await handover());
    this.setRole(clear ? 'leader' : 'handover');
    if (!clear) {
      log.debug('holding: the CloudWatch policies may still act', { ...inputs, wouldDecide: decision.desired });
      return;
    }
    if (decision.desired !== desired) {
      this.apply(now, inputs, decision, max.samples);
      this.observedDesired = decision.desired;
    } else {
      log.debug('holding', { ...inputs, samples: max.samples, rule: decision.rule, reason: decision.reason });
      this.retryFailedResize();
    }
  }

  private setRole(role: ControllerInfo['role']): void {
    if (role === this.role) return;
    const { log, pool } = this.settings;
    const messages: Record<ControllerInfo['role'], string> = {
      leader: 'leading: this copy acts',
      standby: 'standing by: another copy acts',
      handover: 'handing over: this copy leads but holds while the CloudWatch policies may still act',
    };
    log.info(messages[role], { actuator: pool.label });
    this.role = role;
  }

  private apply(now: number, inputs: DecisionInputs, decision: Decision, samples: number): void {
    const { log, historySize } = this.settings;
    const action = decision.desired > inputs.desired ? 'scale-out' : 'scale-in';
    if (action === 'scale-out') this.lastScaleOut = now;
    else this.lastScaleIn = now;
    const record: MutableRecord = {
      at: new Date(now * 1000).toISOString(),
      t: now,
      inputs,
      from: inputs.desired,
      to: decision.desired,
      action,
      rule: decision.rule,
      reason: decision.reason,
      resize: { state: 'pending', attempts: 1 },
    };
    this.history.push(record);
    if (this.history.length > historySize) this.history.splice(0, this.history.length - historySize);
    log.info(action === 'scale-out' ? 'scaling out' : 'scaling in', {
      from: record.from,
      to: record.to,
      rule: record.rule,
      reason: record.reason,
      inputs,
      samples,
      periodSeconds: this.settings.policy.periodSeconds,
    });
    this.retry = null;
    this.resize(decision.desired, record, performance.now(), 1);
  }

  /** Issues `pool.resize` and records its outcome without blocking the ticks. */
  private resize(target: number, record: MutableRecord, decidedAt: number, attempts: number): void {
    const { pool, log } = this.settings;
    const generation = ++this.generation;
    let pending: Promise<void>;
    try {
      pending = Promise.resolve(pool.resize(target));
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      () => {
        const ms = wholeMs(performance.now() - decidedAt);
        record.resize = { state: 'done', attempts, ms };
        log.info('resize settled', { to: target, ms, attempts, running: pool.running, desired: pool.desired });
      },
      (err: unknown) => {
        const ms = wholeMs(performance.now() - decidedAt);
        const error = serializeError(err);
        if (generation !== this.generation) {
          record.resize = { state: 'superseded', attempts, ms, error };
          log.warn('an earlier resize failed after a later decision replaced it; not retried', {
            to: target,
            desired: pool.desired,
            attempts,
            error: err,
          });
          return;
        }
        record.resize = { state: 'failed', attempts, ms, error };
        this.retry = { target, record, decidedAt };
        log.error('resize failed; retrying at the next tick', { to: target, ms, attempts, error: err });
      },
    );
  }

  private retryFailedResize(): void {
    const retry = this.retry;
    if (retry === null) return;
    this.retry = null;
    const { pool, log } = this.settings;
    if (pool.desired !== retry.target) return; // the pool has moved on; the failure no longer applies
    const attempts = retry.record.resize.attempts + 1;
    retry.record.resize = { state: 'pending', attempts };
    log.warn('retrying the failed resize', { to: retry.target, attempts, running: pool.running });
    this.resize(retry.target, retry.record, retry.decidedAt, attempts);
  }
}
