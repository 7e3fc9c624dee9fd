/**
 * The house keeps its shape: Biome's lint and format check over the whole tree, and the layering
 * of .dependency-cruiser.cjs (every floor imports only the floors below it, nothing but scripts and
 * tests imports tools/, no cycles) — the same checks a maintainer runs with `npx biome ci` and
 * `npx depcruise lib models endpoint pipeline scaling web service deploy tools scripts`. And the
 * layering rules bite: a small house with an upward import, an import of tools/ and a cycle is
 * refused by the same configuration.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { projectRoot } from '../lib/config.js';

const run = promisify(execFile);
const bin = (name: string) => join(projectRoot, 'node_modules', '.bin', name);
const FLOORS = ['lib', 'models', 'endpoint', 'pipeline', 'scaling', 'web', 'service', 'deploy', 'tools', 'scripts'];

interface Cruise {
  readonly summary: {
    readonly violations: readonly {
      readonly from: string;
      readonly to: string;
      readonly rule: { readonly name: string };
    }[];
    readonly totalCruised: number;
  };
}

/** dependency-cruiser's JSON report of `paths` under `cwd` (it exits non-zero on a violation; the report says which). */
async function cruise(cwd: string, paths: readonly string[]): Promise<Cruise> {
  const { stdout } = await run(
    bin('depcruise'),
    [...paths, '--config', '.dependency-cruiser.cjs', '--output-type', 'json'],
    {
      cwd,
      maxBuffer: 64 * 1024 * 1024,
    },
  ).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
  return JSON.parse(stdout) as Cruise;
}

test('Biome: the whole tree is linted clean and formatted', async (t) => {
  const { stdout, stderr } = await run(bin('biome'), ['ci', '--colors=off', '.'], {
    cwd: projectRoot,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((err: { stdout?: string; stderr?: string }) => ({
    stdout: err.stdout ?? '',
    stderr: err.stderr ?? 'biome failed',
  }));
  t.regex(`${stdout}${stderr}`, /Checked \d+ files/);
  t.notRegex(`${stdout}${stderr}`, /Found \d+ errors?/, `${stdout}${stderr}`.slice(0, 4000));
});

test('the layering holds: no floor imports one above it, nothing production imports tools/, no cycle', async (t) => {
  const report = await cruise(projectRoot, FLOORS);
  t.true(report.summary.totalCruised > 100, `cruised ${report.summary.totalCruised} modules`);
  t.deepEqual(
    report.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`),
    [],
  );
});

test('the layering rules bite: an upward import, an import of tools/ and a cycle are each refused', async (t) => {
  const house = await mkdtemp(join(tmpdir(), 'eir-house-'));
  t.teardown(() => rm(house, { recursive: true, force: true }));
  await copyFile(join(projectRoot, '.dependency-cruiser.cjs'), join(house, '.dependency-cruiser.cjs'));
  await copyFile(join(projectRoot, 'tsconfig.json'), join(house, 'tsconfig.json'));
  const files: Record<string, string> = {
    'lib/log.ts': "import { serve } from '../web/app.js';\nexport const log = serve;\n",
    'web/app.ts': 'export const serve = 1;\n',
    'pipeline/store.ts': "import { bench } from '../tools/bench.js';\nexport const store = bench;\n",
    'tools/bench.ts': 'export const bench = 1;\n',
    'scaling/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
    'scaling/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
  };
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(house, path)), { recursive: true });
    await writeFile(join(house, path), text);
  }
  const report = await cruise(house, ['lib', 'web', 'pipeline', 'tools', 'scaling']);
  const found = new Set(report.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`));
  t.true(found.has('lib-is-the-ground-floor: lib/log.ts → web/app.ts'), [...found].join('\n'));
  t.true(found.has('pipeline-below-web: pipeline/store.ts → tools/bench.ts'), [...found].join('\n'));
  t.true(
    [...found].some((v) => v.startsWith('no-circular: scaling/')),
    [...found].join('\n'),
  );
});
