/**
 * What one `npm run bench` run measured (the JSON it writes to bench-results/), its targets, and
 * the same numbers as the rows of docs/benchmarks.md's dated tables (docs.ts writes them). One
 * table per kind of measurement; the columns here are the tables' columns after `date`.
 */

import type { Distribution } from '../../lib/stats.js';
import type { BatchRun } from './batch.js';
import type { CallCost } from './calls.js';
import type { DatedTable } from './docs.js';
import type { ModelBench } from './models.js';
import type { BurstResult } from './pipeline.js';
import type { WorkerAlone } from './worker-alone.js';

/** A burst with what the run derives from it against the model measured alone. */
export interface BurstRow extends BurstResult {
  readonly efficiency: number;
  readonly efficiencyWithDecode: number;
  readonly idealMs: number;
  readonly overheadCpuMsPerImage: number;
  readonly ownOverheadCpuMsPerImage: number;
}

export interface ClassicResult {
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  /** Answered, each with its own photo's name. */
  readonly ok: number;
  readonly sent: number;
}

/** One goal of the product, met or not by this run (both sides of every ratio from this run). */
export interface Target {
  readonly name: string;
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean;
}

export interface BenchReport {
  /** ISO time the run started. */
  readonly at: string;
  readonly cores: number;
  /** The CPU's model name, as the OS reports it. */
  readonly cpu: string;
  readonly node: string;
  readonly model: string;
  /** The command-line options of the run, as given. */
  readonly options: readonly string[];
  models?: readonly ModelBench[];
  endpoints?: Readonly<Record<string, CallCost[][]>>;
  workerAlone?: WorkerAlone;
  calls?: readonly CallCost[];
  pipeline?: {
    readonly model: string;
    readonly workers: number;
    readonly dataParent: string;
    readonly raw: ModelBench;
    readonly bursts: readonly BurstRow[];
  };
  classicWarm?: ClassicResult;
  classicFromZero?: ClassicResult;
  cache?: { readonly first: BurstResult; readonly second: BurstResult };
  batches?: { readonly workers: string; readonly idealImagesPerSecond: number; readonly runs: readonly BatchRun[] };
  targets?: readonly Target[];
}

/** The line the bench prints for a target. */
export const targetLine = (t: Target) => `target ${t.name}: ${t.measured} (goal ${t.goal})`;

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const ms = (x: number) => x.toFixed(1);
const s = (msValue: number) => (msValue / 1000).toFixed(2);
const latency = (d: Distribution | undefined, keys: readonly ('p50' | 'p95' | 'p99')[]) =>
  d ? keys.map((k) => d[k].toFixed(0)).join(' / ') : '—';

/** The tables of docs/benchmarks.md that `npm run bench` writes, in the order the page shows them. */
export const BENCH_TABLES = {
  runs: ['cores', 'CPU', 'Node', 'model', 'options'],
  models: [
    'model',
    'backend',
    'resize',
    'top-1',
    'top-5',
    'decode ms/img',
    'infer ms/img, batch 1',
    'best batch → infer ms/img',
    'images/s per core (decode + infer)',
  ],
  bursts: [
    'model',
    'workers',
    'burst',
    'answered',
    'top-1',
    'makespan s',
    'ideal s',
    'makespan ÷ ideal',
    'images/s',
    'p50 / p95 / p99 ms',
  ],
  cpu: ['model', 'burst', 'web tier', 'embedded endpoint', 'workers', 'decode + inference alone'],
  'worker-alone': ['model', 'round', 'decode + inference alone, CPU ms/img', 'the whole worker, CPU ms/img', 'ratio'],
  calls: ['call', 'made by', 'per image', 'client CPU ms/img', 'endpoint CPU ms/img'],
  cache: [
    'model',
    'pass',
    'answered',
    'from the cache',
    'makespan s',
    'images/s',
    'p50 / p95 ms',
    'CPU ms/img: web / endpoint / workers',
  ],
  classic: ['model', 'workers', 'answered / sent', 'mean latency s', 'p50 / p95 s'],
  batches: [
    'model',
    'workers',
    'objects',
    'done / failed',
    'makespan s',
    'images/s',
    '÷ decode + inference ideal',
    'first result s',
    'web peak RSS MiB',
  ],
  targets: ['target', 'goal', 'measured', 'met'],
  endpoints: [
    'call',
    'per image',
    'this version, round 1',
    'this version, round 2',
    'baseline, round 1',
    'baseline, round 2',
  ],
} as const satisfies Record<string, readonly string[]>;

export type TableId = keyof typeof BENCH_TABLES;

/** Every table's id and columns (for checking a document before a run). */
export const benchTableShapes = (): { id: TableId; columns: readonly string[] }[] =>
  Object.entries(BENCH_TABLES).map(([id, columns]) => ({ id: id as TableId, columns }));

/** This run's rows for each table (none for what it did not measure). */
export function datedTables(report: BenchReport): DatedTable[] {
  const rows: Record<TableId, string[][]> = {
    runs: [
      [
        String(report.cores),
        report.cpu,
        report.node,
        report.model,
        report.options.length ? report.options.join(' ') : '(defaults)',
      ],
    ],
    models: (report.models ?? []).map((m) => [
      m.id,
      m.backend,
      m.resize,
      pct(m.top1),
      pct(m.top5),
      ms(m.decodeMs),
      ms(m.inferMs[1]!),
      `${m.bestBatch} → ${ms(m.bestInferMs)}`,
      (1000 / (m.decodeMs + m.bestInferMs)).toFixed(1),
    ]),
    bursts: [],
    cpu: [],
    'worker-alone': [],
    calls: [],
    cache: [],
    classic: [],
    batches: (report.batches?.runs ?? []).map((r) => [
      report.model,
      report.batches!.workers,
      String(r.objects),
      `${r.done} / ${r.failed}`,
      s(r.makespanMs),
      r.imagesPerSecond.toFixed(1),
      (r.imagesPerSecond / report.batches!.idealImagesPerSecond).toFixed(2),
      s(r.firstResultMs),
      r.webPeakMiB.toFixed(0),
    ]),
    targets: (report.targets ?? []).map((t) => [t.name, t.goal, t.measured, t.met ? 'met' : 'missed']),
    endpoints: [],
  };
  const { pipeline } = report;
  if (pipeline) {
    const raw = pipeline.raw.decodeMs + pipeline.raw.bestInferMs;
    for (const b of pipeline.bursts) {
      rows.bursts.push([
        pipeline.model,
        String(pipeline.workers),
        String(b.n),
        String(b.ok),
        pct(b.correct / b.n),
        s(b.makespanMs),
        s(b.idealMs),
        (b.makespanMs / b.idealMs).toFixed(2),
        b.imagesPerSecond.toFixed(1),
        latency(b.latency, ['p50', 'p95', 'p99']),
      ]);
      const c = b.cpuMsPerImageByRole;
      rows.cpu.push([pipeline.model, String(b.n), ms(c.web), ms(c.endpoint), ms(c.workers), ms(raw)]);
    }
  }
  const alone = report.workerAlone;
  if (alone)
    for (const [i, r] of alone.rawMs.entries())
      rows['worker-alone'].push([
        report.model,
        String(i + 1),
        ms(r),
        ms(alone.workerMs[i]!),
        (alone.workerMs[i]! / r).toFixed(2),
      ]);
  if (report.calls) {
    let client = 0;
    let endpoint = 0;
    for (const c of report.calls) {
      client += c.perImage * c.clientMs;
      endpoint += c.perImage * c.endpointMs;
      rows.calls.push([c.call, c.by, String(c.perImage), ms(c.perImage * c.clientMs), ms(c.perImage * c.endpointMs)]);
    }
    rows.calls.push(['**all**', '', '', `**${ms(client)}**`, `**${ms(endpoint)}**`]);
  }
  if (report.cache)
    for (const [pass, b] of [
      ['first', report.cache.first],
      ['second', report.cache.second],
    ] as const) {
      const c = b.cpuMsPerImageByRole;
      rows.cache.push([
        report.model,
        pass,
        String(b.ok),
        String(b.cached),
        s(b.makespanMs),
        b.imagesPerSecond.toFixed(1),
        latency(b.latency, ['p50', 'p95']),
        `${ms(c.web)} / ${ms(c.endpoint)} / ${ms(c.workers)}`,
      ]);
    }
  const classic = (workers: string, r: ClassicResult) => [
    report.model,
    workers,
    `${r.ok}/${r.sent}`,
    s(r.meanMs),
    `${s(r.p50Ms)} / ${s(r.p95Ms)}`,
  ];
  if (report.classicWarm) rows.classic.push(classic(`${pipeline?.workers ?? '?'} (warm)`, report.classicWarm));
  if (report.classicFromZero) rows.classic.push(classic(`0..${report.cores} (from zero)`, report.classicFromZero));
  if (report.endpoints) rows.endpoints = endpointRows(report.endpoints);
  return benchTableShapes().map(({ id, columns }) => ({ id, columns, rows: rows[id] }));
}

/** The call floor against this version's endpoint and the baseline's, two rounds each. */
function endpointRows(results: Readonly<Record<string, CallCost[][]>>): string[][] {
  const rounds = [...Object.values(results)].flatMap((perRound) => perRound.slice(0, 2));
  const calls = rounds[0] ?? [];
  const pair = (c: CallCost | undefined) => (c ? `${ms(c.clientMs)} / ${ms(c.endpointMs)}` : '—');
  const rows = calls.map((c, i) => [
    c.call.replace(/ \(\d+\.\d messages each\)/, ''),
    String(c.perImage),
    ...rounds.map((round) => pair(round[i])),
  ]);
  const perImage = (round: readonly CallCost[]) => {
    const client = round.reduce((sum, c) => sum + c.perImage * c.clientMs, 0);
    const endpoint = round.reduce((sum, c) => sum + c.perImage * c.endpointMs, 0);
    return `**${ms(client)} / ${ms(endpoint)}**`;
  };
  if (calls.length) rows.push(['**per image**', '', ...rounds.map(perImage)]);
  // Four round columns: this version's two, then the baseline's two.
  return rows.map((row) => [...row, ...Array(Math.max(0, 6 - row.length)).fill('—')].slice(0, 6));
}
