/**
 * Keep-alive behind the load balancer: the web tier keeps an idle connection open longer than the
 * load balancer's idle timeout, so the load balancer never sends a request on a connection the web
 * tier has just closed (a 502). One setting drives the three places — the stack's idle timeout, the
 * web tier's LB_IDLE_TIMEOUT_SECONDS, the server's timeouts — and the real web server is probed with
 * a keep-alive connection left idle past Node's 5 s default.
 */

import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import test from 'ava';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { parseEnvironmentFile } from '../deploy/boot.js';
import { resolveDeployConfig, stackPolicy } from '../deploy/config.js';
import { ImageRecognitionStack } from '../deploy/stack.js';
import { keepAliveTimeouts, loadConfig } from '../lib/config.js';
import { startTestService, tempDataDir, testEnv } from './helpers/service.js';

interface Probe {
  readonly statuses: number[];
  /** The second request went out on the first one's socket. */
  readonly sameSocket: boolean;
}

/** Two GETs on one keep-alive agent, `idleMs` apart: was the idle connection still there for the second? */
async function probe(url: string, path: string, idleMs: number): Promise<Probe> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const sockets: Socket[] = [];
  const statuses: number[] = [];
  const get = async () => {
    const req = request(`${url}${path}`, { agent });
    req.once('socket', (socket: Socket) => sockets.push(socket));
    req.end();
    const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
    res.resume();
    await once(res, 'end');
    statuses.push(res.statusCode ?? 0);
  };
  try {
    await get();
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    await get();
  } finally {
    agent.destroy();
  }
  return { statuses, sameSocket: sockets.length === 2 && sockets[0] === sockets[1] };
}

test('the stack, the web tier environment and the server agree: keep-alive > the load balancer idle timeout < headers timeout', async (t) => {
  const dir = await tempDataDir('keepalive-stack');
  const releaseFile = join(dir, 'release.tgz');
  await writeFile(releaseFile, 'a stand-in release artifact');
  // A non-default idle timeout, so a default anywhere on the way would show.
  const config = resolveDeployConfig({ env: {}, context: { 'webTier.idleTimeoutSeconds': '333' } });
  const stack = new ImageRecognitionStack(new App({ outdir: join(dir, 'cdk.out') }), config.stackName, {
    config,
    policy: await stackPolicy(config),
    releaseFile,
    env: { region: config.region },
  });
  const json = Template.fromStack(stack).toJSON() as { Resources: Record<string, { Type: string; Properties: any }> };
  const resources = Object.entries(json.Resources);
  const [, lb] = resources.find(([, r]) => r.Type === 'AWS::ElasticLoadBalancingV2::LoadBalancer')!;
  const idle = Number(
    lb.Properties.LoadBalancerAttributes.find((a: any) => a.Key === 'idle_timeout.timeout_seconds').Value,
  );
  t.is(idle, 333, 'the stack sets the configured idle timeout');

  const [, web] = resources.find(([id, r]) => r.Type === 'AWS::EC2::LaunchTemplate' && id.startsWith('WebTier'))!;
  const userData = JSON.stringify(web.Properties.LaunchTemplateData.UserData);
  const envBody = /<<'IMAGE_RECOGNITION_ENV_EOF'\\n([\s\S]*?)\\nIMAGE_RECOGNITION_ENV_EOF/.exec(userData)?.[1] ?? '';
  const env = parseEnvironmentFile(envBody.replaceAll('\\n', '\n'));
  t.is(env.LB_IDLE_TIMEOUT_SECONDS, String(idle), "the web tier's environment names the same idle timeout");

  // The real web server started with that environment's setting.
  const service = await startTestService(dir, { WORKERS: '0', LB_IDLE_TIMEOUT_SECONDS: env.LB_IDLE_TIMEOUT_SECONDS! });
  try {
    const { server } = service.web;
    t.true(server.keepAliveTimeout > idle * 1000, `keepAliveTimeout ${server.keepAliveTimeout} ms > ${idle} s`);
    t.true(server.headersTimeout > server.keepAliveTimeout, `headersTimeout ${server.headersTimeout} ms`);
    t.true(server.requestTimeout >= server.headersTimeout, `requestTimeout ${server.requestTimeout} ms`);
    t.deepEqual(
      { keepAlive: server.keepAliveTimeout, headers: server.headersTimeout },
      {
        keepAlive: keepAliveTimeouts(idle).keepAliveTimeoutMs,
        headers: keepAliveTimeouts(idle).headersTimeoutMs,
      },
    );
  } finally {
    await service.stop();
  }
  // Unset (one machine, no load balancer): Node's own defaults, untouched.
  t.is(loadConfig(testEnv(dir)).http.keepAlive, undefined);
  t.throws(() => loadConfig(testEnv(dir, { LB_IDLE_TIMEOUT_SECONDS: '0' })), { message: /LB_IDLE_TIMEOUT_SECONDS/ });
});

test('a keep-alive connection idle for 6 s (Node closes at 5 s; load balancer idle timeout 10 s) still carries the next request', async (t) => {
  const service = await startTestService(await tempDataDir('keepalive'), {
    WORKERS: '0',
    LB_IDLE_TIMEOUT_SECONDS: '10',
  });
  try {
    const result = await probe(service.web.url, '/healthz', 6_000);
    t.deepEqual(result.statuses, [200, 200]);
    t.true(result.sameSocket, 'the second request reused the idle connection');
  } finally {
    await service.stop();
  }
});

test("the same probe against Node's default keep-alive (5 s) sees the connection closed (the check can fail)", async (t) => {
  const service = await startTestService(await tempDataDir('keepalive-default'), { WORKERS: '0' });
  try {
    t.is(service.web.server.keepAliveTimeout, 5_000, "Node's default");
    const result = await probe(service.web.url, '/healthz', 6_000);
    t.deepEqual(result.statuses, [200, 200]);
    t.false(result.sameSocket, 'the server closed the idle connection; the agent had to open another');
  } finally {
    await service.stop();
  }
});
