/**
 * Each web instance's share of the batches: every `periodMs` it looks at the active batches
 * (`batches/active/`: as many entries as batches running) and runs a coordinator for each whose
 * lease is free — a new batch, or one whose coordinator stopped renewing (its instance died). Two
 * instances may try at once; the compare-and-swap on the record lets exactly one win.
 */
import type { Logger } from '../../../lib/log.js';
import { BatchCoordinator, type CoordinatorDeps } from './coordinator.js';

export interface RunnerOptions {
  readonly periodMs?: number;
  /** Batches one instance runs at once. */
  readonly maxRunning?: number;
}

export class BatchRunner {
  private readonly running = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private readonly periodMs: number;
  private readonly maxRunning: number;

  constructor(
    private readonly deps: CoordinatorDeps,
    private readonly log: Logger,
    options: RunnerOptions = {},
  ) {
    this.periodMs = options.periodMs ?? 2_000;
    this.maxRunning = options.maxRunning ?? 4;
  }

  start(): void {
    this.timer = setInterval(() => this.kick(), this.periodMs);
    this.timer.unref();
    this.kick();
  }

  /** Looks for batches to run now (a batch was just created here). */
  kick(): void {
    if (this.abort.signal.aborted) return;
    this.scanning ??= this.scan()
      .catch((err: unknown) => this.log.warn('could not look for batches to run; trying again shortly', { error: err }))
      .finally(() => (this.scanning = undefined));
  }

  /** Batches this instance runs now. */
  get runningIds(): string[] {
    return [...this.running.keys()];
  }

  private async scan(): Promise<void> {
    for (const id of await this.deps.batches.activeIds()) {
      if (this.abort.signal.aborted || this.running.size >= this.maxRunning) return;
      if (this.running.has(id)) continue;
      const coordinator = await BatchCoordinator.claim(this.deps, id);
      if (!coordinator) continue;
      const run = coordinator.run(this.abort.signal).finally(() => this.running.delete(id));
      this.running.set(id, run);
    }
  }

  /** Every coordinator saves its counts and lets its lease go (for the next instance), then this stops. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.abort.abort();
    await this.scanning;
    await Promise.all(this.running.values());
  }
}
