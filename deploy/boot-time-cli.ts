/**
 * `npm run deploy:boot-time [-- --runs 5] [--archive FILE]`: how long a release takes from the start
 * of its unpack to its first answer — unpacked into an empty directory, started with its own Node in
 * a network namespace with loopback only, one photo classified over HTTP (deploy/hermetic-boot.ts).
 * Each run is cold for the service (a fresh directory, HOME and TMPDIR: tsx compiles everything
 * again, the model is loaded again), as on a new instance. Prints each run and the median, and
 * writes them to bench-results/boot-time-<date>.json. Run it alone, under the shared lock:
 * `flock /tmp/eir-bench.lock npm run deploy:boot-time`.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { projectRoot } from '../lib/config.js';
import { createLogger } from '../lib/log.js';
import { DEFAULT_RELEASE } from './config.js';
import { hermeticBoot, networkNamespace } from './hermetic-boot.js';
import { readReleaseManifest } from './release.js';

const log = createLogger('deploy.boot-time');
const PHOTO = resolve(projectRoot, '..', 'shared', 'datasets', 'imagenet-sample-250', 'n01440764_tench.JPEG');

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

try {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '5' }, archive: { type: 'string' }, photo: { type: 'string' } },
    strict: true,
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 50) throw new TypeError(`--runs must be 1..50, got ${values.runs}`);
  const archive = resolve(projectRoot, values.archive ?? DEFAULT_RELEASE);
  const release = await readReleaseManifest(archive);
  if (release?.model.manifest == null)
    throw new TypeError(`${archive} is not a release carrying its model: build one with npm run deploy:package`);
  const namespace = await networkNamespace();
  if ('unavailable' in namespace) throw new TypeError(namespace.unavailable);

  const results: { unpackedMs: number; listeningMs: number; answeredMs: number }[] = [];
  for (let i = 1; i <= runs; i++) {
    const dir = await mkdtemp(join(tmpdir(), 'eir-boot-time-'));
    try {
      const photo = join(dir, 'photo.jpg');
      await copyFile(values.photo ?? PHOTO, photo);
      const boot = await hermeticBoot({
        archive,
        dir: join(dir, 'boot'),
        photo,
        model: release.model.manifest,
        namespace,
      });
      if (boot.code !== 0 || boot.answeredMs === null || boot.listeningMs === null) {
        throw new Error(`run ${i} failed: ${JSON.stringify(boot.probe).slice(0, 2000)} ${boot.stderr}`);
      }
      results.push({ unpackedMs: boot.unpackedMs, listeningMs: boot.listeningMs, answeredMs: boot.answeredMs });
      process.stdout.write(
        `run ${i}: unpacked ${(boot.unpackedMs / 1000).toFixed(2)} s, listening ${(boot.listeningMs / 1000).toFixed(2)} s, first answer ${(boot.answeredMs / 1000).toFixed(2)} s (${boot.probe.body})\n`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const summary = {
    date: new Date().toISOString(),
    archive,
    release,
    machine: { cpus: availableParallelism(), model: cpus()[0]?.model ?? null },
    runs: results,
    median: {
      unpackedMs: median(results.map((r) => r.unpackedMs)),
      listeningMs: median(results.map((r) => r.listeningMs)),
      answeredMs: median(results.map((r) => r.answeredMs)),
    },
  };
  const dir = resolve(projectRoot, 'bench-results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `boot-time-${summary.date.slice(0, 10)}.json`);
  await writeFile(file, `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(
    `median of ${runs}: unpacked ${(summary.median.unpackedMs / 1000).toFixed(2)} s, web tier listening ${(summary.median.listeningMs / 1000).toFixed(2)} s, first answer ${(summary.median.answeredMs / 1000).toFixed(2)} s after the unpack started (${file})\n`,
  );
} catch (err) {
  log.error('boot time not measured', { error: err });
  process.exitCode = 1;
}
