/**
 * Clients we did not write, used the way their users use them, against the service as `npm start`
 * runs it: Python `requests` and `httpx`, HTTPie, curl and wget (Debian's packages, which `.ci/run`
 * installs), each sending a real photo through `POST /` and `POST /api/v1/classify`. Every answer
 * is checked exactly: the name the client sent and the label the model gives that photo (read once
 * through the JSON API). The browser is the page's own test (test/page.test.ts).
 *
 * Python's clients are driven through test/interop/clients.py with Debian's /usr/bin/python3,
 * where python3-requests and python3-httpx install (a `python3` earlier on the PATH may lack them).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import type { Service } from '../service/service.js';
import { type GroundTruth, readGroundTruth } from './helpers/model-fixtures.js';
import { postForm, startTestService, tempDataDir } from './helpers/service.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const CLIENTS = 'test/interop/clients.py';
const TOOLS: Record<string, string> = {
  python: PYTHON,
  curl: '/usr/bin/curl',
  wget: '/usr/bin/wget',
  httpie: '/usr/bin/http',
};

let service: Service;
let photos: GroundTruth[];
/** The label the service gives each photo (file → label), asked once through the JSON API. */
const labels = new Map<string, string>();

test.before(async () => {
  const missing = Object.entries(TOOLS).filter(([, path]) => !existsSync(path));
  const pythonOk =
    existsSync(PYTHON) &&
    (await run(PYTHON, ['-c', 'import requests, httpx']).then(
      () => true,
      () => false,
    ));
  if (missing.length > 0 || !pythonOk) {
    throw new Error(
      `the interop tests need Debian's curl wget httpie python3-requests python3-httpx (bash .ci/run installs them); missing: ${[...missing.map(([name]) => name), ...(pythonOk ? [] : ['python3 with requests and httpx'])].join(', ')}`,
    );
  }
  photos = (await readGroundTruth()).slice(100, 220);
  service = await startTestService(await tempDataDir('interop'), { WORKERS: '2', RESULT_CACHE: 'off' });
  // The reference: every photo these tests send, classified once through the JSON API.
  for (let i = 0; i < photos.length; i += 16) {
    const batch = photos.slice(i, i + 16);
    const { status, json } = await postForm(
      service.web.url,
      '/api/v1/classify',
      await Promise.all(batch.map(async (p) => ({ field: 'image', name: p.file, bytes: await readFile(p.path) }))),
    );
    if (status !== 200) throw new Error(`reference classification: ${status} ${JSON.stringify(json)}`);
    for (const [j, result] of (json.results as { label: string }[]).entries()) labels.set(batch[j]!.file, result.label);
  }
});

test.after.always(async () => {
  await service?.stop();
});

/** The photo for one test (each test its own, so no answer can come from another test's upload). */
const photo = (n: number): GroundTruth => photos[n]!;
const stemOf = (name: string) => name.replace(/\.[^.]*$/, '');
const expected = (p: GroundTruth, name = p.file, separator = ',') => `${stemOf(name)}${separator}${labels.get(p.file)}`;

async function python(
  kase: string,
  route: string,
  p: GroundTruth,
  name = p.file,
  field = 'myfile',
): Promise<{ status: number; body: string }> {
  const { stdout } = await run(PYTHON, [CLIENTS, kase, `${service.web.url}${route}`, p.path, name, field]);
  return JSON.parse(stdout) as { status: number; body: string };
}

/** A command's stdout, and curl's / wget's status line where asked for. */
async function tool(file: string, args: string[]): Promise<string> {
  return (await run(file, args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
}

/** `curl ... -w '\n%{http_code}'`: the body and the status. */
async function curl(args: string[]): Promise<{ status: number; body: string }> {
  const out = await tool(TOOLS.curl!, ['-sS', '-w', '\n%{http_code}', ...args]);
  const cut = out.lastIndexOf('\n');
  return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
}

const apiLabel = (body: string) => (JSON.parse(body) as { results: { file: string; label: string }[] }).results[0]!;

test('requests, files= with a bare file object (no Content-Type on the part): the README snippet of issue 18', async (t) => {
  const p = photo(0);
  t.deepEqual(await python('requests-file', '/', p), { status: 200, body: expected(p) });
});

test('requests, files= with a (name, bytes, type) tuple: image/jpeg, application/octet-stream and a wrong image type', async (t) => {
  for (const [i, kase] of ['requests-tuple', 'requests-octet-stream', 'requests-wrong-type'].entries()) {
    const p = photo(1 + i);
    const name = `from ${kase} (1).jpg`;
    t.deepEqual(await python(kase, '/', p, name), { status: 200, body: expected(p, name) }, kase);
  }
});

test('requests, a generator body (chunked transfer encoding) of a multipart form', async (t) => {
  const p = photo(4);
  t.deepEqual(await python('requests-stream', '/', p), { status: 200, body: expected(p) });
});

test('a part named only by RFC 5987 filename* is answered with its decoded name', async (t) => {
  const p = photo(5);
  t.deepEqual(await python('requests-filename-star', '/', p, 'рыбка.jpg'), {
    status: 200,
    body: expected(p, 'рыбка.jpg'),
  });
});

test('requests, a raw image body on the API sent chunked from a generator', async (t) => {
  const p = photo(6);
  const { status, body } = await python('requests-raw-stream', '/api/v1/classify', p, 'raw.jpg');
  t.is(status, 200, body);
  t.like(apiLabel(body), { file: 'raw.jpg', label: labels.get(p.file) });
});

test('httpx, files= with a file object and with a (name, bytes) tuple', async (t) => {
  const p = photo(7);
  t.deepEqual(await python('httpx-file', '/', p), { status: 200, body: expected(p) });
  const q = photo(8);
  t.deepEqual(await python('httpx-tuple', '/', q, 'httpx.jpg'), { status: 200, body: expected(q, 'httpx.jpg') });
});

test('HTTPie --form with a file field', async (t) => {
  const p = photo(9);
  const body = await tool(TOOLS.httpie!, [
    '--ignore-stdin',
    '--check-status',
    '--body',
    '--form',
    'POST',
    `${service.web.url}/`,
    `myfile@${p.path}`,
  ]);
  t.is(body.trimEnd(), expected(p));
});

test('curl -F: with Expect: 100-continue, without it, chunked, and a part typed application/octet-stream', async (t) => {
  const url = `${service.web.url}/`;
  const variants: [string, string[]][] = [
    ['Expect: 100-continue', ['-H', 'Expect: 100-continue']],
    ['no Expect', ['-H', 'Expect:']],
    ['chunked', ['-H', 'Transfer-Encoding: chunked']],
  ];
  for (const [i, [what, headers]] of variants.entries()) {
    const p = photo(10 + i);
    t.deepEqual(await curl([...headers, '-F', `myfile=@${p.path}`, url]), { status: 200, body: expected(p) }, what);
  }
  const p = photo(13);
  t.deepEqual(
    await curl(['-F', `myfile=@${p.path};type=application/octet-stream;filename=octet.jpg`, url]),
    { status: 200, body: expected(p, 'octet.jpg') },
    'octet-stream',
  );
});

test('curl --data-binary (no type given: application/x-www-form-urlencoded) and with an image type, on the API', async (t) => {
  const p = photo(14);
  const plain = await curl(['--data-binary', `@${p.path}`, `${service.web.url}/api/v1/classify?name=plain.jpg`]);
  t.is(plain.status, 200, plain.body);
  t.like(apiLabel(plain.body), { file: 'plain.jpg', label: labels.get(p.file) });
  const q = photo(15);
  const typed = await curl([
    '--data-binary',
    `@${q.path}`,
    '-H',
    'Content-Type: image/jpeg',
    '-H',
    'X-File-Name: typed.jpg',
    `${service.web.url}/api/v1/classify`,
  ]);
  t.is(typed.status, 200, typed.body);
  t.like(apiLabel(typed.body), { file: 'typed.jpg', label: labels.get(q.file) });
});

test('wget --post-file on the API: with its default type and with Content-Type: image/jpeg', async (t) => {
  for (const [i, headers] of [[], ['--header=Content-Type: image/jpeg']].entries()) {
    const p = photo(16 + i);
    const body = await tool(TOOLS.wget!, [
      '-q',
      '-O',
      '-',
      ...headers,
      `--post-file=${p.path}`,
      `${service.web.url}/api/v1/classify?name=wget-${i}.jpg`,
    ]);
    t.like(apiLabel(body), { file: `wget-${i}.jpg`, label: labels.get(p.file) }, headers.join(' ') || 'default type');
  }
});

test('100 requests threads at once, each with its own photo: every answer is its own', async (t) => {
  const mine = photos.slice(20, 120);
  const child = spawn(PYTHON, [CLIENTS, 'threads', `${service.web.url}/`, 'myfile'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  child.stdin.end(mine.map((p, i) => `${p.path}\tthread-${i}-${p.file}\n`).join(''));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(code, 0);
  const answers = out
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { name: string; status: number; body: string });
  t.is(answers.length, mine.length);
  for (const [i, p] of mine.entries()) {
    const name = `thread-${i}-${p.file}`;
    t.deepEqual(answers[i], { name, status: 200, body: expected(p, name) });
  }
});

test('CLASSIC_FIELD=inputFile and CLASSIC_SEPARATOR=":" (newer graders): requests posts inputFile and reads <name>:<label>', async (t) => {
  const variant = await startTestService(await tempDataDir('interop-variant'), {
    WORKERS: '1',
    CLASSIC_FIELD: 'inputFile',
    CLASSIC_SEPARATOR: ':',
  });
  t.teardown(() => variant.stop());
  const p = photo(18);
  const { stdout } = await run(PYTHON, [CLIENTS, 'requests-file', `${variant.web.url}/`, p.path, p.file, 'inputFile']);
  t.deepEqual(JSON.parse(stdout), { status: 200, body: expected(p, p.file, ':') });
  // The classic output object says the same.
  const object = await variant.clients.s3.send(
    new GetObjectCommand({ Bucket: variant.config.names.outputBucket, Key: stemOf(p.file) }),
  );
  t.is(await object.Body!.transformToString(), expected(p, p.file, ':'));
  // The old field is refused, naming the one expected.
  const { stdout: wrong } = await run(PYTHON, [
    CLIENTS,
    'requests-file',
    `${variant.web.url}/`,
    p.path,
    p.file,
    'myfile',
  ]);
  const refused = JSON.parse(wrong) as { status: number; body: string };
  t.is(refused.status, 400);
  t.like(JSON.parse(refused.body), {
    error: { code: 'NO_FILE', message: 'no file in form field "inputFile" (got fields: myfile)' },
  });
});
