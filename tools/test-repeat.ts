/**
 * `npm run test:repeat -- N [--busy]`: the whole suite (`npm test`, exactly as CI runs it) N times
 * in a row on this checkout, one line per run and a summary — how many passed and failed, and each
 * failing test by name with how many runs it failed in. A test that fails in any run is a bug to
 * find, not bad luck. `--busy` keeps one core busy with a spinning process beside the suite (your
 * machine shares its cores; CI's does not), which is how timing assumptions show up. Each run's full
 * output is kept in a folder the summary names.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const USAGE = 'usage: npm run test:repeat -- N [--busy]';

interface Run {
  readonly passed: boolean;
  readonly seconds: number;
  readonly tests: number | undefined;
  /** Failing tests by name (`file › title`), or what went wrong before any test could run. */
  readonly failures: readonly string[];
}

/** The failures an ava run names: `✘ [fail]: file › title message`, timeouts and uncaught errors. */
export function failuresOf(output: string): string[] {
  const names = new Set<string>();
  for (const line of output.split('\n')) {
    const match = /^\s*✘ (?:\[fail\]: )?(.+?)(?: Rejected promise returned by test| Error thrown in test|$)/.exec(line);
    if (match) names.add(match[1]!.replace(/\s+\(\d+(?:\.\d+)?m?s\)$/, '').trim());
  }
  return [...names];
}

async function runOnce(index: number, logDir: string): Promise<Run> {
  const started = performance.now();
  const logPath = join(logDir, `run-${index}.log`);
  const log = createWriteStream(logPath);
  const child = spawn('npm', ['test'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  await new Promise<void>((resolve) => log.end(resolve));
  const output = await readFile(logPath, 'utf8');
  const seconds = (performance.now() - started) / 1000;
  const tests = Number(/(\d+) tests? passed/.exec(output)?.[1] ?? NaN);
  const failures = failuresOf(output);
  if (code !== 0 && failures.length === 0)
    failures.push(
      /error TS\d+/.test(output) ? 'the type-check (tsc) failed' : `npm test exited with ${code} (see the log)`,
    );
  return { passed: code === 0, seconds, tests: Number.isNaN(tests) ? undefined : tests, failures };
}

/** A process that keeps one core busy until it is killed. */
function spin(): () => void {
  const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  return () => child.kill('SIGKILL');
}

export async function testRepeatMain(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { busy: { type: 'boolean', default: false } },
  });
  const n = Number(positionals[0] ?? NaN);
  if (!Number.isInteger(n) || n < 1 || positionals.length > 1) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(2);
  }
  const logDir = await mkdtemp(join(tmpdir(), 'eir-test-repeat-'));
  process.stdout.write(
    `running npm test ${n} time(s)${values.busy ? ' with one core kept busy beside it' : ''}; logs in ${logDir}\n`,
  );
  const stopSpinning = values.busy ? spin() : undefined;
  const runs: Run[] = [];
  try {
    for (let i = 1; i <= n; i++) {
      const run = await runOnce(i, logDir);
      runs.push(run);
      const what = run.passed ? `passed (${run.tests ?? '?'} tests)` : `FAILED: ${run.failures.join('; ')}`;
      process.stdout.write(`run ${i}/${n}: ${what} in ${run.seconds.toFixed(0)} s\n`);
    }
  } finally {
    stopSpinning?.();
  }
  const failed = runs.filter((r) => !r.passed).length;
  process.stdout.write(`\n${n - failed} passed, ${failed} failed\n`);
  const counts = new Map<string, number>();
  for (const run of runs) for (const name of run.failures) counts.set(name, (counts.get(name) ?? 0) + 1);
  for (const [name, times] of [...counts].sort((a, b) => b[1] - a[1]))
    process.stdout.write(`  failed in ${times} of ${n}: ${name}\n`);
  process.exit(failed === 0 ? 0 : 1);
}
