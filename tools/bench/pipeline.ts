/**
 * The pipeline as users run it: `npm start` in a child process (embedded endpoint, worker pool,
 * web tier), then a burst of uploads through HTTP. Measures makespan, throughput, latency, the
 * per-stage breakdown the service reports, and the CPU the whole service tree spent.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../lib/config.js';
import { ServiceError } from '../../lib/errors.js';
import { type Distribution, describe } from '../../lib/stats.js';
import type { Photo } from './photos.js';
import { cpuBetween, cpuByRole, type Role, treeCpuMs } from './proc.js';

export interface RunningService {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export class BenchError extends ServiceError<'BENCH_FAILED'> {
  override readonly name = 'BenchError';
}

/** Starts `npm start`'s entry point with its defaults, on free ports and a temp data dir (under `dataParent`). */
export async function startServiceProcess(env: Record<string, string>, dataParent = tmpdir()): Promise<RunningService> {
  const dataDir = await mkdtemp(join(dataParent, 'eir-bench-'));
  const child: ChildProcess = spawn(process.execPath, ['--import', './scripts/lib/preload.mjs', 'scripts/start.ts'], {
    cwd: projectRoot,
    env: { ...process.env, PORT: '0', EMBEDDED_PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new BenchError('BENCH_FAILED', 'the service did not start within 120 s')),
      120_000,
    );
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) =>
      reject(new BenchError('BENCH_FAILED', `the service exited with code ${code} before it was ready`)),
    );
  });
  return {
    url,
    pid: child.pid!,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

const STAGES = ['upload', 's3Put', 'enqueue', 'queueWait', 's3Get', 'decode', 'infer'] as const;

export interface BurstResult {
  readonly n: number;
  readonly ok: number;
  readonly correct: number;
  readonly makespanMs: number;
  readonly imagesPerSecond: number;
  readonly latency: Distribution | undefined;
  /** Mean ms per stage as reported by the service; `rest` = total − the named stages (persist, respond, answer delivery). */
  readonly stages: Readonly<Record<string, number>>;
  /** CPU the service's process tree spent during the burst, ms per image. */
  readonly serviceCpuMsPerImage: number;
  /** The same, split between the web tier, the embedded endpoint (the stand-in for AWS) and the workers. */
  readonly cpuMsPerImageByRole: Readonly<Record<Role, number>>;
  /** Each photo's label, in the order of `photos` (undefined where it was not answered). */
  readonly labels: readonly (string | undefined)[];
  /** Answers that came from the result cache. */
  readonly cached: number;
}

interface ApiResult {
  readonly label: string;
  readonly cachedFrom?: string;
  readonly top5: readonly { index: number }[];
  readonly timings: Record<string, number>;
}

/** Uploads `photos` all at once (at most `concurrency` in flight) to `POST /api/v1/classify`. */
export async function burst(
  service: RunningService,
  photos: readonly Photo[],
  concurrency: number,
): Promise<BurstResult> {
  const bodies = await Promise.all(photos.map((p) => readFile(p.path)));
  const latencies: number[] = [];
  const results: (ApiResult & { classIndex: number })[] = [];
  const labels: (string | undefined)[] = photos.map(() => undefined);
  const before = treeCpuMs(service.pid);
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, photos.length) }, async () => {
      while (next < photos.length) {
        const i = next++;
        const form = new FormData();
        form.append('image', new Blob([bodies[i]!]), photos[i]!.file);
        const sent = performance.now();
        const response = await fetch(`${service.url}/api/v1/classify`, { method: 'POST', body: form });
        const json = (await response.json()) as { results?: ApiResult[] };
        latencies.push(performance.now() - sent);
        if (response.ok && json.results?.[0]) {
          results.push({ ...json.results[0], classIndex: photos[i]!.classIndex });
          labels[i] = json.results[0].label;
        }
      }
    }),
  );
  const makespanMs = performance.now() - started;
  const after = treeCpuMs(service.pid);
  const cpu = cpuBetween(before, after);
  const byRole = cpuByRole(before, after, service.pid);
  const mean = (key: string) => results.reduce((s, r) => s + (r.timings[key] ?? 0), 0) / (results.length || 1);
  const stages: Record<string, number> = {};
  for (const stage of STAGES) stages[stage] = mean(stage);
  stages.rest = mean('total') - STAGES.reduce((s, stage) => s + stages[stage]!, 0);
  return {
    n: photos.length,
    ok: results.length,
    correct: results.filter((r) => r.top5[0]?.index === r.classIndex).length,
    makespanMs,
    imagesPerSecond: (results.length / makespanMs) * 1000,
    latency: describe(latencies),
    stages,
    serviceCpuMsPerImage: cpu / photos.length,
    cpuMsPerImageByRole: {
      web: byRole.web / photos.length,
      endpoint: byRole.endpoint / photos.length,
      workers: byRole.workers / photos.length,
    },
    labels,
    cached: results.filter((r) => r.timings.cacheLookup !== undefined && r.timings.infer === undefined).length,
  };
}

/**
 * `npm run workload` against the service, as a user runs it (a child process: the classic
 * generator is the web tier's client, not a part of it): 100 concurrent `POST /` uploads.
 */
export async function classicWorkload(
  service: RunningService,
  dir: string,
  count: number,
  concurrency: number,
): Promise<{ meanMs: number; p50Ms: number; p95Ms: number; ok: number; sent: number }> {
  const json = join(await mkdtemp(join(tmpdir(), 'eir-workload-')), 'report.json');
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        './scripts/lib/preload.mjs',
        'scripts/workload.ts',
        '--url',
        service.url,
        '--dir',
        dir,
        '--count',
        String(count),
        '--concurrency',
        String(concurrency),
        '--json',
        json,
      ],
      {
        cwd: projectRoot,
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    child.once('exit', (code) =>
      code === 0 || code === 1
        ? resolve()
        : reject(new BenchError('BENCH_FAILED', `the workload generator exited with code ${code}`)),
    );
  });
  const { summary } = JSON.parse(await readFile(json, 'utf8')) as {
    summary: { latencyMs?: Distribution; answered: number; sent: number; rightOwner: number };
  };
  if (!summary.latencyMs) throw new BenchError('BENCH_FAILED', 'the workload generator got no answer');
  return {
    meanMs: summary.latencyMs.mean,
    p50Ms: summary.latencyMs.p50,
    p95Ms: summary.latencyMs.p95,
    ok: summary.rightOwner,
    sent: summary.sent,
  };
}
