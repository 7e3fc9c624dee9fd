/**
 * A stand-in for the EC2 instance metadata service, version 2, speaking its protocol: a session
 * token from `PUT /latest/api/token` (which needs the TTL header), then reads that must carry the
 * token in `X-aws-ec2-metadata-token` (401 otherwise). The target lifecycle state is set by the test.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ImdsStandIn {
  readonly url: string;
  /** What `autoscaling/target-lifecycle-state` answers. */
  state: string;
  readonly instanceId: string;
  /** Requests seen, as `METHOD path status`. */
  readonly requests: string[];
  /** Reads of the target lifecycle state received (counted on arrival, before any delay). */
  readonly stateReads: number;
  /** How long a read of the target lifecycle state waits before it is answered (default 0). */
  delayMs: number;
  close(): Promise<void>;
}

export async function startImds(instanceId = 'i-0123456789abcdef0', state = 'InService'): Promise<ImdsStandIn> {
  const tokens = new Set<string>();
  const requests: string[] = [];
  const standIn = { state, stateReads: 0, delayMs: 0 };
  const server: Server = createServer((req, res) => {
    const answer = (status: number, body = '') => {
      requests.push(`${req.method} ${req.url} ${status}`);
      res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
    };
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!(ttl >= 1 && ttl <= 21_600)) return answer(400);
      const token = randomUUID();
      tokens.add(token);
      return answer(200, token);
    }
    if (req.method !== 'GET') return answer(405);
    if (!tokens.has(String(req.headers['x-aws-ec2-metadata-token'] ?? ''))) return answer(401);
    if (req.url === '/latest/meta-data/instance-id') return answer(200, instanceId);
    if (req.url === '/latest/meta-data/autoscaling/target-lifecycle-state') {
      standIn.stateReads++;
      setTimeout(() => answer(200, standIn.state), standIn.delayMs);
      return;
    }
    return answer(404);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(standIn, {
    url: `http://127.0.0.1:${port}`,
    instanceId,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}
