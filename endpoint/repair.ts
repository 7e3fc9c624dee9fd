/**
 * After the embedded endpoint was killed (kill -9, OOM, a power cut), an object being written at
 * that moment can be left half on disk: fauxqs keeps each object as `<key>.data` plus
 * `<key>.meta.json` and writes them one after the other. Such a PutObject never returned, so its
 * client retries it; but the half-written files must not stop the endpoint from loading everything
 * else. This finds them — a metadata file that is not JSON, a body whose size is not the one its
 * metadata records, a body without metadata — and moves them out of the way, into
 * `<dataDir>/objects-set-aside/<time>/`, where nothing is deleted and a person can look.
 */
import { mkdir, readdir, readFile, rename, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';

const META = '.meta.json';
const DATA = '.data';

export interface SetAside {
  /** Files moved, relative to the objects directory (`buckets/<bucket>/objects/...`). */
  readonly files: readonly string[];
  /** Where they went. */
  readonly to: string;
}

async function* walk(dir: string): AsyncGenerator<string> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}

/** Why an object's files cannot be loaded as they are, or undefined when they can. */
async function damage(metaPath: string): Promise<string | undefined> {
  let meta: { contentLength?: unknown };
  try {
    meta = JSON.parse(await readFile(metaPath, 'utf8')) as { contentLength?: unknown };
  } catch {
    return 'metadata is not JSON';
  }
  const dataPath = metaPath.slice(0, -META.length) + DATA;
  const size = await stat(dataPath).then(
    (s) => s.size,
    () => undefined,
  );
  if (size === undefined) return 'no body';
  if (typeof meta.contentLength === 'number' && meta.contentLength !== size)
    return `body of ${size} bytes, metadata says ${meta.contentLength}`;
  return undefined;
}

/** Moves every damaged object's files out of `objectsDirectory`; an empty list when all is well. */
export async function setAsideDamagedObjects(objectsDirectory: string, dataDir: string): Promise<SetAside> {
  const to = join(dataDir, 'objects-set-aside', new Date().toISOString().replace(/[:.]/g, '-'));
  const damaged: string[] = [];
  const metas = new Set<string>();
  const datas = new Set<string>();
  for await (const file of walk(join(objectsDirectory, 'buckets'))) {
    if (file.endsWith(META)) metas.add(file);
    else if (file.endsWith(DATA)) datas.add(file);
  }
  for (const meta of metas) {
    if ((await damage(meta)) === undefined) continue;
    damaged.push(meta);
    const data = meta.slice(0, -META.length) + DATA;
    if (datas.has(data)) damaged.push(data);
  }
  // A body whose metadata was never written: its PutObject never returned.
  for (const data of datas) {
    if (!metas.has(data.slice(0, -DATA.length) + META)) damaged.push(data);
  }
  const files: string[] = [];
  for (const file of damaged) {
    const rel = relative(objectsDirectory, file);
    await mkdir(dirname(join(to, rel)), { recursive: true });
    await rename(file, join(to, rel));
    files.push(rel);
  }
  return { files, to };
}
