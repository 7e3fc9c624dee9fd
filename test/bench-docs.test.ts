/**
 * `npm run bench -- --write-docs`: a run's rows land in docs/benchmarks.md's dated tables, dated
 * today, beside the rows of earlier dates; writing the same day again replaces that day's rows
 * (the same run twice gives the same page); tables the run did not measure and the prose around
 * them stay as they are. And the committed page has every table the bench writes, with its columns.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { projectRoot } from '../lib/config.js';
import { checkDatedTables, type DatedTable, writeDatedTables } from '../tools/bench/docs.js';
import { type BenchReport, benchTableShapes, datedTables, targetLine } from '../tools/bench/report.js';

const PAGE = [
  '# Benchmarks',
  '',
  'Prose before the tables stays.',
  '',
  '<!-- bench:models -->',
  '| date | model | top-1 |',
  '|---|---|---|',
  '| 2026-11-27 | v2 int8 | 76.4% |',
  '| 2026-12-02 (4 runs) | v1 0.75 | 84.0% |',
  '<!-- /bench:models -->',
  '',
  'A note between the tables.',
  '',
  '<!-- bench:cpu -->',
  '| date | burst | workers ms |',
  '|---|---|---|',
  '| 2026-12-02 | 100 | 27.4 |',
  '<!-- /bench:cpu -->',
  '',
  'The end.',
  '',
].join('\n');

const models = (rows: string[][]): DatedTable => ({ id: 'models', columns: ['model', 'top-1'], rows });
const cpu = (rows: string[][]): DatedTable => ({ id: 'cpu', columns: ['burst', 'workers ms'], rows });

/** The data rows of table `id` in `doc`. */
function rowsOf(doc: string, id: string): string[] {
  const lines = doc.split('\n');
  const start = lines.indexOf(`<!-- bench:${id} -->`);
  const end = lines.indexOf(`<!-- /bench:${id} -->`);
  return lines.slice(start + 3, end);
}

test("a run's rows are added under today's date; earlier dates, other tables and the prose stay", (t) => {
  const page = writeDatedTables(PAGE, '2026-12-09', [models([['v1 0.75', '84.4%']]), cpu([])]);
  t.deepEqual(rowsOf(page, 'models'), [
    '| 2026-11-27 | v2 int8 | 76.4% |',
    '| 2026-12-02 (4 runs) | v1 0.75 | 84.0% |',
    '| 2026-12-09 | v1 0.75 | 84.4% |',
  ]);
  t.deepEqual(rowsOf(page, 'cpu'), ['| 2026-12-02 | 100 | 27.4 |']);
  const outside = (doc: string) => doc.split('\n').filter((line) => !line.startsWith('|'));
  t.deepEqual(outside(page), outside(PAGE));
});

test('the same date again replaces its rows: writing a run twice gives the same page', (t) => {
  const run = [models([['v1 0.75', '84.4%']]), cpu([['250', '20.2']])];
  const once = writeDatedTables(PAGE, '2026-12-09', run);
  t.is(writeDatedTables(once, '2026-12-09', run), once);
  const again = writeDatedTables(once, '2026-12-09', [models([['v1 0.75', '83.9%']]), cpu([])]);
  t.deepEqual(rowsOf(again, 'models').slice(2), ['| 2026-12-09 | v1 0.75 | 83.9% |']);
  t.deepEqual(rowsOf(again, 'cpu'), ['| 2026-12-02 | 100 | 27.4 |', '| 2026-12-09 | 250 | 20.2 |']);
  // A row dated with a note ("2026-12-02 (4 runs)") belongs to its date too.
  const replaced = writeDatedTables(PAGE, '2026-12-02', [models([['v1 0.75', '85.0%']])]);
  t.deepEqual(rowsOf(replaced, 'models'), ['| 2026-11-27 | v2 int8 | 76.4% |', '| 2026-12-02 | v1 0.75 | 85.0% |']);
});

test('a cell holding a pipe or a line break stays one cell', (t) => {
  const page = writeDatedTables(PAGE, '2026-12-09', [models([['a | b', 'x\ny']])]);
  t.is(rowsOf(page, 'models').at(-1), '| 2026-12-09 | a \\| b | x y |');
  t.is(writeDatedTables(page, '2026-12-09', [models([['a | b', 'x\ny']])]), page);
});

test('a page the bench cannot write is refused, naming the table and what is wrong', (t) => {
  const noEnd = PAGE.replace('<!-- /bench:cpu -->', '');
  t.throws(() => writeDatedTables(noEnd, '2026-12-09', [cpu([['100', '1']])]), {
    message: /no table "cpu".*<!-- \/bench:cpu -->/,
  });
  t.throws(() => writeDatedTables(PAGE, '2026-12-09', [{ id: 'models', columns: ['model'], rows: [['x']] }]), {
    message: /table "models" has the columns \| date \| model \| top-1 \| but the bench writes \| date \| model \|/,
  });
  t.throws(() => writeDatedTables(PAGE, '2026-12-09', [models([['only one cell']])]), {
    message: /a row of table "models" has 1 cells for its 2 columns/,
  });
  t.throws(() => writeDatedTables(PAGE, '9 December', [models([['a', 'b']])]), { message: /YYYY-MM-DD/ });
  // A table this run did not measure need not be on the page.
  t.notThrows(() => writeDatedTables(noEnd, '2026-12-09', [cpu([]), models([['a', 'b']])]));
});

const burst = (n: number, webMs: number) => ({
  n,
  ok: n,
  correct: Math.round(n * 0.84),
  makespanMs: n * 20,
  imagesPerSecond: 50,
  latency: { count: n, min: 100, max: 2500, mean: 1200, p50: 1100, p90: 2000, p95: 2200, p99: 2400 },
  stages: { upload: 1 },
  serviceCpuMsPerImage: 34,
  cpuMsPerImageByRole: { web: webMs, endpoint: 6.4, workers: 20.2 },
  labels: [],
  cached: 0,
});

const REPORT: BenchReport = {
  at: '2026-12-09T08:00:00.000Z',
  cores: 2,
  cpu: 'AMD EPYC',
  node: 'v24.22.3',
  model: 'mobilenet-v1-0.75-224-onnx',
  options: ['--n', '250'],
  models: [
    {
      id: 'mobilenet-v1-0.75-224-onnx',
      backend: 'onnxruntime-node (converted from tfjs)',
      resize: 'fill',
      top1: 0.84,
      top5: 0.96,
      decodeMs: 6.2,
      inferMs: { 1: 6.4, 2: 5.5 },
      bestBatch: 2,
      bestInferMs: 5.5,
    },
  ],
  calls: [
    { call: 'PutObject, the upload (98 KiB)', by: 'web', perImage: 1, clientMs: 1.6, endpointMs: 3 },
    {
      call: 'ReceiveMessage + DeleteMessageBatch (9.8 messages each)',
      by: 'web + worker',
      perImage: 0.2,
      clientMs: 3,
      endpointMs: 2,
    },
  ],
  endpoints: {
    'this version': [
      [{ call: 'GetObject, the upload', by: 'worker', perImage: 1, clientMs: 2.4, endpointMs: 0.8 }],
      [{ call: 'GetObject, the upload', by: 'worker', perImage: 1, clientMs: 2.5, endpointMs: 1.1 }],
    ],
    baseline: [
      [{ call: 'GetObject, the upload', by: 'worker', perImage: 1, clientMs: 2.2, endpointMs: 2.1 }],
      [{ call: 'GetObject, the upload', by: 'worker', perImage: 1, clientMs: 2.3, endpointMs: 2 }],
    ],
  },
  targets: [{ name: 'lean web tier', goal: '<= 4 ms', measured: 'web tier CPU per image 6.8 ms', met: false }],
};

test("a report's numbers become rows of the tables it measured, with the bench's own formatting", (t) => {
  const report: BenchReport = {
    ...REPORT,
    pipeline: {
      model: REPORT.model,
      workers: 2,
      dataParent: '/tmp',
      raw: REPORT.models![0]!,
      bursts: [100, 250].map((n) => ({
        ...burst(n, n === 100 ? 11.2 : 6.8),
        efficiency: 0.1,
        efficiencyWithDecode: 0.3,
        idealMs: (n * 11.7) / 2,
        overheadCpuMsPerImage: 22,
        ownOverheadCpuMsPerImage: 15,
      })),
    },
  };
  const tables = Object.fromEntries(datedTables(report).map((table) => [table.id, table]));
  t.deepEqual(tables.runs!.rows, [['2', 'AMD EPYC', 'v24.22.3', 'mobilenet-v1-0.75-224-onnx', '--n 250']]);
  t.deepEqual(tables.models!.rows, [
    [
      'mobilenet-v1-0.75-224-onnx',
      'onnxruntime-node (converted from tfjs)',
      'fill',
      '84.0%',
      '96.0%',
      '6.2',
      '6.4',
      '2 → 5.5',
      (1000 / 11.7).toFixed(1),
    ],
  ]);
  t.deepEqual(
    tables.cpu!.rows.map((row) => row.slice(1)),
    [
      ['100', '11.2', '6.4', '20.2', '11.7'],
      ['250', '6.8', '6.4', '20.2', '11.7'],
    ],
  );
  t.deepEqual(tables.bursts!.rows[1]!.slice(2), [
    '250',
    '250',
    '84.0%',
    '5.00',
    '1.46',
    '3.42',
    '50.0',
    '1100 / 2200 / 2400',
  ]);
  t.deepEqual(tables.calls!.rows.at(-1), ['**all**', '', '', '**2.2**', '**3.4**']);
  t.deepEqual(tables.endpoints!.rows[0], [
    'GetObject, the upload',
    '1',
    '2.4 / 0.8',
    '2.5 / 1.1',
    '2.2 / 2.1',
    '2.3 / 2.0',
  ]);
  t.deepEqual(tables.targets!.rows, [['lean web tier', '<= 4 ms', 'web tier CPU per image 6.8 ms', 'missed']]);
  t.is(targetLine(report.targets![0]!), 'target lean web tier: web tier CPU per image 6.8 ms (goal <= 4 ms)');
  // Not measured in this run: no rows, so the page keeps those tables as they are.
  t.deepEqual([tables.cache!.rows, tables.classic!.rows, tables['worker-alone']!.rows], [[], [], []]);
  for (const table of Object.values(tables))
    for (const row of table.rows) t.is(row.length, table.columns.length, `${table.id}: ${row.join(' | ')}`);
});

test('docs/benchmarks.md has every table the bench writes, with its columns, and takes a run', async (t) => {
  const page = await readFile(join(projectRoot, 'docs', 'benchmarks.md'), 'utf8');
  t.notThrows(() => checkDatedTables(page, benchTableShapes()));
  const written = writeDatedTables(page, '2099-01-01', datedTables(REPORT));
  t.true(written.includes('| 2099-01-01 | mobilenet-v1-0.75-224-onnx | onnxruntime-node (converted from tfjs) |'));
  t.is(writeDatedTables(written, '2099-01-01', datedTables(REPORT)), written);
  t.is(
    written.split('\n').length,
    page.split('\n').length + datedTables(REPORT).reduce((n, x) => n + x.rows.length, 0),
  );
});
