/**
 * A batch as users run one: `npm start` in a child process with SOURCE_BUCKETS, the sample photos put
 * under many keys of a prefix in its embedded endpoint (any S3 client would do), then
 * `POST /api/v1/batches` and its progress polled until done. Measures the batch's images/s (from
 * the batch's start to its last answer), the time to the first result, and the web process's
 * peak resident memory (VmHWM) — which must not grow with the batch: one service per size.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { freePorts } from '../../lib/ports.js';
import type { Photo } from './photos.js';
import { BenchError, startServiceProcess } from './pipeline.js';
import { cpuBetween, cpuByRole, type Role, treeCpuMs } from './proc.js';

export interface BatchRun {
  readonly objects: number;
  readonly done: number;
  readonly failed: number;
  /** From the POST to the batch's last answer. */
  readonly makespanMs: number;
  readonly imagesPerSecond: number;
  /** From the POST to the first object answered. */
  readonly firstResultMs: number;
  /** CPU per object by part of the service (ms), and the share of the machine's cores left idle. */
  readonly cpuMsPerImage: Readonly<Record<Role, number>>;
  readonly idle: number;
  /** The web process's peak resident set (VmHWM), MiB, and its resident set before the batch. */
  readonly webPeakMiB: number;
  readonly webBeforeMiB: number;
}

const BUCKET = 'bench-source';

/** `/proc/<pid>/status` fields in KiB → MiB. */
async function memoryOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, hwm: kib('VmHWM') / 1024 };
}

/** Puts `count` objects under `prefix`: the photos again and again, each under a key of its own. */
async function fill(s3: S3Client, photos: readonly Photo[], count: number, prefix: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
  const bodies = await Promise.all(photos.map((p) => readFile(p.path)));
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < count) {
        const i = next++;
        const key = `${prefix}${String(Math.floor(i / photos.length)).padStart(4, '0')}/${photos[i % photos.length]!.file}`;
        await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bodies[i % photos.length]! }));
      }
    }),
  );
}

/** One batch of `objects` on a fresh service with `workers` workers. */
export async function batchRun(
  photos: readonly Photo[],
  objects: number,
  options: { model: string; workers: string; dataParent?: string },
): Promise<BatchRun> {
  const [port] = await freePorts(1);
  const service = await startServiceProcess(
    { MODEL: options.model, WORKERS: options.workers, SOURCE_BUCKETS: BUCKET, EMBEDDED_PORT: String(port) },
    options.dataParent,
  );
  const s3 = new S3Client({
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${port}`,
    forcePathStyle: true,
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  });
  try {
    process.stderr.write(`putting ${objects} objects in s3://${BUCKET}/...\n`);
    await fill(s3, photos, objects, 'batch/');
    const before = await memoryOf(service.pid);
    process.stderr.write(`a batch of ${objects}...\n`);
    const cpuBefore = treeCpuMs(service.pid);
    const started = performance.now();
    const created = await fetch(`${service.url}/api/v1/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ source: `s3://${BUCKET}/batch/` }),
    });
    const { id } = (await created.json()) as { id: string };
    if (created.status !== 202) throw new BenchError('BENCH_FAILED', `the batch was refused: ${created.status}`);
    let firstResultMs: number | undefined;
    let batch: { status: string; done: number; failed: number; finishedAt?: string };
    let polls = 0;
    for (;;) {
      batch = (await (await fetch(`${service.url}/api/v1/batches/${id}`)).json()) as typeof batch;
      if (process.env.BENCH_HEAP && polls++ % Number(process.env.BENCH_HEAP) === 0) {
        const text = await (await fetch(`${service.url}/metrics`)).text();
        const mib = (name: string) =>
          (Number(new RegExp(`^eir_web_nodejs_${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20).toFixed(0);
        const mem = await memoryOf(service.pid);
        process.stderr.write(
          `  ${((performance.now() - started) / 1000).toFixed(0)} s: ${batch.done} done, heap used ${mib('heap_size_used_bytes')} of ${mib('heap_size_total_bytes')} MiB, external ${mib('external_memory_bytes')} MiB, rss ${mem.rss.toFixed(0)} MiB\n`,
        );
      }
      if (firstResultMs === undefined && batch.done + batch.failed > 0) firstResultMs = performance.now() - started;
      if (batch.status === 'done' || batch.status === 'failed') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const makespanMs = performance.now() - started;
    const cpuAfter = treeCpuMs(service.pid);
    const byRole = cpuByRole(cpuBefore, cpuAfter, service.pid);
    const answered = batch.done + batch.failed;
    const after = await memoryOf(service.pid);
    return {
      objects,
      done: batch.done,
      failed: batch.failed,
      makespanMs,
      imagesPerSecond: (answered / makespanMs) * 1000,
      cpuMsPerImage: {
        web: byRole.web / answered,
        endpoint: byRole.endpoint / answered,
        workers: byRole.workers / answered,
      },
      idle: 1 - cpuBetween(cpuBefore, cpuAfter) / (availableParallelism() * makespanMs),
      firstResultMs: firstResultMs ?? makespanMs,
      webPeakMiB: after.hwm,
      webBeforeMiB: before.rss,
    };
  } finally {
    s3.destroy();
    await service.stop();
  }
}
