/**
 * Two embedded endpoints side by side: this checkout's and the one of another checkout of this
 * project (an earlier version, say), each started by its own `endpoint` npm script on this very
 * Node binary, on a fresh data directory. `npm run bench -- --baseline-endpoint DIR` measures the
 * S3/SQS call floor against both, alternately, in the same run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createAwsClients } from '../../lib/aws/clients.js';
import { type Config, loadConfig, projectRoot } from '../../lib/config.js';
import { freePorts } from '../../lib/ports.js';
import { ensureResources } from '../../pipeline/resources.js';
import { BenchError } from './pipeline.js';

export interface StartedEndpoint {
  readonly label: string;
  readonly pid: number;
  /** A configuration whose clients talk to this endpoint the way the service's would. */
  readonly config: Config;
  stop(): Promise<void>;
}

/** Starts `<dir>`'s `npm run endpoint` command line (with `node` = this Node) on free ports. */
export async function startCheckoutEndpoint(label: string, dir: string, dataParent: string): Promise<StartedEndpoint> {
  const root = resolve(dir);
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
    scripts?: Record<string, string>;
    dependencies?: Record<string, string>;
  };
  const script = pkg.scripts?.endpoint;
  if (!script?.startsWith('node '))
    throw new BenchError('BENCH_FAILED', `${root}/package.json has no "endpoint" script starting with node`);
  const args = script.slice('node '.length).split(/\s+/);
  const dataDir = await mkdtemp(join(dataParent, 'eir-endpoint-'));
  // Checkouts from the s3rver days used two ports (SQS, S3); this one uses one.
  const [sqsPort, s3Port] = await freePorts(2);
  const ports = pkg.dependencies?.s3rver
    ? { EMBEDDED_SQS_PORT: String(sqsPort), EMBEDDED_S3_PORT: String(s3Port) }
    : { EMBEDDED_PORT: String(sqsPort) };
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ENDPOINT_MODE: 'embedded', DATA_DIR: dataDir, LOG_LEVEL: 'warn', ...ports },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<Record<string, unknown>>((resolveReady, reject) => {
    const timer = setTimeout(
      () => reject(new BenchError('BENCH_FAILED', `${label} endpoint was not ready within 30 s`)),
      30_000,
    );
    child.on('message', (message: Record<string, unknown>) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolveReady(message);
      }
    });
    child.once('exit', (code) =>
      reject(new BenchError('BENCH_FAILED', `${label} endpoint exited with code ${code} before it was ready`)),
    );
  });
  const sqsUrl = `http://127.0.0.1:${Number(ready.port ?? ready.sqsPort)}`;
  const s3Url = `http://127.0.0.1:${Number(ready.port ?? ready.s3Port)}`;
  // s3rver checks signatures against its fixed account; fauxqs takes any keys.
  const config = loadConfig({
    ...process.env,
    ENDPOINT_MODE: 'aws',
    AWS_ENDPOINT_URL_SQS: sqsUrl,
    AWS_ENDPOINT_URL_S3: s3Url,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
  });
  const clients = createAwsClients(config);
  try {
    await ensureResources(clients, config);
  } finally {
    clients.destroy();
  }
  return {
    label,
    pid: child.pid!,
    config,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** This checkout's endpoint, started the same way. */
export const startOwnEndpoint = (dataParent: string) => startCheckoutEndpoint('this version', projectRoot, dataParent);
