/**
 * The benchmark behind `npm run bench [-- --n 250] [--burst 100] [--model ID] [--workers N] [--data-dir DIR] [--skip-models] [--skip-pipeline] [--baseline-endpoint DIR] [--write-docs]`
 *
 * Prints markdown tables and writes JSON to bench-results/. Every ratio is computed from numbers
 * measured in this same run: the models on one thread in this process, then the service as
 * `npm start` runs it, in a child process, under a burst of uploads. With `--write-docs` it also
 * puts this run's rows, dated today, into docs/benchmarks.md's tables (docs.ts, report.ts).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, projectRoot } from '../../lib/config.js';
import { freePorts } from '../../lib/ports.js';
import { BUILTIN_MODEL_IDS, DEFAULT_MODEL_ID } from '../../models/index.js';
import { type BatchRun, batchRun } from './batch.js';
import { type CallCost, measureCalls } from './calls.js';
import { checkDatedTables, writeDatedTables } from './docs.js';
import { startCheckoutEndpoint, startOwnEndpoint } from './endpoints.js';
import { benchModel, type ModelBench } from './models.js';
import { type Photo, readPhotos, SAMPLE_DIR } from './photos.js';
import { type BurstResult, burst, classicWorkload, startServiceProcess } from './pipeline.js';
import { pidsOf } from './proc.js';
import { type BenchReport, benchTableShapes, datedTables, type Target, targetLine } from './report.js';
import { workerAlone } from './worker-alone.js';

const parseBenchArgs = (argv: string[]) =>
  parseArgs({
    args: argv,
    strict: true,
    options: {
      n: { type: 'string', default: '250' },
      burst: { type: 'string', default: '100' },
      model: { type: 'string' },
      workers: { type: 'string' },
      // Where the service's data directory (the embedded endpoint's files) goes: the OS temp dir by default.
      'data-dir': { type: 'string' },
      'skip-models': { type: 'boolean', default: false },
      'skip-pipeline': { type: 'boolean', default: false },
      // Another checkout of this project (an earlier version): the call floor against its embedded
      // endpoint and against this one's, alternately, in this run.
      'baseline-endpoint': { type: 'string' },
      // Put this run's rows, dated today, into docs/benchmarks.md.
      'write-docs': { type: 'boolean', default: false },
      // Batches of these sizes (comma-separated; e.g. 1000,10000), each on a fresh service.
      batch: { type: 'string' },
    },
  }).values;

/** The page whose dated tables `--write-docs` rewrites. */
const BENCHMARKS_DOC = join(projectRoot, 'docs', 'benchmarks.md');

type BenchArgs = ReturnType<typeof parseBenchArgs>;

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const ms = (x: number) => x.toFixed(1);
const out = (line = '') => process.stdout.write(`${line}\n`);

async function main(args: BenchArgs, argv: readonly string[]): Promise<void> {
  // A page whose tables the bench cannot write fails now, not after the whole run.
  if (args['write-docs']) checkDatedTables(await readFile(BENCHMARKS_DOC, 'utf8'), benchTableShapes());
  const config = loadConfig();
  const cores = availableParallelism();
  const photos = await readPhotos();
  const n = Math.min(Number(args.n), photos.length);
  const burstSize = Math.min(Number(args.burst), photos.length);
  const model = args.model ?? config.model.source ?? DEFAULT_MODEL_ID;
  const report: BenchReport = {
    at: new Date().toISOString(),
    cores,
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    node: process.version,
    model,
    options: argv.filter((arg) => arg !== '--write-docs'),
  };
  out(`# Benchmark — ${cores} cores, Node ${process.version}, ${new Date().toISOString()}`);

  const models: ModelBench[] = [];
  const ids = args['skip-models'] ? (args['skip-pipeline'] ? [] : [model]) : [...BUILTIN_MODEL_IDS];
  for (const id of ids) {
    process.stderr.write(`benchmarking ${id}...\n`);
    models.push(await benchModel(id, photos, { modelsDir: config.model.modelsDir, batches: [1, 2, 4, 8, 16] }));
  }
  report.models = models;
  out('\n## Models (one thread, all sample photos)\n');
  out(
    '| model | backend | resize | top-1 | top-5 | decode ms/img | infer ms/img, batch 1 | best batch | infer ms/img, best | images/s per core (decode + infer) |',
  );
  out('|---|---|---|---|---|---|---|---|---|---|');
  for (const m of models) {
    out(
      `| ${m.id} | ${m.backend} | ${m.resize} | ${pct(m.top1)} | ${pct(m.top5)} | ${ms(m.decodeMs)} | ${ms(m.inferMs[1]!)} | ${m.bestBatch} | ${ms(m.bestInferMs)} | ${(1000 / (m.decodeMs + m.bestInferMs)).toFixed(1)} |`,
    );
  }

  if (args['baseline-endpoint']) {
    report.endpoints = await compareEndpoints(
      args['baseline-endpoint'],
      await readFile(photos[0]!.path),
      args['data-dir'] ?? tmpdir(),
    );
  }

  if (args.batch) {
    const raw =
      models.find((m) => m.id === model) ??
      (await benchModel(model, photos, { modelsDir: config.model.modelsDir, batches: [1, 2, 4, 8, 16] }));
    const { targets, ...batches } = await benchBatches(
      args.batch,
      photos,
      model,
      args.workers ?? String(cores),
      raw,
      cores,
      args['data-dir'],
    );
    report.batches = batches;
    report.targets = [...(report.targets ?? []), ...targets];
  }

  if (!args['skip-pipeline']) {
    const raw =
      models.find((m) => m.id === model) ??
      (await benchModel(model, photos, { modelsDir: config.model.modelsDir, batches: [1, 2, 4, 8, 16] }));
    const workers = args.workers ?? String(cores);
    process.stderr.write('the worker alone...\n');
    const alone = await workerAlone(model, photos.slice(0, n), args['data-dir'] ?? tmpdir());
    report.workerAlone = alone;
    const aloneRatios = alone.workerMs.map((w, i) => w / alone.rawMs[i]!);
    out(
      `\n## The worker alone (model ${model}: one worker pipeline in the bench's process, its endpoint in another; CPU of that process, the same ${alone.images} photos)\n`,
    );
    out(
      '| round | decode + inference alone, CPU ms/img | the whole worker (receive, fetch, decode, infer, persist, answer, delete), CPU ms/img | ratio |',
    );
    out('|---|---|---|---|');
    for (const [i, r] of alone.rawMs.entries())
      out(`| ${i + 1} | ${ms(r)} | ${ms(alone.workerMs[i]!)} | ${aloneRatios[i]!.toFixed(2)} |`);
    process.stderr.write(`starting the service (model ${model}, ${workers} workers)...\n`);
    // Known ports: this process talks to the service's endpoint too, to measure the calls alone.
    const [port] = await freePorts(1);
    const ports = { EMBEDDED_PORT: String(port) };
    // The throughput bursts go through the workers: the result cache is off (the same photos repeat).
    const service = await startServiceProcess(
      { MODEL: model, WORKERS: workers, RESULT_CACHE: 'off', ...ports },
      args['data-dir'],
    );
    const targets: Target[] = [];
    try {
      await burst(service, photos.slice(0, 8), 8); // warm-up: connections, JIT, first batches
      const [endpointPid] = pidsOf(service.pid, 'endpoint');
      if (endpointPid === undefined) throw new Error('the service has no embedded endpoint process');
      process.stderr.write('measuring the S3/SQS calls one image needs...\n');
      const calls = await measureCalls(
        loadConfig({ ...process.env, ...ports, MODEL: model }),
        endpointPid,
        await readFile(photos[0]!.path),
      );
      printCalls(calls);
      report.calls = calls;
      const bursts: BurstResult[] = [];
      for (const size of [...new Set([burstSize, n])]) {
        process.stderr.write(`burst of ${size}...\n`);
        bursts.push(await burst(service, photos.slice(0, size), size));
      }
      const perImageMs = raw.decodeMs + raw.bestInferMs;
      const rows = bursts.map((b) => ({
        ...b,
        efficiency: b.imagesPerSecond / ((1000 / raw.bestInferMs) * cores),
        efficiencyWithDecode: b.imagesPerSecond / ((1000 / perImageMs) * cores),
        idealMs: (b.n * perImageMs) / cores,
        overheadCpuMsPerImage: b.serviceCpuMsPerImage - perImageMs,
        // What this project's own code adds per image: all but the embedded endpoint (which AWS
        // replaces in production) and the decode + inference work itself.
        ownOverheadCpuMsPerImage: b.cpuMsPerImageByRole.web + b.cpuMsPerImageByRole.workers - perImageMs,
      }));
      const dataParent = args['data-dir'] ?? tmpdir();
      report.pipeline = { model, workers: Number(workers), dataParent, raw, bursts: rows };
      out(
        `\n## Pipeline (\`npm start\` defaults, model ${model}, ${workers} workers, ${cores} cores, data under ${dataParent})\n`,
      );
      out(
        '| burst | answered | top-1 | makespan s | ideal s | makespan ÷ ideal | images/s | p50 ms | p95 ms | p99 ms | efficiency (÷ raw infer × cores) | efficiency (÷ raw decode+infer × cores) | service CPU ms/img | overhead CPU ms/img |',
      );
      out('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
      for (const r of rows) {
        out(
          `| ${r.n} | ${r.ok} | ${pct(r.correct / r.n)} | ${(r.makespanMs / 1000).toFixed(2)} | ${(r.idealMs / 1000).toFixed(2)} | ${(r.makespanMs / r.idealMs).toFixed(2)} | ${r.imagesPerSecond.toFixed(1)} | ${r.latency?.p50.toFixed(0)} | ${r.latency?.p95.toFixed(0)} | ${r.latency?.p99.toFixed(0)} | ${r.efficiency.toFixed(2)} | ${r.efficiencyWithDecode.toFixed(2)} | ${ms(r.serviceCpuMsPerImage)} | ${ms(r.overheadCpuMsPerImage)} |`,
        );
      }
      out(
        '\nCPU per image by part of the service (ms); "own overhead" = web + workers − (decode + inference), i.e. without the embedded endpoint that stands in for AWS:\n',
      );
      out('| burst | web tier | embedded endpoint | workers | decode + inference (raw) | own overhead |');
      out('|---|---|---|---|---|---|');
      for (const r of rows) {
        const c = r.cpuMsPerImageByRole;
        out(
          `| ${r.n} | ${ms(c.web)} | ${ms(c.endpoint)} | ${ms(c.workers)} | ${ms(perImageMs)} | ${ms(r.ownOverheadCpuMsPerImage)} |`,
        );
      }
      out(
        '\nMean ms per stage, as the service reports them (wall time, so queueing shows up in `queueWait`; `infer` is the whole batch; `rest` = persist + respond + answer delivery):\n',
      );
      const stages = Object.keys(rows[0]!.stages);
      out(`| burst | ${stages.join(' | ')} |`);
      out(`|---|${stages.map(() => '---').join('|')}|`);
      for (const r of rows) out(`| ${r.n} | ${stages.map((s) => ms(r.stages[s]!)).join(' | ')} |`);
      out(
        `\nRaw, this run: decode ${ms(raw.decodeMs)} ms/img, inference ${ms(raw.bestInferMs)} ms/img at batch ${raw.bestBatch} → ${(1000 / raw.bestInferMs).toFixed(1)} img/s per core (inference only).`,
      );

      const full = rows[rows.length - 1]!;
      const burstRatio = full.cpuMsPerImageByRole.workers / perImageMs;
      targets.push({
        name: 'lean workers, in the burst',
        measured: `worker CPU per image ${ms(full.cpuMsPerImageByRole.workers)} ms = ${burstRatio.toFixed(2)} × raw decode + inference ${ms(perImageMs)} ms`,
        goal: '<= 1.15',
        met: burstRatio <= 1.15,
      });
      targets.push({
        name: 'lean workers, alone',
        measured: `worker CPU per image ${alone.workerMs.map(ms).join(' / ')} ms = ${aloneRatios.map((x) => x.toFixed(2)).join(' / ')} × decode + inference ${alone.rawMs.map(ms).join(' / ')} ms in the same process, by round`,
        goal: '<= 1.15',
        met: aloneRatios.every((x) => x <= 1.15),
      });
      targets.push({
        name: 'lean web tier',
        measured: `web tier CPU per image ${ms(full.cpuMsPerImageByRole.web)} ms`,
        goal: '<= 4 ms',
        met: full.cpuMsPerImageByRole.web <= 4,
      });
      const idealRate = (cores * 1000) / perImageMs;
      targets.push({
        name: 'one machine',
        measured: `a burst of ${full.n} at ${full.imagesPerSecond.toFixed(1)} images/s = ${(full.imagesPerSecond / idealRate).toFixed(2)} × the ideal ${idealRate.toFixed(1)} images/s`,
        goal: '>= 0.5',
        met: full.imagesPerSecond / idealRate >= 0.5,
      });

      process.stderr.write('classic workload, workers warm...\n');
      const warm = await classicWorkload(service, SAMPLE_DIR, photos.length, 100);
      report.classicWarm = warm;
      targets.push({
        name: `classic, warm (${workers} workers)`,
        measured: `mean latency ${(warm.meanMs / 1000).toFixed(2)} s over ${warm.ok}/${warm.sent} uploads at 100 concurrent`,
        goal: '<= 1.2 s',
        met: warm.meanMs <= 1200 && warm.ok === warm.sent,
      });
    } finally {
      await service.stop();
    }

    process.stderr.write('classic workload from zero workers (the local autoscaler)...\n');
    const cold = await startServiceProcess(
      { MODEL: model, WORKERS: '', WORKERS_MIN: '0', WORKERS_MAX: String(cores), RESULT_CACHE: 'off' },
      args['data-dir'],
    );
    try {
      const fromZero = await classicWorkload(cold, SAMPLE_DIR, photos.length, 100);
      report.classicFromZero = fromZero;
      targets.push({
        name: 'classic, from zero workers',
        measured: `mean latency ${(fromZero.meanMs / 1000).toFixed(2)} s over ${fromZero.ok}/${fromZero.sent} uploads at 100 concurrent`,
        goal: '<= 2.5 s',
        met: fromZero.meanMs <= 2500 && fromZero.ok === fromZero.sent,
      });
    } finally {
      await cold.stop();
    }

    process.stderr.write('the same photos twice, the result cache on (the default)...\n');
    const cached = await startServiceProcess({ MODEL: model, WORKERS: workers }, args['data-dir']);
    try {
      await burst(
        cached,
        photos.slice(0, 8).map((p) => ({ ...p })),
        8,
      ); // warm-up: connections, JIT (these 8 will be cache hits below)
      const first = await burst(cached, photos.slice(8, 8 + n), n);
      const second = await burst(cached, photos.slice(8, 8 + n), n);
      const same = first.labels.every((label, i) => label !== undefined && label === second.labels[i]);
      report.cache = { first, second };
      out('\n## The result cache: the same photos twice\n');
      out(
        '| pass | answered | from the cache | makespan s | images/s | p50 ms | p95 ms | web CPU ms/img | endpoint CPU ms/img | workers CPU ms/img |',
      );
      out('|---|---|---|---|---|---|---|---|---|---|');
      for (const [name, b] of [
        ['first', first],
        ['second', second],
      ] as const) {
        const c = b.cpuMsPerImageByRole;
        out(
          `| ${name} | ${b.ok} | ${b.cached} | ${(b.makespanMs / 1000).toFixed(2)} | ${b.imagesPerSecond.toFixed(1)} | ${b.latency?.p50.toFixed(0)} | ${b.latency?.p95.toFixed(0)} | ${ms(c.web)} | ${ms(c.endpoint)} | ${ms(c.workers)} |`,
        );
      }
      const speedup = second.imagesPerSecond / first.imagesPerSecond;
      targets.push({
        name: 'result cache',
        measured: `second pass ${second.imagesPerSecond.toFixed(1)} images/s = ${speedup.toFixed(2)} × the first pass's ${first.imagesPerSecond.toFixed(1)}, labels identical: ${same ? 'yes' : 'NO'} (${second.cached}/${second.n} from the cache)`,
        goal: '>= 5, same labels',
        met: speedup >= 5 && same,
      });
    } finally {
      await cached.stop();
    }
    report.targets = [...(report.targets ?? []), ...targets];
    out('\n## Targets (both sides of every ratio measured in this run)\n');
    for (const target of targets) out(targetLine(target));
  }

  const dir = join(projectRoot, 'bench-results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify(report, null, 2));
  out(`\nJSON: ${file}`);
  if (args['write-docs']) {
    const date = report.at.slice(0, 10);
    const doc = await readFile(BENCHMARKS_DOC, 'utf8');
    await writeFile(BENCHMARKS_DOC, writeDatedTables(doc, date, datedTables(report)));
    out(`docs: this run's rows, dated ${date}, in ${BENCHMARKS_DOC}`);
  }
}

/**
 * Batches over the sample photos put under many keys: images/s against the decode + inference ideal
 * of this run (cores × 1000 ÷ ms per image), the time to the first result, and the web process's
 * peak memory for each size (it must not grow with the batch).
 */
async function benchBatches(
  sizes: string,
  photos: readonly Photo[],
  model: string,
  workers: string,
  raw: ModelBench,
  cores: number,
  dataParent: string | undefined,
) {
  const ideal = (cores * 1000) / (raw.decodeMs + raw.bestInferMs);
  const runs: BatchRun[] = [];
  for (const size of sizes.split(',').map(Number)) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`--batch takes sizes like 1000,10000, got ${sizes}`);
    runs.push(await batchRun(photos, size, { model, workers, ...(dataParent ? { dataParent } : {}) }));
  }
  out(`\n## Batches (model ${model}, ${workers} workers, the sample photos under many keys of one prefix)\n`);
  out(
    '| objects | done / failed | makespan s | images/s | ÷ ideal | first result s | CPU ms/img: web / endpoint / workers | cores idle | web RSS before → peak MiB |',
  );
  out('|---|---|---|---|---|---|---|---|---|');
  for (const r of runs) {
    const c = r.cpuMsPerImage;
    out(
      `| ${r.objects} | ${r.done} / ${r.failed} | ${(r.makespanMs / 1000).toFixed(1)} | ${r.imagesPerSecond.toFixed(1)} | ${(r.imagesPerSecond / ideal).toFixed(2)} | ${(r.firstResultMs / 1000).toFixed(2)} | ${ms(c.web)} / ${ms(c.endpoint)} / ${ms(c.workers)} | ${pct(r.idle)} | ${r.webBeforeMiB.toFixed(0)} → ${r.webPeakMiB.toFixed(0)} |`,
    );
  }
  out(
    `\nDecode + inference alone: ${ms(raw.decodeMs + raw.bestInferMs)} ms per image (decode ${ms(raw.decodeMs)}, inference ${ms(raw.bestInferMs)} at batch ${raw.bestBatch}).`,
  );
  const largest = runs.reduce((a, b) => (b.objects > a.objects ? b : a));
  const smallest = runs.reduce((a, b) => (b.objects < a.objects ? b : a));
  const targets: Target[] = [
    {
      name: 'batch',
      measured: `${largest.objects} objects at ${largest.imagesPerSecond.toFixed(1)} images/s = ${(largest.imagesPerSecond / ideal).toFixed(2)} × the decode + inference ideal ${ideal.toFixed(1)} images/s; first result after ${(largest.firstResultMs / 1000).toFixed(2)} s`,
      goal: '>= 0.5',
      met: largest.imagesPerSecond / ideal >= 0.5,
    },
    {
      name: 'batch memory',
      measured: `web process peak ${smallest.webPeakMiB.toFixed(0)} MiB for ${smallest.objects} objects, ${largest.webPeakMiB.toFixed(0)} MiB for ${largest.objects}`,
      goal: 'flat (within 10%)',
      met: largest.webPeakMiB <= smallest.webPeakMiB * 1.1,
    },
  ];
  for (const target of targets) out(targetLine(target));
  return { workers, idealImagesPerSecond: ideal, runs, targets };
}

/** The call floor against this version's endpoint and the baseline's, two alternating rounds each. */
async function compareEndpoints(
  baselineDir: string,
  photo: Buffer,
  dataParent: string,
): Promise<Record<string, CallCost[][]>> {
  const results: Record<string, CallCost[][]> = {};
  for (let round = 1; round <= 2; round++) {
    for (const start of [
      () => startOwnEndpoint(dataParent),
      () => startCheckoutEndpoint('baseline', baselineDir, dataParent),
    ]) {
      const endpoint = await start();
      try {
        process.stderr.write(`round ${round}: the S3/SQS calls against the ${endpoint.label} endpoint...\n`);
        (results[endpoint.label] ??= []).push(await measureCalls(endpoint.config, endpoint.pid, photo));
      } finally {
        await endpoint.stop();
      }
    }
  }
  const labels = Object.keys(results);
  out(
    `\n## Embedded endpoints compared: the calls one image needs (client / endpoint CPU ms per call; baseline = ${baselineDir})\n`,
  );
  out(`| call | per image | ${labels.flatMap((l) => [1, 2].map((r) => `${l}, round ${r}`)).join(' | ')} |`);
  out(`|---|---|${labels.flatMap(() => ['---', '---']).join('|')}|`);
  const calls = results[labels[0]!]![0]!;
  calls.forEach((c, i) => {
    const cells = labels.flatMap((l) =>
      results[l]!.map((rows) => `${ms(rows[i]!.clientMs)} / ${ms(rows[i]!.endpointMs)}`),
    );
    out(`| ${c.call.replace(/ \(\d+\.\d messages each\)/, '')} | ${c.perImage} | ${cells.join(' | ')} |`);
  });
  const perImage = (rows: CallCost[]) => {
    const client = rows.reduce((sum, c) => sum + c.perImage * c.clientMs, 0);
    const endpoint = rows.reduce((sum, c) => sum + c.perImage * c.endpointMs, 0);
    return `**${ms(client)} / ${ms(endpoint)}**`;
  };
  out(`| **per image** | | ${labels.flatMap((l) => results[l]!.map(perImage)).join(' | ')} |`);
  return results;
}

/** The floor: what the calls alone cost per image, against the overhead target. */
function printCalls(calls: readonly CallCost[]): void {
  out('\n## The floor: the S3/SQS calls one image needs, each measured alone (same SDK clients as the service)\n');
  out('| call | made by | per image | client CPU ms/call | endpoint CPU ms/call | client ms/img | endpoint ms/img |');
  out('|---|---|---|---|---|---|---|');
  let client = 0;
  let endpoint = 0;
  for (const c of calls) {
    client += c.perImage * c.clientMs;
    endpoint += c.perImage * c.endpointMs;
    out(
      `| ${c.call} | ${c.by} | ${c.perImage} | ${ms(c.clientMs)} | ${ms(c.endpointMs)} | ${ms(c.perImage * c.clientMs)} | ${ms(c.perImage * c.endpointMs)} |`,
    );
  }
  out(`| **all** | | | | | **${ms(client)}** | **${ms(endpoint)}** |`);
  out(
    `\nThe calls alone cost ${ms(client)} ms of CPU per image in the service's own processes (SDK serialization, SigV4 signing, HTTP) and ${ms(endpoint)} ms in the embedded endpoint — before any of the service's own code runs.`,
  );
}

/** `npm run bench`: resolves with the exit code. */
export async function benchMain(argv: string[]): Promise<number> {
  try {
    await main(parseBenchArgs(argv), argv);
    return 0;
  } catch (err) {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    return 1;
  }
}
