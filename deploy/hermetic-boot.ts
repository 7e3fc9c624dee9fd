/**
 * A release booted the way an instance boots it, but with no network at all: unpacked into an empty
 * directory, then its service started with the release's own Node inside a network namespace that
 * has loopback only (`unshare -n` as root, `unshare -rn` otherwise), with an empty HOME and TMPDIR,
 * no npm, no ../shared, and an environment that names nothing but the service's own settings. A
 * probe (release-probe.mjs) then classifies one photo over HTTP on loopback, as a client would.
 *
 * What it proves: the artifact alone is enough — Node, node_modules, the model — and so a boot needs
 * only the S3 object and the AWS APIs. test/deploy-release.test.ts runs it once; `npm run
 * deploy:boot-time` runs it several times and reports the time from unpack to the first answer.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { RELEASE_NODE, serviceCommand } from './boot.js';

const run = promisify(execFile);

/** The probe the namespace runs (plain JavaScript, Node's own modules only). */
export const PROBE = fileURLToPath(new URL('./release-probe.mjs', import.meta.url));

/** How to enter a network namespace here, or why it cannot be done. */
export type Namespace = { readonly args: readonly string[] } | { readonly unavailable: string };

/** `unshare -n` as root, `unshare -rn` (a user namespace mapping us to root) otherwise; tried once. */
export async function networkNamespace(): Promise<Namespace> {
  const args = process.getuid?.() === 0 ? ['-n'] : ['-r', '-n'];
  try {
    await run('unshare', [...args, 'true']);
    return { args };
  } catch (err) {
    const e = err as { code?: string | number; stderr?: string; message: string };
    return {
      unavailable:
        e.code === 'ENOENT'
          ? 'unshare is not installed (Debian: util-linux)'
          : `unshare ${args.join(' ')} failed (${(e.stderr || e.message).trim()}): this kernel or container forbids network namespaces`,
    };
  }
}

export interface ProbeReport {
  /** Date.now() of each step, as the probe saw them. */
  readonly started: number;
  readonly listening: number | null;
  readonly answered: number | null;
  readonly stopped: number | null;
  readonly status?: number;
  readonly body?: string;
  readonly label?: string;
  readonly exitCode?: number | string | null;
  readonly error?: string;
  /** The service's last output, when something failed. */
  readonly output?: string;
}

export interface HermeticBoot {
  readonly probe: ProbeReport;
  /** Milliseconds from the start of the unpack to: the unpack done, the web tier listening, the first answer. */
  readonly unpackedMs: number;
  readonly listeningMs: number | null;
  readonly answeredMs: number | null;
  /** What the namespace had besides its loopback interface (nothing, when all is well). */
  readonly interfaces: readonly string[];
  /** The probe's own exit code and stderr. */
  readonly code: number | null;
  readonly stderr: string;
}

export interface HermeticBootOptions {
  readonly archive: string;
  /** An empty directory: the release goes to <dir>/app, HOME, TMPDIR and DATA_DIR beside it. */
  readonly dir: string;
  readonly photo: string;
  /** MODEL, as the stack sets it (the release's release.json `model.manifest`). */
  readonly model: string;
  readonly namespace: { readonly args: readonly string[] };
  readonly port?: number;
}

/** Unpacks `archive` and runs the probe against its `npm start` (one worker) in the namespace. */
export async function hermeticBoot(o: HermeticBootOptions): Promise<HermeticBoot> {
  const app = join(o.dir, 'app');
  const home = join(o.dir, 'home');
  const tmp = join(o.dir, 'tmp');
  const data = join(o.dir, 'data');
  const port = o.port ?? 3000;
  const started = Date.now();
  await Promise.all([app, home, tmp, data].map((d) => mkdir(d, { recursive: true })));
  await run('tar', ['-xzf', o.archive, '-C', app, '--no-same-owner']);
  const unpacked = Date.now();

  // Only the service's settings: no AWS_*, no MODELS_DIR, no npm configuration, nothing of ours.
  const env = {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: home,
    TMPDIR: tmp,
    LANG: 'C.UTF-8',
    ENDPOINT_MODE: 'embedded',
    DATA_DIR: data,
    MODEL: o.model,
    WORKERS: '1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
  };
  // Loopback up, and nothing else there: no other interface, no route out.
  const inside = [
    'ip link set lo up',
    'others="$(ip -o link show | grep -v ": lo:" || true)"',
    'if [ -n "$others" ] || [ -n "$(ip route show)" ]; then echo "not isolated: $others $(ip route show)" >&2; exit 3; fi',
    'exec "$@"',
  ].join('\n');
  const node = join(app, RELEASE_NODE);
  const args = [
    ...o.namespace.args,
    '--',
    'sh',
    '-c',
    inside,
    'sh',
    node,
    PROBE,
    app,
    o.photo,
    String(port),
    '--',
    ...serviceCommand('web', app),
  ];
  const child = spawn('unshare', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const line = stdout.trim().split('\n').pop() ?? '';
  let probe: ProbeReport;
  try {
    probe = JSON.parse(line) as ProbeReport;
  } catch {
    probe = {
      started,
      listening: null,
      answered: null,
      stopped: null,
      error: `no report from the probe: ${line || stderr}`,
    };
  }
  const since = (at: number | null) => (at === null ? null : at - started);
  return {
    probe,
    unpackedMs: unpacked - started,
    listeningMs: since(probe.listening),
    answeredMs: since(probe.answered),
    interfaces: /not isolated: (.*)/.exec(stderr)?.[1] ? [stderr.trim()] : [],
    code,
    stderr,
  };
}
