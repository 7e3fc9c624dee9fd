/**
 * The live view's data, pushed: `GET /api/v1/events` is a Server-Sent Events stream.
 *
 *   event: hello    once, on connect: `{ periodMs, history: Sample[], status: ServiceStatus | null }`
 *   event: status   the status document (`GET /api/v1/status`) with the time it was read,
 *                   `{ t, status }`, each time it changed (read every `periodMs`, 1 s)
 *   : keepalive     a comment when nothing else was sent for `keepaliveMs` (15 s)
 *
 * One sampler serves every client: it reads `status()` once a period and keeps the last
 * `historyMs` (10 min) of queue depth and worker counts, so a page opened now draws the last
 * minutes at once. It reads while a client listens, and always when the local autoscaler is on
 * (its status is a read of memory; without it each read asks the queue, so it is left idle).
 */
import type { ServerResponse } from 'node:http';
import type { Context } from 'koa';
import type { Logger } from '../lib/log.js';
import type { ServiceStatus } from '../scaling/index.js';
import { HttpError } from './errors.js';

/** One point of the live chart: epoch ms, queue depth, worker counts. */
export interface LiveSample {
  readonly t: number;
  readonly visible: number;
  readonly inFlight: number;
  readonly desired: number;
  readonly running: number;
}

export interface LiveOptions {
  readonly periodMs: number;
  readonly historyMs: number;
  readonly keepaliveMs: number;
  /** A client that has not read this much of what was sent is dropped. */
  readonly maxBufferedBytes: number;
}

const DEFAULTS: LiveOptions = {
  periodMs: 1_000,
  historyMs: 10 * 60_000,
  keepaliveMs: 15_000,
  maxBufferedBytes: 1024 * 1024,
};

interface Client {
  readonly res: ServerResponse;
  lastWriteAt: number;
}

/** What decides whether a status changed: everything but the time of its queue reading. */
function changeKey(status: ServiceStatus): string {
  const { sampledAt: _, ...queue } = status.queue;
  return JSON.stringify({ ...status, queue });
}

export class LiveStatus {
  private readonly options: LiveOptions;
  private readonly clients = new Set<Client>();
  private readonly history: LiveSample[] = [];
  private last: { readonly key: string; readonly t: number; readonly status: ServiceStatus } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private ticking = false;
  /** The status came from the local autoscaler (cheap to read): sample even with nobody listening. */
  private autoscaled = false;
  private failing = false;

  constructor(
    private readonly status: () => Promise<ServiceStatus>,
    private readonly log: Logger,
    options: Partial<LiveOptions> = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.tick();
  }

  /** Stops sampling and ends every stream (their connections can then close). */
  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    for (const client of this.clients) client.res.end();
    this.clients.clear();
  }

  get listeners(): number {
    return this.clients.size;
  }

  /** Answers `ctx` with the event stream, written straight to the response (Koa steps aside). */
  attach(ctx: Context): void {
    if (!this.running) throw new HttpError('SHUTTING_DOWN', 'the web tier is shutting down; connect again in a moment');
    if (ctx.method === 'HEAD') {
      ctx.type = 'text/event-stream';
      ctx.status = 200;
      return;
    }
    const { res } = ctx;
    const client: Client = { res, lastWriteAt: 0 };
    ctx.req.socket.setTimeout(0);
    ctx.req.socket.setNoDelay(true);
    ctx.respond = false;
    ctx.status = 200;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    });
    const wasIdle = this.clients.size === 0;
    this.clients.add(client);
    res.once('close', () => this.clients.delete(client));
    res.on('error', () => this.clients.delete(client));
    this.write(
      client,
      `retry: 2000\n\n${event('hello', { periodMs: this.options.periodMs, history: this.history, status: this.last?.status ?? null })}`,
    );
    // A sampler left idle (nobody listened) reads now rather than at its next period.
    if (wasIdle && !this.autoscaled && this.running && !this.ticking) {
      clearTimeout(this.timer);
      void this.tick();
    }
  }

  private async tick(): Promise<void> {
    this.ticking = true;
    try {
      if (this.autoscaled || this.clients.size > 0 || this.last === undefined) await this.sample();
      this.keepalive();
    } finally {
      this.ticking = false;
    }
    if (this.running) {
      this.timer = setTimeout(() => void this.tick(), this.options.periodMs);
      this.timer.unref();
    }
  }

  private async sample(): Promise<void> {
    let status: ServiceStatus;
    try {
      status = await this.status();
    } catch (err) {
      if (!this.failing) this.log.warn('the live view could not read the service status', { error: err });
      this.failing = true;
      return;
    }
    this.failing = false;
    if (!this.running) return;
    const t = Date.now();
    this.autoscaled = status.policy !== undefined;
    this.history.push({
      t,
      visible: status.queue.visible,
      inFlight: status.queue.inFlight,
      desired: status.workers.desired,
      running: status.workers.running,
    });
    while (this.history.length > 0 && this.history[0]!.t < t - this.options.historyMs) this.history.shift();
    const key = changeKey(status);
    if (key === this.last?.key) return;
    this.last = { key, t, status };
    const frame = event('status', { t, status });
    for (const client of this.clients) this.write(client, frame);
  }

  private keepalive(): void {
    const now = Date.now();
    for (const client of this.clients)
      if (now - client.lastWriteAt >= this.options.keepaliveMs) this.write(client, ': keepalive\n\n');
  }

  private write(client: Client, frame: string): void {
    if (client.res.writableLength > this.options.maxBufferedBytes) {
      // A client that does not read: drop it rather than buffer for it without end.
      this.clients.delete(client);
      client.res.destroy();
      return;
    }
    client.lastWriteAt = Date.now();
    client.res.write(frame);
  }
}

function event(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}
