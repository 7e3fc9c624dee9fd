/**
 * The release artifact (`npm run deploy:package`): the app as instances install it — the project's
 * files (what git tracks or would track: .gitignore keeps node_modules, data and test outputs out)
 * without what only development needs (tests, this folder, CI), with its lockfile and .npmrc, as a
 * gzipped tar. Instances unpack it and run `npm ci --omit=dev`.
 *
 * The archive is deterministic (sorted entries, fixed owner and time), so the same sources give the
 * same bytes, the same CDK asset hash, and no instance replacement on a deploy that changes nothing.
 *
 * One adjustment: every script starts through scripts/lib/preload.mjs, which loads tsx, a
 * devDependency that `--omit=dev` would leave out. The artifact's package.json and lockfile list it
 * (and what it depends on) as a production dependency, same versions; nothing else changes.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { projectRoot } from '../lib/config.js';
import { DEFAULT_RELEASE } from './config.js';
import { DeployError } from './errors.js';

const run = promisify(execFile);

/** Top-level folders and files that stay out of the artifact: development only, or generated. */
export const EXCLUDED_TOP_LEVEL: readonly string[] = [
  'test',
  'deploy',
  '.ci',
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

/** Files an install cannot do without. */
const REQUIRED = ['package.json', 'package-lock.json', '.npmrc'];

/** Development dependencies that the running service loads (preload.mjs imports tsx). */
export const RUNTIME_DEV_DEPENDENCIES: readonly string[] = ['tsx'];

export interface ReleaseInfo {
  readonly file: string;
  readonly files: number;
  readonly bytes: number;
  /** sha256 of the archive. */
  readonly sha256: string;
  readonly commit: string | undefined;
}

export interface ReleaseOptions {
  /** The project to package (default: this one). */
  readonly root?: string;
  /** Where to write the archive (default: .tmp/release/image-recognition.tgz). */
  readonly out?: string;
}

/** Builds the artifact; returns where it is and what it holds. */
export async function buildRelease(options: ReleaseOptions = {}): Promise<ReleaseInfo> {
  const root = options.root ?? projectRoot;
  const out = resolve(root, options.out ?? DEFAULT_RELEASE);
  const paths = await releaseFiles(root);
  for (const required of REQUIRED) {
    if (!paths.includes(required))
      throw new DeployError('RELEASE', `${required} is missing from ${root}: an install needs it`, {
        root,
        file: required,
      });
  }
  const commit = await gitCommit(root);
  const entries: TarEntry[] = [];
  const pkg = JSON.parse(await readFile(resolve(root, 'package.json'), 'utf8')) as PackageJson;
  const lock = JSON.parse(await readFile(resolve(root, 'package-lock.json'), 'utf8')) as PackageLock;
  promoteToProduction(pkg, lock, RUNTIME_DEV_DEPENDENCIES);
  for (const path of paths) {
    if (path === 'package.json') entries.push({ path, body: json(pkg), executable: false });
    else if (path === 'package-lock.json') entries.push({ path, body: json(lock), executable: false });
    else {
      const stat = await lstat(resolve(root, path));
      entries.push({ path, body: await readFile(resolve(root, path)), executable: (stat.mode & 0o111) !== 0 });
    }
  }
  // What was packaged, from which commit (uncommitted changes make it `dirty`): no time, so the bytes stay the same.
  entries.push({
    path: 'release.json',
    body: json({
      name: pkg.name,
      version: pkg.version,
      commit: commit?.id ?? null,
      dirty: commit?.dirty ?? null,
      files: paths.length,
    }),
    executable: false,
  });
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const archive = gzipSync(tar(entries), { level: 9 });
  await mkdir(dirname(out), { recursive: true });
  const temp = `${out}.${process.pid}.tmp`;
  await writeFile(temp, archive);
  await rename(temp, out);
  return {
    file: out,
    files: entries.length,
    bytes: archive.length,
    sha256: createHash('sha256').update(archive).digest('hex'),
    commit: commit?.id,
  };
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

const json = (value: unknown): Buffer => Buffer.from(`${JSON.stringify(value, null, 2)}\n`);

// ---------------------------------------------------------------------------------------------
// Development dependencies the service runs with → production dependencies of the artifact
// ---------------------------------------------------------------------------------------------

interface PackageJson {
  name?: string;
  version?: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

interface LockEntry {
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

interface PackageLock {
  lockfileVersion?: number;
  packages?: Record<string, LockEntry>;
}

/**
 * Moves `names` from devDependencies to dependencies in package.json and the lockfile's root entry,
 * and clears the dev flag of every lockfile package they bring in (npm's flags: optional stays
 * optional). A name already a production dependency is left alone.
 */
export function promoteToProduction(pkg: PackageJson, lock: PackageLock, names: readonly string[]): string[] {
  const packages = lock.packages;
  const rootEntry = packages?.[''];
  if (lock.lockfileVersion === undefined || lock.lockfileVersion < 2 || !packages || !rootEntry) {
    throw new DeployError(
      'RELEASE',
      'package-lock.json is not a lockfile v2 or v3 (npm 7 or newer): re-create it with npm install',
      { lockfileVersion: lock.lockfileVersion ?? null },
    );
  }
  const promoted: string[] = [];
  for (const name of names) {
    const spec = pkg.devDependencies?.[name];
    if (pkg.dependencies?.[name] !== undefined || spec === undefined) continue;
    for (const manifest of [pkg, rootEntry]) {
      manifest.dependencies = sortedWith(manifest.dependencies, name, spec);
      if (manifest.devDependencies) {
        const { [name]: _moved, ...rest } = manifest.devDependencies;
        manifest.devDependencies = rest;
      }
    }
    // Everything it pulls in, the way npm resolves it: the nearest node_modules up the tree.
    const queue = [`node_modules/${name}`];
    const seen = new Set<string>();
    while (queue.length > 0) {
      const path = queue.shift()!;
      const entry = packages[path];
      if (entry === undefined || seen.has(path)) continue;
      seen.add(path);
      if (!entry.dev && !entry.devOptional) continue; // already in the production tree, and so is all below it
      if (entry.devOptional) entry.optional = true;
      delete entry.dev;
      delete entry.devOptional;
      promoted.push(path);
      for (const dep of [...Object.keys(entry.dependencies ?? {}), ...Object.keys(entry.optionalDependencies ?? {})]) {
        const found = resolveInLock(packages, path, dep);
        if (found !== undefined) queue.push(found);
      }
    }
  }
  return promoted;
}

function sortedWith(deps: Record<string, string> | undefined, name: string, spec: string): Record<string, string> {
  return Object.fromEntries(Object.entries({ ...deps, [name]: spec }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Where `dep` required from the package at `from` lives: its own node_modules, then each parent's. */
function resolveInLock(packages: Record<string, LockEntry>, from: string, dep: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = `${base}/node_modules/${dep}`;
    if (packages[candidate] !== undefined) return candidate;
    const at = base.lastIndexOf('/node_modules/');
    if (at < 0) break;
    base = base.slice(0, at);
  }
  return packages[`node_modules/${dep}`] !== undefined ? `node_modules/${dep}` : undefined;
}

// ---------------------------------------------------------------------------------------------
// A deterministic ustar archive
// ---------------------------------------------------------------------------------------------

interface TarEntry {
  readonly path: string;
  readonly body: Buffer;
  readonly executable: boolean;
}

/** 1980-01-01, as zip archives date their entries: a constant, so equal inputs give equal bytes. */
const ENTRY_TIME = 315_532_800;

function tar(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    blocks.push(header(entry));
    blocks.push(entry.body);
    const pad = (512 - (entry.body.length % 512)) % 512;
    if (pad > 0) blocks.push(Buffer.alloc(pad));
  }
  blocks.push(Buffer.alloc(1024)); // the end: two empty blocks
  return Buffer.concat(blocks);
}

function header(entry: TarEntry): Buffer {
  const { name, prefix } = splitPath(entry.path);
  const block = Buffer.alloc(512);
  const put = (text: string, offset: number, length: number) => {
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length > length)
      throw new DeployError('RELEASE', `tar header field too long for ${entry.path}`, { path: entry.path });
    bytes.copy(block, offset);
  };
  const octal = (value: number, offset: number, length: number) =>
    put(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length);
  put(name, 0, 100);
  octal(entry.executable ? 0o755 : 0o644, 100, 8);
  octal(0, 108, 8); // uid
  octal(0, 116, 8); // gid
  octal(entry.body.length, 124, 12);
  octal(ENTRY_TIME, 136, 12);
  block.fill(0x20, 148, 156); // the checksum counts itself as spaces
  put('0', 156, 1); // a regular file
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put('root', 265, 32);
  put('root', 297, 32);
  put(prefix, 345, 155);
  let sum = 0;
  for (const byte of block) sum += byte;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return block;
}

/** ustar keeps up to 100 bytes of name and 155 of directory prefix, split at a "/". */
function splitPath(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  for (let at = path.indexOf('/'); at >= 0; at = path.indexOf('/', at + 1)) {
    const prefix = path.slice(0, at);
    const name = path.slice(at + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  throw new DeployError('RELEASE', `path too long for a tar archive: ${path}`, { path });
}
