/**
 * The OpenAPI document (`GET /api/v1/openapi.json`) of the real service: a valid OpenAPI 3.1
 * document (@seriousme/openapi-schema-validator), with every route the app serves and no other,
 * and every error code of `HTTP_STATUS` under its status. Real answers are checked against it in
 * the end-to-end scenarios (`scenarios/pipeline.ts`) and the access-control test. A linter we did
 * not write judges it too: Redocly CLI with its `recommended` rules, no error and no warning.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type Router from '@koa/router';
import { Validator } from '@seriousme/openapi-schema-validator';
import test, { type ExecutionContext } from 'ava';
import { projectRoot } from '../lib/config.js';
import { silentLogger } from '../lib/log.js';
import type { Service } from '../service/service.js';
import { createApp } from '../web/app.js';
import { HTTP_STATUS, type HttpErrorCode } from '../web/errors.js';
import { LiveStatus } from '../web/live.js';
import { openApiDocument } from '../web/openapi.js';
import { answerOf, OpenApiChecker } from './helpers/openapi.js';
import { startTestService, tempDataDir } from './helpers/service.js';

type Doc = {
  openapi: string;
  info: { description: string };
  paths: Record<
    string,
    Record<string, { security?: unknown; responses: Record<string, { content?: Record<string, { schema: any }> }> }>
  >;
  components: { schemas: Record<string, any>; securitySchemes?: unknown };
};

let service: Service;
let doc: Doc;
let dataDir: string;

test.before(async () => {
  dataDir = await tempDataDir('openapi');
  service = await startTestService(dataDir, { WORKERS: '0' });
  doc = (await (await fetch(`${service.web.url}/api/v1/openapi.json`)).json()) as Doc;
});

test.after.always(async () => {
  await service?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

interface LintReport {
  readonly totals: { readonly errors: number; readonly warnings: number };
  readonly problems: readonly {
    readonly ruleId: string;
    readonly message: string;
    readonly location: readonly { readonly pointer: string }[];
  }[];
}

/** `redocly lint --format=json` of a document, with the recommended rules (the project has no Redocly config). */
async function lint(document: unknown): Promise<LintReport> {
  const dir = await mkdtemp(join(tmpdir(), 'eir-redocly-'));
  try {
    const file = join(dir, 'openapi.json');
    await writeFile(file, JSON.stringify(document));
    const redocly = join(projectRoot, 'node_modules', '.bin', 'redocly');
    // Redocly exits 1 when it finds errors; the report on stdout says which either way.
    const { stdout } = await promisify(execFile)(redocly, ['lint', file, '--extends=recommended', '--format=json'], {
      cwd: dir,
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
    }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
    return JSON.parse(stdout) as LintReport;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const described = (report: LintReport) =>
  JSON.stringify(
    report.problems.map((p) => `${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`),
    null,
    2,
  );

test('Redocly CLI (recommended rules) finds no error and no warning, with access control off and on', async (t) => {
  const open = await lint(doc);
  t.deepEqual(open.totals, { ...open.totals, errors: 0, warnings: 0 }, described(open));
  const keyed = await lint(
    openApiDocument({
      auth: { apiKeys: ['k'.repeat(16)], classicRequiresKey: false },
      limits: service.config.limits,
      classic: service.config.classic,
      assets: ['main.js'],
    }),
  );
  t.deepEqual(keyed.totals, { ...keyed.totals, errors: 0, warnings: 0 }, described(keyed));
});

test('the same linter reports an operation without security and an unused component (the check can fail)', async (t) => {
  const broken = structuredClone(doc) as any;
  delete broken.paths['/healthz'].get.security;
  broken.components.schemas.Unused = { type: 'string' };
  const report = await lint(broken);
  t.is(report.totals.errors, 1, described(report));
  t.deepEqual(
    report.problems.map((p) => [p.ruleId, p.location[0]?.pointer]),
    [
      ['security-defined', '#/paths/~1healthz/get'],
      ['no-unused-components', '#/components/schemas/Unused'],
    ],
  );
});

async function validate(document: unknown): Promise<{ valid: boolean; errors?: unknown }> {
  return new Validator().validate(document as Parameters<Validator['validate']>[0]);
}

test('the served document is valid OpenAPI 3.1, and so is the one with access control on', async (t) => {
  const response = await fetch(`${service.web.url}/api/v1/openapi.json`);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^application\/json/);
  t.is(doc.openapi, '3.1.0');
  const result = await validate(doc);
  t.true(result.valid, JSON.stringify(result.errors, null, 2));
  t.is(doc.components.securitySchemes, undefined, 'no keys configured: no security scheme');

  const withKeys = openApiDocument({
    auth: { apiKeys: ['k'.repeat(16)], classicRequiresKey: false },
    limits: service.config.limits,
    classic: service.config.classic,
    assets: ['main.js'],
  }) as unknown as Doc;
  const keyed = await validate(withKeys);
  t.true(keyed.valid, JSON.stringify(keyed.errors, null, 2));
  t.deepEqual(withKeys.paths['/api/v1/status']!.get!.security, [{ apiKey: [] }]);
  t.deepEqual(withKeys.paths['/healthz']!.get!.security, []);
  t.truthy(withKeys.paths['/api/v1/status']!.get!.responses['401']);
  t.falsy(withKeys.paths['/healthz']!.get!.responses['401']);
});

test('a broken document is refused by the same validator (the check can fail)', async (t) => {
  const broken = structuredClone(doc) as any;
  broken.paths['/healthz'].get.responses = { 200: { content: {} } }; // a response without its required description
  t.false((await validate(broken)).valid);
});

test('every route the app serves is in the document, and nothing else', (t) => {
  const app = createApp({
    submitter: service.submitter,
    store: service.store,
    limits: service.config.limits,
    auth: service.config.auth,
    classic: service.config.classic,
    batches: service.batches,
    log: silentLogger,
    status: () => service.status(),
    live: new LiveStatus(() => service.status(), silentLogger),
  });
  const router = app.middleware.map((m) => (m as { router?: Router }).router).find((r) => r !== undefined);
  t.truthy(router, 'the router is mounted');
  const served = router!.stack.flatMap((layer) =>
    layer.methods
      .filter((m) => m !== 'HEAD')
      .map((m) => `${m.toLowerCase()} ${String(layer.path).replace(/:(\w+)/g, '{$1}')}`),
  );
  const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`));
  t.deepEqual([...new Set(served)].sort(), documented.sort());
});

/** Code → the operations that list it; each listed under the status HTTP_STATUS gives it. */
function listedCodes(t: ExecutionContext, document: Doc): Map<string, Set<string>> {
  const listed = new Map<string, Set<string>>();
  for (const [path, ops] of Object.entries(document.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      for (const [status, response] of Object.entries(op.responses)) {
        const schema = response.content?.['application/json']?.schema;
        const enumOf: string[] | undefined = schema?.allOf?.[1]?.properties?.error?.properties?.code?.enum;
        for (const code of enumOf ?? []) {
          t.is(String(HTTP_STATUS[code as HttpErrorCode]), status, `${method} ${path}: ${code} under ${status}`);
          listed.set(code, (listed.get(code) ?? new Set()).add(`${method} ${path}`));
        }
      }
    }
  }
  return listed;
}

test('every error code of HTTP_STATUS is documented under its status, and no other code is', (t) => {
  const codes = Object.keys(HTTP_STATUS) as HttpErrorCode[];
  t.deepEqual(doc.components.schemas.ErrorCode.enum, codes);
  t.deepEqual(doc.components.schemas.ErrorCode['x-status'], HTTP_STATUS);
  const listed = listedCodes(t, doc);
  // 404 for an unknown path and 405 for a method a path does not take have no operation of their own.
  // UNAUTHORIZED only where keys are configured.
  for (const code of codes.filter((c) => c !== 'METHOD_NOT_ALLOWED' && c !== 'UNAUTHORIZED'))
    t.true(listed.has(code), `${code} is answered by some operation`);
  t.false(listed.has('UNAUTHORIZED'));
  const keyed = listedCodes(
    t,
    openApiDocument({
      auth: { apiKeys: ['k'.repeat(16)], classicRequiresKey: false },
      limits: service.config.limits,
      classic: service.config.classic,
      assets: [],
    }) as unknown as Doc,
  );
  t.true(keyed.get('UNAUTHORIZED')?.has('get /api/v1/status'));
  t.false(keyed.get('UNAUTHORIZED')?.has('get /healthz'));
  t.regex(doc.info.description, /`405 METHOD_NOT_ALLOWED`/);
  t.regex(doc.info.description, /`404 NOT_FOUND`/);
  for (const code of codes)
    t.true(
      doc.info.description.includes(`| ${HTTP_STATUS[code]} | \`${code}\` |`),
      `${code} in the table of the description`,
    );
  // The upload routes answer every refusal of an upload and every pipeline failure.
  for (const code of [
    'NOT_AN_IMAGE',
    'TOO_LARGE',
    'UNDECODABLE_IMAGE',
    'DEAD_LETTER',
    'TIMEOUT',
    'OVERLOADED',
  ] as const) {
    t.true(listed.get(code)?.has('post /api/v1/classify'), `${code} on POST /api/v1/classify`);
  }
  t.true(listed.get('ONE_FILE_ONLY')?.has('post /'));
  t.false(listed.get('ONE_FILE_ONLY')?.has('post /api/v1/classify'), 'several files are fine on /api/v1/classify');
});

test('the checker used by the scenarios refuses what the document does not allow', async (t) => {
  const checker = await OpenApiChecker.load(service.web.url);
  const ok = {
    status: 404,
    contentType: 'application/json; charset=utf-8',
    body: JSON.stringify({ error: { code: 'NO_SUCH_JOB', message: 'no job' } }),
  };
  t.deepEqual(checker.problems('get', '/api/v1/jobs/{id}', ok), []);
  t.notDeepEqual(
    checker.problems('get', '/api/v1/jobs/{id}', {
      ...ok,
      body: JSON.stringify({ error: { code: 'NOT_AN_IMAGE', message: 'x' } }),
    }),
    [],
    'a code of another route',
  );
  t.notDeepEqual(checker.problems('get', '/api/v1/jobs/{id}', { ...ok, status: 418 }), [], 'an undocumented status');
  t.notDeepEqual(
    checker.problems('get', '/api/v1/jobs/{id}', { ...ok, contentType: 'text/html' }),
    [],
    'an undocumented content type',
  );
  t.notDeepEqual(
    checker.problems('get', '/healthz', { status: 200, contentType: 'application/json', body: '{"status":"fine"}' }),
    [],
    'a body off its schema',
  );
  t.deepEqual(checker.problems('get', '/healthz', await answerOf(await fetch(`${service.web.url}/healthz`))), []);
});
