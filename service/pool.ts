/**
 * The local app tier: worker processes, one model session each, resized at will (by `npm start`
 * from WORKERS, or by an autoscaler). A worker that dies unexpectedly is replaced; one that is
 * asked to go gets SIGTERM and finishes its in-flight messages first.
 */
import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../lib/log.js';
import { ChildProcessError, forkMain, terminate, WORKER_MAIN, waitUntilReady } from '../lib/processes.js';
import type { MetricsJson } from '../pipeline/metrics.js';

export interface PoolOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly log: Logger;
  /** How long a stopping worker may take to finish its in-flight messages. */
  readonly stopGraceMs: number;
  readonly readyTimeoutMs?: number;
}

interface Member {
  readonly child: ChildProcess;
  ready: boolean;
  retiring: boolean;
  /** The Node.js version the worker reported when it was ready. */
  node?: string;
}

export class WorkerPool {
  /** What the scaling controller moves, for its status. */
  readonly label = 'worker processes';
  private readonly members = new Set<Member>();
  private target = 0;
  private stopped = false;
  private restarts = 0;
  /** Consecutive failed starts, and no new start before `nextSpawnAt` (however often resize is called). */
  private failedStarts = 0;
  private nextSpawnAt = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private metricsRequests = 0;
  /** Epoch ms of the last image a worker reported finished (0: none yet). */
  lastActivityAt = 0;

  constructor(private readonly options: PoolOptions) {}

  /** Workers wanted. */
  get desired(): number {
    return this.target;
  }

  /** Workers up and receiving (not starting, not retiring). */
  get running(): number {
    return [...this.members].filter((m) => m.ready && !m.retiring).length;
  }

  /** Worker processes alive, including those starting and those retiring. */
  get alive(): number {
    return this.members.size;
  }

  /** Node.js versions of the workers that are ready (one entry per worker). */
  get nodeVersions(): string[] {
    return [...this.members].flatMap((m) => (m.ready && m.node ? [m.node] : []));
  }

  get pids(): number[] {
    return [...this.members].map((m) => m.child.pid!).filter(Boolean);
  }

  /** Starts or retires workers until `count` are active. Resolves when the new ones are ready. */
  async resize(count: number): Promise<void> {
    if (this.stopped) return;
    this.target = count;
    const active = [...this.members].filter((m) => !m.retiring);
    if (active.length < count && Date.now() < this.nextSpawnAt) {
      throw new ChildProcessError(
        'KEEPS_FAILING',
        `workers keep failing to start; next attempt after ${new Date(this.nextSpawnAt).toISOString()}`,
        {
          failedStarts: this.failedStarts,
        },
      );
    }
    const starting: Promise<void>[] = [];
    for (let i = active.length; i < count; i++) starting.push(this.spawn());
    // Retire the newest first: the oldest have warm caches.
    for (const member of active.slice(count).reverse()) this.retire(member);
    await Promise.all(starting);
  }

  /**
   * Every ready worker's metrics (prom-client JSON), asked for over IPC; a worker that does not
   * answer within `timeoutMs` (busy starting, or stopping) is left out of this scrape.
   */
  async collectMetrics(timeoutMs = 1_000): Promise<MetricsJson[]> {
    const ready = [...this.members].filter((m) => m.ready && m.child.connected);
    const answers = await Promise.all(ready.map((member) => this.askMetrics(member.child, timeoutMs)));
    return answers.filter((a): a is MetricsJson => a !== undefined);
  }

  private askMetrics(child: ChildProcess, timeoutMs: number): Promise<MetricsJson | undefined> {
    const id = ++this.metricsRequests;
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      const onMessage = (message: { type?: string; id?: number; metrics?: MetricsJson }) => {
        if (message?.type === 'metrics' && message.id === id) finish(message.metrics);
      };
      const finish = (metrics: MetricsJson | undefined) => {
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(metrics);
      };
      child.on('message', onMessage);
      try {
        child.send({ type: 'metrics', id });
      } catch {
        finish(undefined);
      }
    });
  }

  /** Retires every worker and waits for them to finish their in-flight work. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.target = 0;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await Promise.all([...this.members].map((m) => this.retire(m)));
  }

  private async spawn(): Promise<void> {
    const child = forkMain(WORKER_MAIN, this.options.env);
    const member: Member = { child, ready: false, retiring: false };
    this.members.add(member);
    child.on('message', (message: { type?: string }) => {
      if (message?.type === 'activity') this.lastActivityAt = Date.now();
    });
    child.once('exit', (code, signal) => {
      this.members.delete(member);
      if (member.retiring || this.stopped) return;
      this.restarts++;
      this.options.log.error('worker died; replacing it', { pid: child.pid, code, signal, restarts: this.restarts });
      // Back off a little if workers keep dying (a bad model, a missing queue...).
      const delay = Math.min(30_000, 500 * 2 ** Math.min(this.restarts - 1, 6));
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        void this.resize(this.target).catch((err: unknown) =>
          this.options.log.error('worker restart failed', { error: err }),
        );
      }, delay);
      this.timers.add(timer);
    });
    try {
      const ready = await waitUntilReady(child, `worker ${child.pid}`, this.options.readyTimeoutMs ?? 120_000);
      member.node = typeof ready.node === 'string' ? ready.node : undefined;
      member.ready = true;
      this.failedStarts = 0;
      this.options.log.info('worker ready', {
        pid: child.pid,
        node: member.node,
        running: this.running,
        desired: this.target,
      });
    } catch (err) {
      this.failedStarts++;
      this.nextSpawnAt = Date.now() + Math.min(60_000, 1_000 * 2 ** Math.min(this.failedStarts - 1, 6));
      this.options.log.error('worker failed to start', { pid: child.pid, error: err, failedStarts: this.failedStarts });
      child.kill('SIGKILL');
      throw err;
    }
  }

  private retire(member: Member): Promise<void> {
    member.retiring = true;
    return terminate(member.child, this.options.stopGraceMs, this.options.log);
  }
}
