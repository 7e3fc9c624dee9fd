/**
 * Optional access control on the real service: with API_KEYS set, every route but the health checks
 * and the page's static shell (and the classic POST / unless CLASSIC_REQUIRES_KEY) answers 401
 * JSON with `WWW-Authenticate: Bearer` to no key and to a wrong one, and works with either right
 * key; no key ever reaches a log line. Then the page in real Chromium: it asks for the key once
 * (again when the key is refused), keeps it for the tab, and reads its event stream with it.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { captureLogs, type LogLevel, setLogLevel } from '../lib/log.js';
import type { Service } from '../service/service.js';
import { type Browser, ConsoleWatch, launchBrowser } from './helpers/browser.js';
import { SAMPLE_DIR } from './helpers/model-fixtures.js';
import { OpenApiChecker } from './helpers/openapi.js';
import { startTestService, tempDataDir } from './helpers/service.js';

declare const document: any;

const KEYS = [`first-${randomBytes(12).toString('hex')}`, `second-${randomBytes(12).toString('hex')}`];
const WRONG = `wrong-${randomBytes(12).toString('hex')}`;
const PHOTO = 'n01440764_tench.JPEG';

let service: Service;
/** CLASSIC_REQUIRES_KEY on. */
let strict: Service;
let doc: OpenApiChecker;
let jobId: string;
let batchId: string;
const dirs: string[] = [];
const lines: string[] = [];
let restoreLogs: () => void;

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

async function photoForm(field: string): Promise<FormData> {
  const form = new FormData();
  form.append(field, new Blob([await readFile(join(SAMPLE_DIR, PHOTO))]), PHOTO);
  return form;
}

test.before(async () => {
  // Every line at every level, into this test's sink: a key must appear in none.
  restoreLogs = captureLogs((line) => lines.push(line));
  setLogLevel('debug');
  const [a, b] = [await tempDataDir('auth'), await tempDataDir('auth-classic')];
  dirs.push(a, b);
  [service, strict] = await Promise.all([
    // ANSWER_WAIT_MS=0: every API upload is answered 202 at once, so the page follows its job (with the key).
    startTestService(a, { API_KEYS: KEYS.join(','), WORKERS: '1', ANSWER_WAIT_MS: '0', SOURCE_BUCKETS: 'auth-photos' }),
    startTestService(b, { API_KEYS: ` ${KEYS[0]} `, CLASSIC_REQUIRES_KEY: 'true', WORKERS: '1' }),
  ]);
  doc = await OpenApiChecker.load(service.web.url, bearer(KEYS[0]!));
  const response = await fetch(`${service.web.url}/api/v1/classify`, {
    method: 'POST',
    headers: bearer(KEYS[1]!),
    body: await photoForm('image'),
  });
  jobId = ((await response.json()) as { results: { id: string }[] }).results[0]!.id;
  await service.clients.s3.send(new CreateBucketCommand({ Bucket: 'auth-photos' }));
  const batch = await fetch(`${service.web.url}/api/v1/batches`, {
    method: 'POST',
    headers: { ...bearer(KEYS[0]!), 'content-type': 'application/json' },
    body: JSON.stringify({ source: 's3://auth-photos/' }),
  });
  batchId = ((await batch.json()) as { id: string }).id;
});

test.after.always(async () => {
  await Promise.all([service?.stop(), strict?.stop()]);
  setLogLevel((process.env.LOG_LEVEL as LogLevel | undefined) ?? 'warn');
  restoreLogs?.();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

interface Route {
  readonly method: 'get' | 'post' | 'delete';
  /** As in the OpenAPI document. */
  readonly path: string;
  readonly open: boolean;
  /** The request: its URL path and body. */
  readonly send: () => Promise<{ url: string; init: RequestInit }>;
  readonly ok: readonly number[];
}

/** Every operation of the document, with a real request for it. */
const ROUTES: readonly Route[] = [
  { method: 'get', path: '/', open: true, ok: [200], send: async () => ({ url: '/', init: {} }) },
  {
    method: 'get',
    path: '/assets/{name}',
    open: true,
    ok: [200],
    send: async () => ({ url: '/assets/main.js', init: {} }),
  },
  {
    method: 'post',
    path: '/',
    open: true,
    ok: [200],
    send: async () => ({ url: '/', init: { method: 'POST', body: await photoForm('myfile') } }),
  },
  {
    method: 'post',
    path: '/api/v1/classify',
    open: false,
    ok: [200, 202],
    send: async () => ({ url: '/api/v1/classify', init: { method: 'POST', body: await photoForm('image') } }),
  },
  {
    method: 'get',
    path: '/api/v1/jobs/{id}',
    open: false,
    ok: [200],
    send: async () => ({ url: `/api/v1/jobs/${jobId}`, init: {} }),
  },
  {
    method: 'get',
    path: '/api/v1/jobs/{id}/thumbnail',
    open: false,
    ok: [200],
    send: async () => ({ url: `/api/v1/jobs/${jobId}/thumbnail`, init: {} }),
  },
  {
    method: 'get',
    path: '/api/v1/results',
    open: false,
    ok: [200],
    send: async () => ({ url: '/api/v1/results?limit=5', init: {} }),
  },
  {
    method: 'get',
    path: '/api/v1/status',
    open: false,
    ok: [200],
    send: async () => ({ url: '/api/v1/status', init: {} }),
  },
  {
    method: 'get',
    path: '/api/v1/events',
    open: false,
    ok: [200],
    send: async () => ({ url: '/api/v1/events', init: {} }),
  },
  {
    method: 'get',
    path: '/api/v1/openapi.json',
    open: false,
    ok: [200],
    send: async () => ({ url: '/api/v1/openapi.json', init: {} }),
  },
  {
    method: 'post',
    path: '/api/v1/batches',
    open: false,
    ok: [202],
    send: async () => ({
      url: '/api/v1/batches',
      init: {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ source: 's3://auth-photos/' }),
      },
    }),
  },
  {
    method: 'get',
    path: '/api/v1/batches',
    open: false,
    ok: [200],
    send: async () => ({ url: '/api/v1/batches', init: {} }),
  },
  {
    method: 'get',
    path: '/api/v1/batches/{id}',
    open: false,
    ok: [200],
    send: async () => ({ url: `/api/v1/batches/${batchId}`, init: {} }),
  },
  // An empty prefix: the batch is done at once, so a cancel finds it finished.
  {
    method: 'delete',
    path: '/api/v1/batches/{id}',
    open: false,
    ok: [200, 409],
    send: async () => ({ url: `/api/v1/batches/${batchId}`, init: { method: 'DELETE' } }),
  },
  {
    method: 'get',
    path: '/api/v1/batches/{id}/results',
    open: false,
    ok: [200],
    send: async () => ({ url: `/api/v1/batches/${batchId}/results`, init: {} }),
  },
  { method: 'get', path: '/metrics', open: false, ok: [200], send: async () => ({ url: '/metrics', init: {} }) },
  { method: 'get', path: '/healthz', open: true, ok: [200], send: async () => ({ url: '/healthz', init: {} }) },
  { method: 'get', path: '/readyz', open: true, ok: [200], send: async () => ({ url: '/readyz', init: {} }) },
];

/** One request; an event stream is read up to its first chunk, then closed. */
async function call(
  base: string,
  route: Route,
  headers: Record<string, string>,
): Promise<{ status: number; contentType: string; body: string; wwwAuthenticate: string | null }> {
  const { url, init } = await route.send();
  const abort = new AbortController();
  const response = await fetch(`${base}${url}`, {
    ...init,
    headers: { ...((init.headers as Record<string, string> | undefined) ?? {}), ...headers },
    signal: abort.signal,
  });
  const head = {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    wwwAuthenticate: response.headers.get('www-authenticate'),
  };
  if (!head.contentType.startsWith('text/event-stream')) return { ...head, body: await response.text() };
  const { value } = await response.body!.getReader().read();
  abort.abort();
  return { ...head, body: Buffer.from(value ?? []).toString() };
}

test('the routes tested here are exactly the operations of the OpenAPI document, which marks the same ones as needing a key', (t) => {
  const documented = Object.entries(doc.doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops).map((method) => `${method} ${path}`),
  );
  t.deepEqual(ROUTES.map((r) => `${r.method} ${r.path}`).sort(), documented.sort());
  for (const route of ROUTES) {
    const security = (doc.doc.paths[route.path]![route.method] as unknown as { security: unknown[] }).security;
    t.deepEqual(security, route.open ? [] : [{ apiKey: [] }], `${route.method} ${route.path}`);
  }
});

for (const route of ROUTES) {
  test(`${route.method.toUpperCase()} ${route.path}: no key, a wrong key, a right key`, async (t) => {
    const base = service.web.url;
    for (const [what, headers] of [
      ['no key', {}],
      ['a wrong key', bearer(WRONG)],
    ] as const) {
      const answer = await call(base, route, headers);
      if (route.open) {
        t.true(route.ok.includes(answer.status), `${what}: ${answer.status} ${answer.body.slice(0, 200)}`);
        continue;
      }
      t.is(answer.status, 401, what);
      t.regex(answer.contentType, /^application\/json/, what);
      t.is(JSON.parse(answer.body).error.code, 'UNAUTHORIZED', what);
      t.regex(
        answer.wwwAuthenticate ?? '',
        what === 'no key'
          ? /^Bearer realm="image-recognition"$/
          : /^Bearer realm="image-recognition", error="invalid_token"$/,
      );
      t.deepEqual(doc.problems(route.method, route.path, answer), [], what);
      t.false(answer.body.includes(WRONG), `${what}: the answer does not echo the key`);
    }
    for (const key of KEYS) {
      const answer = await call(base, route, bearer(key));
      t.true(route.ok.includes(answer.status), `right key: ${answer.status} ${answer.body.slice(0, 200)}`);
      if (!answer.contentType.startsWith('text/event-stream'))
        t.deepEqual(doc.problems(route.method, route.path, answer), [], 'right key');
      else t.regex(answer.body, /event: hello/);
    }
  });
}

test('a key is taken from the Authorization header only: not from the query string, not with another scheme', async (t) => {
  const url = service.web.url;
  t.is((await fetch(`${url}/api/v1/status?access_token=${KEYS[0]}`)).status, 401);
  t.is((await fetch(`${url}/api/v1/status?token=${KEYS[0]}`)).status, 401);
  t.is(
    (
      await fetch(`${url}/api/v1/status`, {
        headers: { authorization: `Basic ${Buffer.from(`x:${KEYS[0]}`).toString('base64')}` },
      })
    ).status,
    401,
  );
  t.is((await fetch(`${url}/api/v1/status`, { headers: { authorization: KEYS[0]! } })).status, 401);
  t.is(
    (await fetch(`${url}/api/v1/status`, { headers: { authorization: `Bearer ${KEYS[0]}x` } })).status,
    401,
    'a key with one more character',
  );
  t.is(
    (await fetch(`${url}/api/v1/status`, { headers: { authorization: `Bearer ${KEYS[0]!.slice(0, -1)}` } })).status,
    401,
    'a key with one less',
  );
  t.is(
    (await fetch(`${url}/api/v1/status`, { headers: { authorization: `bearer ${KEYS[1]}` } })).status,
    200,
    'the scheme is case-insensitive (RFC 7235)',
  );
  t.is((await fetch(`${url}/nope`)).status, 401, 'an unknown route says nothing without a key');
  t.is((await fetch(`${url}/nope`, { headers: bearer(KEYS[0]!) })).status, 404);
});

test('CLASSIC_REQUIRES_KEY: the classic POST / needs the key too; the health checks still do not', async (t) => {
  const url = strict.web.url;
  const post = async (headers: Record<string, string>) =>
    fetch(`${url}/`, { method: 'POST', headers, body: await photoForm('myfile') });
  const none = await post({});
  t.is(none.status, 401);
  t.is(none.headers.get('www-authenticate'), 'Bearer realm="image-recognition"');
  t.is(((await none.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
  t.is((await post(bearer(WRONG))).status, 401);
  t.is((await post(bearer(KEYS[1]!))).status, 401, 'a key of the other service');
  const right = await post(bearer(KEYS[0]!));
  t.is(right.status, 200);
  t.is(await right.text(), 'n01440764_tench,tench');
  t.is((await fetch(`${url}/healthz`)).status, 200);
  t.is((await fetch(`${url}/readyz`)).status, 200);
  const document = (await (await fetch(`${url}/api/v1/openapi.json`, { headers: bearer(KEYS[0]!) })).json()) as {
    paths: Record<string, Record<string, { security: unknown; responses: Record<string, unknown> }>>;
  };
  t.deepEqual(document.paths['/']!.post!.security, [{ apiKey: [] }]);
  t.truthy(document.paths['/']!.post!.responses['401']);
});

test.serial(
  'the page asks for the key once, again when it is refused, keeps it for the tab, and reads the live view with it',
  async (t) => {
    const browser: Browser = await launchBrowser();
    try {
      const page = await browser.context.newPage();
      const watch = new ConsoleWatch(page);
      for (const path of ['/api/v1/events', '/api/v1/results', '/api/v1/batches']) watch.expect(path, 401);
      const urls: string[] = [];
      page.on('request', (request) => urls.push(request.url()));
      await page.goto(service.web.url);
      const dialog = page.getByRole('dialog', { name: 'API key needed' });
      await dialog.waitFor();
      const input = page.getByLabel('API key', { exact: true });
      await input.fill(WRONG);
      await input.press('Enter');
      await page.getByText('That API key was not accepted').waitFor();
      t.true(await dialog.isVisible());
      await input.fill(KEYS[1]!);
      await page.getByRole('button', { name: 'Use this key' }).click();
      await page.locator('#connection[data-state="live"]').waitFor({ timeout: 10_000 });
      t.false(await dialog.isVisible());
      // Recent results (asked for at the same time as the live view) came with the same answer.
      await page
        .locator(`#recent-list li[data-job-id="${jobId}"] img.thumb[src^="blob:"]`)
        .waitFor({ timeout: 10_000 });
      await page.setInputFiles('#files', join(SAMPLE_DIR, 'n01514859_hen.JPEG'));
      await page.locator('li.job[data-state="done"] .status .label').waitFor({ timeout: 60_000 });
      t.is(await page.locator('li.job .status .label').textContent(), 'hen');
      const followed = urls.filter((u) => /\/api\/v1\/jobs\/[0-9a-f-]{36}$/.test(u));
      t.true(followed.length >= 1, 'the 202 was followed at its job');
      t.is(await page.evaluate(() => sessionStorage.getItem('eir.apiKey')), KEYS[1] ?? null);

      // A reload of the tab keeps it: no question.
      await page.reload();
      await page.locator('#connection[data-state="live"]').waitFor({ timeout: 10_000 });
      t.false(await dialog.isVisible());
      // Another tab asks again (sessionStorage is per tab).
      const other = await browser.context.newPage();
      const otherWatch = new ConsoleWatch(other);
      for (const path of ['/api/v1/events', '/api/v1/results', '/api/v1/batches']) otherWatch.expect(path, 401);
      await other.goto(service.web.url);
      await other.getByRole('dialog', { name: 'API key needed' }).waitFor();
      await other.getByRole('button', { name: 'Cancel' }).click();
      await other.locator('#connection[data-state="off"]').waitFor({ timeout: 10_000 });
      t.regex((await other.locator('#recent-state').textContent()) ?? '', /No API key was given\. \(NO_KEY\)/);

      t.deepEqual(
        urls.filter((u) => /[?&](access_)?token=|key=/i.test(u)),
        [],
        'no key in any URL',
      );
      t.deepEqual(watch.errors, []);
      t.deepEqual(otherWatch.errors, []);
      t.is(await page.evaluate(() => document.title), 'Image recognition');
    } finally {
      await browser.close();
    }
  },
);

test.after('no key, right or wrong, is in any log line (all levels captured)', (t) => {
  const all = lines.join('\n');
  t.true(
    lines.some((line) => line.includes('"code":"UNAUTHORIZED"')),
    'the refusals were logged (so the logs were read)',
  );
  for (const key of [...KEYS, WRONG]) t.false(all.includes(key), 'a key appears in the logs');
});
