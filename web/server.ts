/**
 * The web tier's HTTP server as a running thing: the Koa app on its port, and a `stop` that loses
 * nothing it can keep — no new connections, the live view's event streams end; requests still
 * uploading, storing or waiting get 5 s to finish normally; then those still waiting get their job
 * id (202, or 503 on the classic route). (The submitter stops after it: service/service.ts.)
 */
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import type { Store } from '../pipeline/store.js';
import type { Batches } from '../pipeline/submit/batches/batches.js';
import type { Submitter } from '../pipeline/submit/submitter.js';
import type { ServiceStatus } from '../scaling/index.js';
import { createApp, type WebMetricsPort } from './app.js';
import { LiveStatus } from './live.js';

export interface WebServer {
  readonly url: string;
  readonly server: Server;
  stop(): Promise<void>;
}

/** What the web tier serves from: the one door into the pipeline, and the service's store, status and metrics. */
export interface WebServerDeps {
  readonly submitter: Submitter;
  /** The page reads recent results and the inputs behind thumbnails through it. */
  readonly store: Store;
  readonly status: () => Promise<ServiceStatus>;
  readonly metrics?: WebMetricsPort;
  readonly batches: Batches;
}

export async function startWebServer(config: Config, deps: WebServerDeps, log: Logger): Promise<WebServer> {
  const { submitter, store, status, metrics, batches } = deps;
  const live = new LiveStatus(status, log.child('live'));
  const app = createApp({
    submitter,
    store,
    limits: config.limits,
    auth: config.auth,
    classic: config.classic,
    log: log.child('http'),
    status,
    live,
    batches,
    ...(metrics ? { metrics } : {}),
  });
  const server = app.listen({ host: config.http.host, port: config.http.port });
  let inFlight = 0;
  server.on('request', (_req, res: ServerResponse) => {
    inFlight++;
    res.once('close', () => inFlight--);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  // Uploads of large files on slow links must not be cut by Node's default request timeout,
  // and answers can take as long as the configured wait.
  server.requestTimeout = config.limits.requestTimeoutMs + 30_000;
  // Behind a load balancer, idle connections outlive its idle timeout, so the load balancer closes
  // them, never this server under a request it is sending (a 502): lib/config.ts keepAliveTimeouts.
  const keepAlive = config.http.keepAlive;
  if (keepAlive) {
    server.keepAliveTimeout = keepAlive.keepAliveTimeoutMs;
    server.headersTimeout = keepAlive.headersTimeoutMs;
    // Node checks headersTimeout <= requestTimeout when a server is created; the same order here.
    server.requestTimeout = Math.max(server.requestTimeout, keepAlive.headersTimeoutMs);
  }
  const { address, port } = server.address() as AddressInfo;
  const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  log.info('web tier listening', { url, apiKeys: config.auth.apiKeys.length > 0 ? 'required' : 'off' });
  live.start();

  let stopping: Promise<void> | undefined;
  return {
    url,
    server,
    stop() {
      stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        live.stop();
        server.closeIdleConnections();
        await until(() => inFlight === 0, 5_000);
        submitter.releaseWaiting();
        await until(() => inFlight === 0, 2_000);
        server.closeAllConnections();
        await closed;
        log.info('web tier stopped');
      })();
      return stopping;
    },
  };
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}
