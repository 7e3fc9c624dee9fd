/**
 * The embedded endpoint as a supervised child process of `npm start`. It keeps its state on disk,
 * so when it dies (OOM, `kill -9`) it is started again on the same port and data directory and the
 * service carries on: calls in progress see a refused connection and retry, as they would through
 * an AWS outage.
 */
import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../lib/log.js';
import { ChildProcessError, ENDPOINT_MAIN, forkMain, terminate, waitUntilReady } from '../lib/processes.js';

export interface EndpointReady {
  readonly port: number;
  /** Objects imported from an earlier version's data directory at this start. */
  readonly migrated: number;
}

export class EndpointProcess {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restarts = 0;
  private restartTimer: NodeJS.Timeout | undefined;

  private constructor(
    private env: NodeJS.ProcessEnv,
    private readonly log: Logger,
  ) {}

  /** Starts the endpoint; resolves once it listens (with the port it chose when asked for 0). */
  static async start(
    env: NodeJS.ProcessEnv,
    log: Logger,
  ): Promise<{ endpoint: EndpointProcess; ready: EndpointReady }> {
    const endpoint = new EndpointProcess(env, log);
    const ready = await endpoint.spawn();
    // Restarts use the same port, so every client's configured endpoint stays right.
    endpoint.env = { ...env, EMBEDDED_PORT: String(ready.port) };
    return { endpoint, ready };
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private async spawn(): Promise<EndpointReady> {
    const child = forkMain(ENDPOINT_MAIN, this.env);
    this.child = child;
    child.once('exit', (code, signal) => {
      if (this.stopping || this.child !== child) return;
      this.child = undefined;
      this.restarts++;
      const delay = Math.min(5_000, 100 * 2 ** Math.min(this.restarts - 1, 6));
      this.log.error('embedded endpoint died; starting it again on the same data', {
        pid: child.pid,
        code,
        signal,
        restarts: this.restarts,
        inMs: delay,
      });
      this.restartTimer = setTimeout(() => void this.restart(), delay);
    });
    const message = await waitUntilReady(child, 'embedded endpoint', 30_000);
    const port = Number(message.port);
    if (!Number.isInteger(port) || port <= 0)
      throw new ChildProcessError('CHILD_BAD_REPORT', 'the embedded endpoint reported no port', { message });
    return { port, migrated: Number(message.migrated ?? 0) };
  }

  private async restart(): Promise<void> {
    if (this.stopping) return;
    try {
      const { port } = await this.spawn();
      this.log.info('embedded endpoint is back', { pid: this.child?.pid, port });
    } catch (err) {
      this.log.error('embedded endpoint failed to start again', { error: err });
    }
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    if (this.child) await terminate(this.child, graceMs, this.log);
  }
}
