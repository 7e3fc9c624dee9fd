import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { readJsonFile } from '../lib/json-file.js';
import { describeError, ModelError } from './errors.js';
import { parseS3Url } from './manifest.js';
import type { ModelManifest } from './types.js';

export const DEFAULT_CACHE_DIR = path.join(os.tmpdir(), 'image-recognition-models');
const DEFAULT_TIMEOUT_MS = 120_000;
const DOWNLOAD_CONCURRENCY = 6;
const MARKER = '.complete.json';

export interface FetchModelOptions {
  /** Where downloaded models are kept. Default `$TMPDIR/image-recognition-models`. */
  readonly cacheDir?: string;
  /** Client used for `s3://` locations (the caller owns its region and credentials). */
  readonly s3?: Pick<S3Client, 'send'>;
  /** Per-request timeout. Default 120 s. */
  readonly timeoutMs?: number;
}

export interface LocalModel {
  /** Absolute path of `model.json` (tfjs) or the `.onnx` file. */
  readonly path: string;
  /** Every file of the model, absolute. */
  readonly files: readonly string[];
  /** `local`: used in place; `downloaded`: fetched now; `cache`: found in the cache, no network. */
  readonly origin: 'local' | 'downloaded' | 'cache';
}

type Remote = { kind: 'http'; url: URL } | { kind: 's3'; bucket: string; key: string };

interface Marker {
  readonly location: string;
  readonly sha256: string | null;
  readonly main: string;
  readonly files: readonly string[];
}

/**
 * Makes a model's files available on local disk. Local locations are used in place; remote ones are
 * downloaded once into `cacheDir` (every file written to a temp name then renamed, and a marker
 * written last, so a crashed or concurrent download never leaves a half model that looks complete).
 */
export async function fetchModel(manifest: ModelManifest, options: FetchModelOptions = {}): Promise<LocalModel> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new ModelError('INVALID_OPTIONS', `timeoutMs must be a positive number, got ${timeoutMs}`, { timeoutMs });
  }
  const remote = parseRemote(manifest.location);
  if (remote === undefined) return localModel(manifest);

  const cacheDir = path.resolve(options.cacheDir ?? DEFAULT_CACHE_DIR);
  const entryDir = path.join(cacheDir, cacheEntryName(manifest));
  const cached = await readMarker(entryDir, manifest);
  if (cached !== undefined) return cached;

  const { s3 } = options;
  const get = (target: Remote): Promise<Uint8Array> => {
    if (target.kind === 'http') return httpGet(target.url, timeoutMs);
    if (s3 === undefined) {
      throw new ModelError(
        'INVALID_OPTIONS',
        `model location ${manifest.location} is on S3 but no S3 client was given`,
        {
          id: manifest.id,
          url: manifest.location,
        },
      );
    }
    return s3Get(target, s3, timeoutMs);
  };

  // Whole files are held in memory until all are verified: nothing reaches the cache unless the
  // model is complete and its checksum matches. Fine for models of tens of MB.
  const mainName = mainFileName(manifest, remote);
  const main = await get(remote);
  verifySha256(manifest, describeRemote(remote), main);
  const files = new Map<string, Uint8Array>([[mainName, main]]);
  if (manifest.format !== 'onnx') {
    const weightPaths = weightFiles(parseModelJson(main, describeRemote(remote)), describeRemote(remote));
    const bodies = await mapLimit(weightPaths, DOWNLOAD_CONCURRENCY, (p) => get(sibling(remote, p)));
    for (const [i, p] of weightPaths.entries()) files.set(p, bodies[i]!);
  }

  for (const [name, body] of files) await writeAtomic(path.join(entryDir, name), body);
  const marker: Marker = {
    location: manifest.location,
    sha256: manifest.sha256 ?? null,
    main: mainName,
    files: [...files.keys()],
  };
  await writeAtomic(path.join(entryDir, MARKER), new TextEncoder().encode(JSON.stringify(marker)));
  return {
    path: path.join(entryDir, mainName),
    files: marker.files.map((f) => path.join(entryDir, f)),
    origin: 'downloaded',
  };
}

function parseRemote(location: string): Remote | undefined {
  if (/^https?:\/\//i.test(location)) return { kind: 'http', url: new URL(location) };
  const s3 = /^s3:\/\//i.test(location) ? parseS3Url(location) : undefined;
  if (s3 !== undefined) return { kind: 's3', ...s3 };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    throw new ModelError('INVALID_MANIFEST', `unsupported model location ${location}`, { url: location });
  }
  return undefined;
}

function describeRemote(remote: Remote): string {
  return remote.kind === 'http' ? remote.url.href : `s3://${remote.bucket}/${remote.key}`;
}

/**
 * Weight paths in model.json are relative to it. Like tfjs' own http loader, the model URL's query
 * string is carried over (TF-Hub needs `?tfjs-format=file` on every file).
 */
function sibling(remote: Remote, relative: string): Remote {
  if (remote.kind === 'http') {
    const url = new URL(relative, remote.url);
    url.search = remote.url.search;
    return { kind: 'http', url };
  }
  return { ...remote, key: path.posix.join(path.posix.dirname(remote.key), relative) };
}

function mainFileName(manifest: ModelManifest, remote: Remote): string {
  if (manifest.format !== 'onnx') return 'model.json';
  const last = (remote.kind === 'http' ? remote.url.pathname : remote.key).split('/').pop() ?? '';
  return /^[\w.-]+\.onnx$/.test(last) ? last : 'model.onnx';
}

function cacheEntryName(manifest: ModelManifest): string {
  const digest = createHash('sha256').update(manifest.location).digest('hex').slice(0, 16);
  return `${manifest.id.replace(/[^\w.-]+/g, '_')}-${digest}`;
}

async function readMarker(entryDir: string, manifest: ModelManifest): Promise<LocalModel | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(entryDir, MARKER), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ModelError(
      'CACHE_ERROR',
      `cannot read model cache ${entryDir}: ${describeError(error)}`,
      { path: entryDir },
      { cause: error },
    );
  }
  let marker: Marker;
  try {
    marker = JSON.parse(text) as Marker;
  } catch {
    return undefined; // unreadable marker: treat the entry as absent and download again
  }
  // Same directory name but another location or checksum (hash-prefix collision, edited manifest): refetch.
  if (marker.location !== manifest.location || marker.sha256 !== (manifest.sha256 ?? null)) return undefined;
  const files = marker.files.map((f) => path.join(entryDir, f));
  const present = await Promise.all(
    files.map((f) =>
      stat(f).then(
        () => true,
        () => false,
      ),
    ),
  );
  if (present.includes(false)) return undefined;
  return { path: path.join(entryDir, marker.main), files, origin: 'cache' };
}

async function localModel(manifest: ModelManifest): Promise<LocalModel> {
  const location = path.resolve(manifest.location);
  const info = await stat(location).catch((error: unknown) => {
    throw new ModelError(
      'MODEL_NOT_FOUND',
      `model '${manifest.id}' not found at ${location}: ${describeError(error)}`,
      {
        id: manifest.id,
        path: location,
      },
      { cause: error },
    );
  });
  if (info.isFile()) return { path: location, files: [location], origin: 'local' };
  if (manifest.format !== 'onnx') {
    const file = path.join(location, 'model.json');
    if (
      !(await stat(file).then(
        (s) => s.isFile(),
        () => false,
      ))
    ) {
      throw new ModelError('MODEL_NOT_FOUND', `no model.json in ${location} (model '${manifest.id}')`, {
        id: manifest.id,
        path: file,
      });
    }
    return { path: file, files: [file], origin: 'local' };
  }
  const onnxFiles = (await readdir(location)).filter((f) => f.endsWith('.onnx'));
  if (onnxFiles.length !== 1) {
    throw new ModelError(
      'MODEL_NOT_FOUND',
      `expected exactly one .onnx file in ${location}, found ${onnxFiles.length}`,
      {
        id: manifest.id,
        path: location,
        found: onnxFiles,
      },
    );
  }
  const file = path.join(location, onnxFiles[0]!);
  return { path: file, files: [file], origin: 'local' };
}

function verifySha256(manifest: ModelManifest, url: string, body: Uint8Array): void {
  if (manifest.sha256 === undefined) return;
  const actual = createHash('sha256').update(body).digest('hex');
  if (actual !== manifest.sha256) {
    throw new ModelError(
      'CHECKSUM_MISMATCH',
      `sha256 of ${url} is ${actual}, manifest '${manifest.id}' expects ${manifest.sha256}`,
      {
        id: manifest.id,
        url,
        expected: manifest.sha256,
        actual,
      },
    );
  }
}

function parseModelJson(body: Uint8Array, url: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(body));
  } catch (error) {
    throw new ModelError(
      'INVALID_MODEL_FILE',
      `${url} is not valid JSON: ${describeError(error)}`,
      { url },
      { cause: error },
    );
  }
}

export interface TfjsModelFiles {
  readonly modelJson: unknown;
  /** The weight files model.json names, in order (relative to it), and their bytes. */
  readonly weightPaths: readonly string[];
  readonly weights: readonly Buffer[];
}

/** A local TF.js model: its model.json and every weight file it names (`MODEL_LOAD_FAILED` naming the file that cannot be read). */
export async function readTfjsModel(modelJsonPath: string): Promise<TfjsModelFiles> {
  const modelJson = await readJsonFile(modelJsonPath, {
    what: 'model file',
    fail: (message, cause) => new ModelError('MODEL_LOAD_FAILED', message, { path: modelJsonPath }, { cause }),
  });
  const weightPaths = weightFiles(modelJson, modelJsonPath);
  const dir = path.dirname(modelJsonPath);
  const weights = await Promise.all(
    weightPaths.map(async (f) => {
      const file = path.join(dir, f);
      try {
        return await readFile(file);
      } catch (error) {
        throw new ModelError(
          'MODEL_LOAD_FAILED',
          `cannot read model file ${file}: ${describeError(error)}`,
          { path: file },
          { cause: error },
        );
      }
    }),
  );
  return { modelJson, weightPaths, weights };
}

/** Weight file paths named by a tfjs model.json, in order, each a safe relative path. */
export function weightFiles(modelJson: unknown, url: string): string[] {
  const groups = (modelJson as { weightsManifest?: unknown } | null)?.weightsManifest;
  if (!Array.isArray(groups)) {
    throw new ModelError('INVALID_MODEL_FILE', `${url} has no weightsManifest array`, { url });
  }
  const paths: string[] = [];
  for (const group of groups) {
    const groupPaths = (group as { paths?: unknown } | null)?.paths;
    if (!Array.isArray(groupPaths)) {
      throw new ModelError('INVALID_MODEL_FILE', `${url}: a weightsManifest group has no paths array`, { url });
    }
    for (const p of groupPaths) {
      // These names become file names in the cache: refuse anything that could escape it.
      if (
        typeof p !== 'string' ||
        p === '' ||
        p.includes('\\') ||
        p.startsWith('/') ||
        /^[a-z][a-z0-9+.-]*:/i.test(p) ||
        p.split('/').some((s) => s === '..' || s === '.' || s === '' || s === MARKER)
      ) {
        throw new ModelError('INVALID_MODEL_FILE', `${url} names an unsafe weight path ${JSON.stringify(p)}`, {
          url,
          path: p,
        });
      }
      paths.push(p);
    }
  }
  return paths;
}

/** Delays before the 2nd and 3rd attempt of an http download. */
const HTTP_RETRY_DELAYS_MS = [250, 1000];
const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/**
 * GET with retries for transient failures only: connection errors (e.g. a keep-alive socket the
 * server closed as we reused it) and 408/429/5xx. Timeouts and other statuses fail at once.
 * (The S3 client has its own retry policy.)
 */
async function httpGet(url: URL, timeoutMs: number): Promise<Uint8Array> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await httpGetOnce(url, timeoutMs);
    } catch (error) {
      const delay = HTTP_RETRY_DELAYS_MS[attempt];
      if (delay === undefined || !(error instanceof ModelError) || !error.context.retryable) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

async function httpGetOnce(url: URL, timeoutMs: number): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
    throw new ModelError(
      'DOWNLOAD_FAILED',
      `GET ${url.href} failed: ${describeError(error)}`,
      {
        url: url.href,
        retryable: !timedOut,
      },
      { cause: error },
    );
  }
  if (!response.ok) {
    // Discard the body so the connection can be reused.
    await response.body?.cancel();
    throw new ModelError(
      'HTTP_ERROR',
      `GET ${url.href} failed: HTTP ${response.status} ${response.statusText}`.trimEnd(),
      {
        url: url.href,
        status: response.status,
        statusText: response.statusText,
        retryable: RETRYABLE_STATUS.has(response.status),
      },
    );
  }
  try {
    return new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    throw new ModelError(
      'DOWNLOAD_FAILED',
      `reading ${url.href} failed: ${describeError(error)}`,
      { url: url.href, retryable: true },
      { cause: error },
    );
  }
}

async function s3Get(
  target: { bucket: string; key: string },
  s3: Pick<S3Client, 'send'>,
  timeoutMs: number,
): Promise<Uint8Array> {
  const url = `s3://${target.bucket}/${target.key}`;
  // Loaded only when an s3:// model is used: the SDK is large and most workers read local or http models.
  const { GetObjectCommand } = await import('@aws-sdk/client-s3');
  try {
    const output = await s3.send(new GetObjectCommand({ Bucket: target.bucket, Key: target.key }), {
      abortSignal: AbortSignal.timeout(timeoutMs),
    });
    if (output.Body === undefined) throw new Error('empty body');
    return await output.Body.transformToByteArray();
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status !== undefined && status >= 300) {
      throw new ModelError(
        'HTTP_ERROR',
        `GET ${url} failed: HTTP ${status} (${describeError(error)})`,
        {
          url,
          status,
          s3Error: error instanceof Error ? error.name : undefined,
        },
        { cause: error },
      );
    }
    throw new ModelError('DOWNLOAD_FAILED', `GET ${url} failed: ${describeError(error)}`, { url }, { cause: error });
  }
}

/** Writes `body` to `file` through a temp name and a rename, so no reader ever sees half a file. */
export async function writeAtomic(file: string, body: Uint8Array): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(temp, body);
    await rename(temp, file);
  } catch (error) {
    // Best-effort cleanup: the error worth reporting is the one that got us here.
    await rm(temp, { force: true }).catch(() => undefined);
    throw new ModelError(
      'CACHE_ERROR',
      `cannot write ${file} into the model cache: ${describeError(error)}`,
      { path: file },
      { cause: error },
    );
  }
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failed) {
      const index = next++;
      try {
        results[index] = await fn(items[index]!);
      } catch (error) {
        failed = true; // stop the other workers from starting more downloads
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
