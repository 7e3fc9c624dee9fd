/**
 * The workload generator against a small real HTTP server started here (plain node:http, which
 * reads the multipart upload, counts requests in flight and answers `<stem>,<label>` — or, for
 * chosen files, another file's name, a 500 JSON error, a wrong label, ...). Real photos from the
 * ImageNet sample, copied into a temp folder; labels checked against its real ground-truth.csv.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { describe, percentile, percentiles } from '../lib/stats.js';
import {
  formatRow,
  formatSummary,
  GroundTruth,
  parseAnswer,
  parseCsv,
  parseWorkloadArgs,
  prepareWorkload,
  runWorkload,
  type UploadRow,
  type WorkloadPlan,
  WorkloadUsageError,
} from '../tools/workload/workload.js';

const projectRoot = resolve(fileURLToPath(new URL('..', import.meta.url)));
const SAMPLE_DIR = resolve(projectRoot, '../shared/datasets/imagenet-sample-250');
const GROUND_TRUTH = join(SAMPLE_DIR, 'ground-truth.csv');

/** The photos used, with their short labels as written in ground-truth.csv (typed here, not parsed). */
const PHOTOS: Record<string, string> = {
  n01440764_tench: 'tench',
  n01494475_hammerhead: 'hammerhead',
  n01514859_hen: 'hen',
  n01532829_house_finch: 'house finch',
  n01560419_bulbul: 'bulbul',
  n01601694_water_ouzel: 'water ouzel',
  n01622779_great_grey_owl: 'great grey owl',
  n01689811_alligator_lizard: 'alligator lizard',
};
const STEMS = Object.keys(PHOTOS).sort();

let photoDir: string;
let scratch: string;

test.before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'eir-workload-'));
  photoDir = join(scratch, 'photos');
  await mkdir(photoDir);
  for (const stem of STEMS) {
    // One copy with a lower-case `.jpg`: found case-insensitively, and by stem in the ground truth.
    const target = stem === 'n01560419_bulbul' ? `${stem}.jpg` : `${stem}.JPEG`;
    await copyFile(join(SAMPLE_DIR, `${stem}.JPEG`), join(photoDir, target));
  }
  // Not uploaded: not an image, a hidden file, a folder with an image's name.
  await writeFile(join(photoDir, 'notes.txt'), 'not a photo\n');
  await copyFile(join(SAMPLE_DIR, 'n01440764_tench.JPEG'), join(photoDir, '._n01440764_tench.JPEG'));
  await mkdir(join(photoDir, 'folder.jpg'));
});

test.after.always(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

// -------------------------------------------------------------------------------------------------
// The fake service

type Behaviour =
  | { kind: 'wrong-owner'; answerAs: string }
  | { kind: 'error-500' }
  | { kind: 'error-503-text' }
  | { kind: 'wrong-label'; label: string }
  | { kind: 'malformed' }
  | { kind: 'hang' };

interface FakeService {
  readonly url: string;
  /** Most requests in flight at once, as the server saw them. */
  readonly maxInFlight: () => number;
  /** Requests per uploaded file name. */
  readonly received: Map<string, number>;
  readonly close: () => Promise<void>;
}

/** Extracts the file part of field `myfile` from a multipart body. */
function readMultipart(req: IncomingMessage, body: Buffer): { filename: string; bytes: Buffer } | undefined {
  const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(req.headers['content-type'] ?? '');
  if (!boundary) return undefined;
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]}`);
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const headersStart = at + delimiter.length + 2; // past the CRLF
    const headersEnd = body.indexOf('\r\n\r\n', headersStart);
    const nextAt = body.indexOf(delimiter, headersStart);
    if (headersEnd < 0 || nextAt < 0) return undefined;
    const headers = body.subarray(headersStart, headersEnd).toString('latin1');
    const name = /content-disposition:[^\r\n]*\bname="([^"]*)"/i.exec(headers)?.[1];
    const filename = /content-disposition:[^\r\n]*\bfilename="([^"]*)"/i.exec(headers)?.[1];
    if (name === 'myfile' && filename !== undefined)
      return { filename, bytes: body.subarray(headersEnd + 4, nextAt - 2) };
    at = nextAt;
  }
  return undefined;
}

const stemOfName = (name: string): string => name.slice(0, name.lastIndexOf('.'));

/**
 * `gate`: the first answers wait until this many requests have arrived, so a client that respects
 * its limit is seen at exactly that limit (and one that does not, above it) without timing luck.
 * `onRequest` sees the running count of arrivals.
 */
async function startFakeService(
  options: { behaviours?: Record<string, Behaviour>; gate?: number; onRequest?: (arrived: number) => void } = {},
): Promise<FakeService> {
  const behaviours = options.behaviours ?? {};
  let inFlight = 0;
  let maxInFlight = 0;
  let arrived = 0;
  const received = new Map<string, number>();
  let openGate!: () => void;
  const gateOpen = new Promise<void>((r) => (openGate = r));
  if (!options.gate) openGate();

  const handle = async (req: IncomingMessage, res: ServerResponse, done: () => void): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const part = readMultipart(req, Buffer.concat(chunks));
    await gateOpen;
    await new Promise((r) => setTimeout(r, 5)); // let requests overlap
    const answer = (status: number, type: string, body: string): void => {
      done(); // before the answer leaves: the client cannot send its next request earlier
      res.writeHead(status, { 'content-type': type }).end(body);
    };
    if (req.method !== 'POST' || req.url !== '/')
      return answer(404, 'application/json', JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no route' } }));
    if (!part || part.bytes.length === 0)
      return answer(
        400,
        'application/json',
        JSON.stringify({ error: { code: 'NO_FILE', message: 'no file in myfile' } }),
      );
    if (part.bytes[0] !== 0xff || part.bytes[1] !== 0xd8 || part.bytes[2] !== 0xff) {
      return answer(
        415,
        'application/json',
        JSON.stringify({ error: { code: 'NOT_AN_IMAGE', message: 'not a JPEG' } }),
      );
    }
    received.set(part.filename, (received.get(part.filename) ?? 0) + 1);
    const stem = stemOfName(part.filename);
    const label = PHOTOS[stem] ?? 'unknown';
    const behaviour = behaviours[stem];
    switch (behaviour?.kind) {
      case 'hang':
        return; // never answers; the client's timeout (or abort) ends it
      case 'wrong-owner':
        return answer(200, 'text/plain', `${behaviour.answerAs},${PHOTOS[behaviour.answerAs]}`);
      case 'error-500':
        return answer(
          500,
          'application/json',
          JSON.stringify({ error: { code: 'INTERNAL', message: 'internal error; see the service log' } }),
        );
      case 'error-503-text':
        return answer(503, 'text/plain', 'Service Unavailable');
      case 'wrong-label':
        return answer(200, 'text/plain', `${stem},${behaviour.label}`);
      case 'malformed':
        return answer(200, 'text/plain', label);
      default:
        return answer(200, 'text/plain', `${stem},${label}`);
    }
  };

  const server = createServer((req, res) => {
    arrived++;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let counted = true;
    const done = (): void => {
      if (counted) inFlight--;
      counted = false;
    };
    res.on('close', done); // a client that gave up
    if (options.gate && arrived >= options.gate) openGate();
    options.onRequest?.(arrived);
    handle(req, res, done).catch((err: unknown) => {
      done();
      res.destroy(err as Error);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    maxInFlight: () => maxInFlight,
    received,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function plan(url: string, extra: string[] = []): Promise<WorkloadPlan> {
  return prepareWorkload(
    parseWorkloadArgs(['--url', url, '--dir', photoDir, '--ground-truth', GROUND_TRUTH, ...extra]),
  );
}

const byFile = (rows: readonly UploadRow[], stem: string): UploadRow => rows.find((r) => r.stem === stem)!;

// -------------------------------------------------------------------------------------------------
// Runs

test('mixed answers: exact counts by kind, accuracy against the ground truth, at most --concurrency in flight', async (t) => {
  const service = await startFakeService({
    gate: 3,
    behaviours: {
      n01494475_hammerhead: { kind: 'wrong-owner', answerAs: 'n01440764_tench' },
      n01514859_hen: { kind: 'error-500' },
      n01532829_house_finch: { kind: 'wrong-label', label: 'goldfinch' },
      n01601694_water_ouzel: { kind: 'error-503-text' },
    },
  });
  t.teardown(service.close);
  const p = await plan(service.url, ['--concurrency', '3']);
  t.deepEqual(
    p.files.map((f) => f.name),
    STEMS.map((s) => (s === 'n01560419_bulbul' ? `${s}.jpg` : `${s}.JPEG`)),
    'every photo once, nothing else from the folder',
  );
  t.deepEqual(p.warnings, []);

  const seen: UploadRow[] = [];
  const { summary, uploads } = await runWorkload(p, { onResult: (row) => seen.push(row) });

  t.is(seen.length, 8, 'every answer reported as it arrives');
  t.deepEqual(
    uploads.map((r) => r.seq),
    [0, 1, 2, 3, 4, 5, 6, 7],
  );
  t.like(summary, {
    planned: 8,
    sent: 8,
    answered: 6,
    rightOwner: 5,
    wrongOwner: 1,
    badAnswers: 0,
    failed: 2,
    aborted: false,
    passed: false,
    accuracy: { correct: 4, answered: 6, unknown: 0 }, // tench, bulbul (by stem: .jpg), owl, lizard
  });
  t.is(summary.accuracy!.ratio, 4 / 6);
  t.deepEqual(summary.errors, [
    { status: 500, code: 'INTERNAL', count: 1 },
    { status: 503, code: 'HTTP_503', count: 1 },
  ]);
  t.is(summary.latencyMs?.count, 6, 'latency over the 200 answers');

  const hammerhead = byFile(uploads, 'n01494475_hammerhead');
  t.like(hammerhead, { outcome: 'wrong-owner', status: 200, name: 'n01440764_tench', correct: false });
  t.like(byFile(uploads, 'n01532829_house_finch'), {
    outcome: 'ok',
    label: 'goldfinch',
    expected: 'house finch',
    correct: false,
  });
  t.like(byFile(uploads, 'n01560419_bulbul'), { outcome: 'ok', expected: 'bulbul', correct: true });
  t.like(byFile(uploads, 'n01514859_hen'), {
    outcome: 'http-error',
    status: 500,
    error: { code: 'INTERNAL', message: 'internal error; see the service log' },
  });
  t.regex(formatRow(hammerhead), /^n01494475_hammerhead\.JPEG -> n01440764_tench,tench \([\d.]+ ms\) {2}\[WRONG_OWNER/);
  t.regex(formatRow(byFile(uploads, 'n01514859_hen')), /^n01514859_hen\.JPEG -> 500 INTERNAL: internal error/);
  t.regex(formatSummary(summary), /FAIL: 3 of 8 uploads/);

  t.is(service.maxInFlight(), 3, 'the server saw the limit reached and never exceeded');
  t.is(summary.maxInFlight, 3);
  t.is(
    [...service.received.values()].reduce((a, b) => a + b, 0),
    8,
  );
});

test('--count beyond the folder cycles through the files; all right → passed', async (t) => {
  const service = await startFakeService({ gate: 4 });
  t.teardown(service.close);
  const p = await plan(service.url, ['--concurrency', '4', '--count', '20']);
  const { summary } = await runWorkload(p);
  t.like(summary, {
    planned: 20,
    sent: 20,
    answered: 20,
    rightOwner: 20,
    wrongOwner: 0,
    failed: 0,
    passed: true,
    accuracy: { correct: 20, answered: 20 },
  });
  t.deepEqual(summary.errors, []);
  // Sorted files 0..7, uploads 0..19: the first four files go three times, the others twice.
  const counts = p.files.map((f) => service.received.get(f.name));
  t.deepEqual(counts, [3, 3, 3, 3, 2, 2, 2, 2]);
  t.is(service.maxInFlight(), 4);
  t.regex(formatSummary(summary), /PASS: all 20 uploads/);
});

test('no answer in time, an answer that is not `<name>,<label>`, and nobody listening', async (t) => {
  const service = await startFakeService({
    behaviours: { n01440764_tench: { kind: 'hang' }, n01514859_hen: { kind: 'malformed' } },
  });
  t.teardown(service.close);
  // 3 s: far above a normal answer here (a few ms), even on a loaded machine.
  const { summary, uploads } = await runWorkload(await plan(service.url, ['--timeout-ms', '3000']));
  t.like(summary, {
    sent: 8,
    answered: 7,
    rightOwner: 6,
    badAnswers: 1,
    wrongOwner: 0,
    failed: 1,
    passed: false,
    accuracy: { correct: 6, answered: 7 },
  });
  t.deepEqual(summary.errors, [{ status: null, code: 'CLIENT_TIMEOUT', count: 1 }]);
  t.like(byFile(uploads, 'n01440764_tench'), { outcome: 'timeout', status: null });
  t.like(byFile(uploads, 'n01514859_hen'), { outcome: 'bad-answer', answer: 'hen' });

  // A port nobody listens on.
  const gone = await startFakeService();
  await gone.close();
  const refused = await runWorkload(await plan(gone.url, ['--count', '3']));
  t.like(refused.summary, { sent: 3, answered: 0, failed: 3, passed: false, latencyMs: undefined });
  t.deepEqual(refused.summary.errors, [{ status: null, code: 'ECONNREFUSED', count: 3 }]);
  t.regex(formatSummary(refused.summary), /latency +n\/a/);
});

test('aborting stops sending and cancels the uploads in flight', async (t) => {
  const stop = new AbortController();
  const service = await startFakeService({
    behaviours: Object.fromEntries(STEMS.map((s) => [s, { kind: 'hang' } as Behaviour])),
    onRequest: (arrived) => {
      if (arrived === 2) setTimeout(() => stop.abort(), 20);
    },
  });
  t.teardown(service.close);
  const { summary, uploads } = await runWorkload(await plan(service.url, ['--concurrency', '2']), {
    signal: stop.signal,
  });
  t.like(summary, { planned: 8, sent: 2, answered: 0, aborted: true, passed: false });
  t.deepEqual(summary.errors, [{ status: null, code: 'ABORTED', count: 2 }]);
  t.deepEqual(
    uploads.map((r) => r.outcome),
    ['aborted', 'aborted'],
  );
});

// -------------------------------------------------------------------------------------------------
// The CLI, as `npm run workload` runs it

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', './scripts/lib/preload.mjs', join(projectRoot, 'scripts/workload.ts'), ...args],
      { cwd: projectRoot, timeout: 60_000 },
      (err, stdout, stderr) => {
        done({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
      },
    );
  });
}

test('CLI: prints each answer and the summary, writes --json, exits 1 on a wrong owner / 0 when all is right / 2 on bad usage', async (t) => {
  const service = await startFakeService({
    behaviours: {
      n01494475_hammerhead: { kind: 'wrong-owner', answerAs: 'n01440764_tench' },
      n01514859_hen: { kind: 'error-500' },
    },
  });
  t.teardown(service.close);
  const out = join(scratch, 'report.json');
  const failing = await runCli([
    '--url',
    service.url,
    '--dir',
    photoDir,
    '--concurrency',
    '3',
    '--ground-truth',
    GROUND_TRUTH,
    '--json',
    out,
  ]);
  t.is(failing.code, 1, failing.stderr);
  t.regex(failing.stdout, /^n01440764_tench\.JPEG -> n01440764_tench,tench \([\d.]+ ms\)$/m);
  t.regex(failing.stdout, /^n01514859_hen\.JPEG -> 500 INTERNAL: /m);
  t.regex(failing.stdout, /^ {2}wrong owner +1$/m);
  t.regex(failing.stdout, /^ {4}500 +INTERNAL +1$/m);
  t.regex(failing.stdout, /^ {2}accuracy +6\/7 = 85\.7%$/m);
  const report = JSON.parse(await readFile(out, 'utf8')) as {
    summary: { wrongOwner: number; answered: number };
    uploads: UploadRow[];
  };
  t.like(report.summary, { wrongOwner: 1, answered: 7 });
  t.is(report.uploads.length, 8);

  const healthy = await startFakeService();
  t.teardown(healthy.close);
  const passing = await runCli(['--url', healthy.url, '--dir', photoDir, '--count', '10']);
  t.is(passing.code, 0, passing.stdout + passing.stderr);
  t.regex(passing.stdout, /PASS: all 10 uploads/);
  t.notRegex(passing.stdout, /accuracy/, 'no ground truth, no accuracy');

  const usage = await runCli(['--url', healthy.url, '--dir', photoDir, '--concurrency', 'lots']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /--concurrency must be an integer in 1\.\.10000, got "lots"/);
  t.is(usage.stdout, '');
});

// -------------------------------------------------------------------------------------------------
// Options and inputs

test('options: each bad one is a WorkloadUsageError naming it', async (t) => {
  const ok = ['--url', 'http://127.0.0.1:3000', '--dir', 'x'];
  const bad = (argv: string[], option: string | undefined, message: RegExp): void => {
    const err = t.throws(() => parseWorkloadArgs(argv), { instanceOf: WorkloadUsageError, message }, argv.join(' '));
    t.is(err?.option, option);
  };
  bad(['--dir', 'x'], '--url', /--url is required/);
  bad(['--url', 'localhost:3000', '--dir', 'x'], '--url', /--url must be an http\(s\) URL/);
  bad(['--url', 'not a url', '--dir', 'x'], '--url', /--url must be an http\(s\) URL.*"not a url"/);
  bad(['--url', 'http://127.0.0.1:3000'], '--dir', /--dir is required/);
  bad([...ok, '--concurrency', '0'], '--concurrency', /--concurrency must be an integer in 1\.\.10000, got "0"/);
  bad([...ok, '--concurrency', '2.5'], '--concurrency', /--concurrency/);
  bad([...ok, '--concurrency', '10001'], '--concurrency', /--concurrency/);
  bad([...ok, '--count', '-3'], '--count', /--count/);
  bad([...ok, '--count', '12abc'], '--count', /--count must be an integer.*"12abc"/);
  bad([...ok, '--timeout-ms', '1e3'], '--timeout-ms', /--timeout-ms/);
  bad([...ok, '--conc', '5'], '--conc', /Unknown option '--conc'/);
  bad([...ok, 'extra'], undefined, /positional|extra/i);

  const parsed = parseWorkloadArgs(
    ['--url', 'http://127.0.0.1:3000', '--dir', 'photos', '--json', 'out.json'],
    '/data',
  );
  t.like(parsed, {
    dir: '/data/photos',
    json: '/data/out.json',
    concurrency: 100,
    timeoutMs: 120_000,
    count: undefined,
    groundTruth: undefined,
  });
  t.is(parsed.url.href, 'http://127.0.0.1:3000/');

  const prepare = (argv: string[]) => prepareWorkload(parseWorkloadArgs(['--url', 'http://127.0.0.1:3000', ...argv]));
  await t.throwsAsync(prepare(['--dir', join(scratch, 'missing')]), {
    instanceOf: WorkloadUsageError,
    message: /--dir .*missing is not a folder/,
  });
  const empty = await mkdtemp(join(scratch, 'empty-'));
  await writeFile(join(empty, 'readme.md'), '#');
  await t.throwsAsync(prepare(['--dir', empty]), {
    instanceOf: WorkloadUsageError,
    message: /--dir .* holds no images/,
  });
  await t.throwsAsync(prepare(['--dir', photoDir, '--json', join(scratch, 'no/such/dir/out.json')]), {
    instanceOf: WorkloadUsageError,
    message: /--json .*does not exist/,
  });
  await t.throwsAsync(prepare(['--dir', photoDir, '--ground-truth', join(scratch, 'none.csv')]), {
    instanceOf: WorkloadUsageError,
    message: /--ground-truth .*cannot read it \(ENOENT\)/,
  });
  const headerless = join(scratch, 'headerless.csv');
  await writeFile(headerless, 'n01440764_tench.JPEG,0,n01440764,tench\n');
  await t.throwsAsync(prepare(['--dir', photoDir, '--ground-truth', headerless]), {
    instanceOf: WorkloadUsageError,
    message: /--ground-truth .*header must name the columns "file" and "label"/,
  });

  // Files the ground truth does not know, and names the service refuses, are announced; names
  // with spaces are fine (the service echoes them).
  const odd = await mkdtemp(join(scratch, 'odd-'));
  await copyFile(join(SAMPLE_DIR, 'n01440764_tench.JPEG'), join(odd, 'my tench.jpg'));
  await copyFile(join(SAMPLE_DIR, 'n01514859_hen.JPEG'), join(odd, 'n01514859_hen.JPEG'));
  await copyFile(join(SAMPLE_DIR, 'n01514859_hen.JPEG'), join(odd, 'tab\there.jpg'));
  const oddPlan = await prepare(['--dir', odd, '--ground-truth', GROUND_TRUTH]);
  t.is(oddPlan.warnings.length, 2);
  t.regex(oddPlan.warnings[0]!, /does not know 2 of 3 files.*my tench\.jpg/);
  t.regex(oddPlan.warnings[1]!, /1 file name\(s\) the service refuses.*tab\there\.jpg/);
});

test('ground truth: quoted labels with commas, CRLF, BOM, "" escapes; short label is the text before the first comma', async (t) => {
  const truth = GroundTruth.parse(await readFile(GROUND_TRUTH, 'utf8'), GROUND_TRUTH);
  t.is(truth.size, 250);
  for (const [stem, label] of Object.entries(PHOTOS)) t.is(truth.labelOf(`${stem}.JPEG`), label, stem);
  t.is(truth.labelOf('n01440764_tench.png'), 'tench', 'by stem when the extension differs');
  t.is(truth.labelOf('unknown.jpg'), undefined);

  t.deepEqual(
    parseCsv('\uFEFFfile,label\r\na.jpg,"x, y"\r\n"b,1.jpg","say ""hi"", please"\r\n\r\nc.jpg,"two\nlines"\n'),
    [
      { line: 1, fields: ['file', 'label'] },
      { line: 2, fields: ['a.jpg', 'x, y'] },
      { line: 3, fields: ['b,1.jpg', 'say "hi", please'] },
      { line: 5, fields: ['c.jpg', 'two\nlines'] },
    ],
  );
  t.deepEqual(parseCsv('a,,\n'), [{ line: 1, fields: ['a', '', ''] }]);
  t.throws(() => parseCsv('file,label\na,"open'), { message: /unterminated quoted field starting on line 2/ });
  t.throws(() => GroundTruth.parse('label,file\na.jpg\n', 'gt.csv'), {
    instanceOf: WorkloadUsageError,
    message: /line 2 has 1 fields, the header 2/,
  });
  t.throws(() => GroundTruth.parse('file,label\na.jpg,cat\na.jpg,dog\n', 'gt.csv'), {
    message: /line 3 gives a\.jpg the label "dog"/,
  });
});

test('answers: `<name>,<label>`, the name split off at the first comma unless it is the expected one', (t) => {
  t.deepEqual(parseAnswer('n01_hen,hen', 'n01_hen'), { name: 'n01_hen', label: 'hen' });
  t.deepEqual(parseAnswer('n01_hen,hen\n', 'n01_hen'), { name: 'n01_hen', label: 'hen' });
  t.deepEqual(parseAnswer('a,b,house finch', 'a,b'), { name: 'a,b', label: 'house finch' });
  t.deepEqual(parseAnswer('other,house finch', 'a,b'), { name: 'other', label: 'house finch' });
  t.is(parseAnswer('hen', 'n01_hen'), undefined);
  t.is(parseAnswer('n01_hen,', 'n01_hen'), undefined);
  t.is(parseAnswer(',hen', 'n01_hen'), undefined);
  t.is(parseAnswer('n01_hen,hen\nn02_cock,cock', 'n01_hen'), undefined);
});

test('stats: nearest-rank and linear percentiles, describe', (t) => {
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted on purpose
  t.deepEqual(percentiles(hundred, [0, 1, 50, 95, 99, 100]), [1, 1, 50, 95, 99, 100]);
  t.is(percentile([1, 2, 3, 4], 50), 2);
  t.is(percentile([1, 2, 3, 4], 50, { method: 'linear' }), 2.5);
  t.is(percentile([10, 20, 30, 40, 50], 90, { method: 'linear' }), 46);
  t.is(percentile([7], 99), 7);
  t.is(percentile([3, 1, 2], 100), 3);
  t.deepEqual(hundred.slice(0, 3), [100, 99, 98], 'the input is not reordered');
  t.deepEqual(describe([4, 1, 3, 2]), { count: 4, min: 1, max: 4, mean: 2.5, p50: 2, p90: 4, p95: 4, p99: 4 });
  t.is(describe([]), undefined);
  t.throws(() => percentile([], 50), { instanceOf: RangeError });
  t.throws(() => percentile([1], 101), { instanceOf: RangeError });
  t.throws(() => percentile([1, Number.NaN], 50), { instanceOf: RangeError });
});
