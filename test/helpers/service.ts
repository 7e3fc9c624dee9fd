/**
 * The real service for end-to-end tests: `startService` exactly as `npm start` runs it (embedded
 * endpoint in its own process, worker processes, web tier), on free ports and a temp data dir.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';
import { LocalFleet } from '../../service/fleet.js';
import type { WorkerPool } from '../../service/pool.js';
import { type Service, startService } from '../../service/service.js';

export async function tempDataDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `eir-${prefix}-`));
}

const TEST_MODEL_CACHE = join(tmpdir(), 'eir-test-model-cache');

/** The environment of a test service: free ports, quiet logs, short polls. */
export function testEnv(dataDir: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
    ENDPOINT_MODE: 'embedded',
    PORT: '0',
    EMBEDDED_PORT: '0',
    DATA_DIR: dataDir,
    // One model cache for every test service: the default model is converted once per run, not
    // once per data directory (the conversion's own tests use their own cache).
    MODEL_CACHE_DIR: TEST_MODEL_CACHE,
    WORKERS: '1',
    LOG_LEVEL: 'warn',
    RECEIVE_WAIT_SECONDS: '1',
    ...overrides,
  };
}

export async function startTestService(dataDir: string, overrides: Record<string, string> = {}): Promise<Service> {
  return startService(loadConfig(testEnv(dataDir, overrides)), createLogger('test-service'));
}

/** The worker processes of a service started here (a local fleet). */
export function poolOf(service: Service): WorkerPool {
  if (!(service.fleet instanceof LocalFleet)) throw new Error('this service runs no local workers');
  return service.fleet.pool;
}

/** A classic-protocol upload: multipart field `myfile`. */
export async function postClassic(
  url: string,
  path: string,
  fileName: string,
  field = 'myfile',
): Promise<{ status: number; type: string; body: string }> {
  const form = new FormData();
  form.append(field, new Blob([await readFile(path)]), fileName);
  const response = await fetch(`${url}/`, { method: 'POST', body: form });
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: await response.text() };
}

export async function postForm(
  url: string,
  route: string,
  files: { field: string; name: string; bytes: Uint8Array }[],
): Promise<{ status: number; json: any }> {
  const form = new FormData();
  for (const file of files) form.append(file.field, new Blob([file.bytes]), file.name);
  const response = await fetch(`${url}${route}`, { method: 'POST', body: form });
  return { status: response.status, json: await response.json() };
}

/** Runs `tasks` with at most `limit` in flight. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await task(items[i]!, i);
      }
    }),
  );
  return results;
}

/** The text before the first comma of a label (the models' own rule). */
export { shortLabel } from '../../models/processing.js';

/** Polls `check` every 250 ms until it holds, or throws after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
