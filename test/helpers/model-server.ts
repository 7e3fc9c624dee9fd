/** A local static HTTP server over a directory that counts requests: stands in for a public model URL. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface ModelServer {
  /** Base URL, ending with `/`. */
  readonly url: string;
  /** Every request path received, in order. */
  readonly requests: string[];
  close(): Promise<void>;
}

export interface ModelServerOptions {
  /** URL path (e.g. `/broken/model.json`) → body served instead of a file. */
  readonly routes?: Readonly<Record<string, string>>;
  /** URL paths whose first request gets its connection reset (a transient network failure). */
  readonly flaky?: readonly string[];
}

export async function startModelServer(root: string, options: ModelServerOptions = {}): Promise<ModelServer> {
  const requests: string[] = [];
  const flaky = new Set(options.flaky);
  const server = http.createServer((req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    requests.push(urlPath);
    if (flaky.delete(urlPath)) {
      req.socket.destroy();
      return;
    }
    const body = options.routes?.[urlPath];
    if (body !== undefined) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    const file = path.join(root, urlPath);
    if (!file.startsWith(root + path.sep)) {
      res.writeHead(403).end();
      return;
    }
    stat(file).then(
      (info) => {
        if (!info.isFile()) {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-length': info.size, 'content-type': 'application/octet-stream' });
        createReadStream(file).pipe(res);
      },
      () => res.writeHead(404, 'Not Found').end(),
    );
  });
  // Tests block the event loop for seconds (tfjs inference): keep idle sockets open longer than
  // that, so the server never closes one just as the client reuses it.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
