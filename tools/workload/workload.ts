/**
 * A workload generator for the classic protocol, like the CSE546 one: `POST /` every image of a
 * folder (multipart field `myfile`) with at most `concurrency` requests in flight, check each
 * `<name>,<label>` answer — the name must be the uploaded file's stem, the label (when ground truth
 * is given) the short label of that photo's class — and summarize.
 *
 *   parseWorkloadArgs(argv)   → WorkloadOptions   (syntax; throws WorkloadUsageError)
 *   prepareWorkload(options)  → WorkloadPlan      (the folder, the ground truth, the --json path)
 *   runWorkload(plan, hooks)  → WorkloadReport    (never throws for a failed upload: it is a row)
 *   formatRow / formatSummary                     (the text the CLI prints)
 */

import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ServiceError } from '../../lib/errors.js';
import { type Distribution, describe } from '../../lib/stats.js';
import { shortLabel } from '../../models/processing.js';
import { fileNameProblem, MAX_CLIENT_NAME_BYTES, stem } from '../../pipeline/contract/keys.js';

// ---------------------------------------------------------------------------------------------
// Options

export const WORKLOAD_USAGE =
  'usage: npm run workload -- --url URL --dir FOLDER [--concurrency N=100] [--count N] [--ground-truth CSV] [--json OUT.json] [--timeout-ms MS=120000]';

export const DEFAULT_CONCURRENCY = 100;
export const DEFAULT_TIMEOUT_MS = 120_000;
export const MAX_CONCURRENCY = 10_000;

/** Extensions uploaded (compared case-insensitively); anything else in the folder is skipped. */
export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.gif', '.webp', '.tif', '.tiff'];

const MIME: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
};

/** A bad command line or an unusable input; `option` names the culprit (`--concurrency`). */
export class WorkloadUsageError extends ServiceError<'USAGE'> {
  override readonly name = 'WorkloadUsageError';

  /** A usage error about `option` (e.g. `--dir`). */
  static of(message: string, option?: string): WorkloadUsageError {
    return new WorkloadUsageError('USAGE', message, option === undefined ? {} : { option });
  }

  /** The option at fault, when one is. */
  get option(): string | undefined {
    return this.context.option as string | undefined;
  }
}

export interface WorkloadOptions {
  /** Where to POST, exactly (`http://127.0.0.1:3000` → `http://127.0.0.1:3000/`). */
  readonly url: URL;
  /** Absolute. */
  readonly dir: string;
  readonly concurrency: number;
  /** Uploads to send; undefined: one per file. */
  readonly count: number | undefined;
  /** Absolute, or undefined. */
  readonly groundTruth: string | undefined;
  /** Absolute, or undefined. */
  readonly json: string | undefined;
  readonly timeoutMs: number;
}

export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

function positiveInteger(
  option: string,
  raw: string | undefined,
  fallback: number | undefined,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (raw === undefined) return fallback;
  const text = raw.trim();
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw WorkloadUsageError.of(`${option} must be an integer in 1..${max}, got "${raw}"`, option);
  }
  return value;
}

function parseUrl(raw: string | undefined): URL {
  if (raw === undefined) throw WorkloadUsageError.of(`--url is required\n${WORKLOAD_USAGE}`, '--url');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw WorkloadUsageError.of(`--url must be an http(s) URL such as http://127.0.0.1:3000, got "${raw}"`, '--url');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw WorkloadUsageError.of(`--url must be an http(s) URL such as http://127.0.0.1:3000, got "${raw}"`, '--url');
  }
  return url;
}

/**
 * The command line, checked for syntax and ranges (nothing is read from disk yet). Relative paths
 * are resolved against `cwd`.
 */
export function parseWorkloadArgs(argv: readonly string[], cwd = process.cwd()): WorkloadOptions {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        url: { type: 'string' },
        dir: { type: 'string' },
        concurrency: { type: 'string' },
        count: { type: 'string' },
        'ground-truth': { type: 'string' },
        json: { type: 'string' },
        'timeout-ms': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }) as { values: Record<string, string | undefined> });
  } catch (err) {
    // node:util's messages already name the option ("Unknown option '--conc'").
    const option = /'(--?[\w-]+)/.exec((err as Error).message)?.[1];
    throw WorkloadUsageError.of(`${(err as Error).message}\n${WORKLOAD_USAGE}`, option);
  }
  const url = parseUrl(values.url);
  if (values.dir === undefined || values.dir === '')
    throw WorkloadUsageError.of(`--dir is required\n${WORKLOAD_USAGE}`, '--dir');
  for (const option of ['ground-truth', 'json'] as const) {
    if (values[option] === '') throw WorkloadUsageError.of(`--${option} needs a file path`, `--${option}`);
  }
  return {
    url,
    dir: resolve(cwd, values.dir),
    concurrency: positiveInteger('--concurrency', values.concurrency, DEFAULT_CONCURRENCY, MAX_CONCURRENCY)!,
    count: positiveInteger('--count', values.count, undefined),
    groundTruth: values['ground-truth'] === undefined ? undefined : resolve(cwd, values['ground-truth']),
    json: values.json === undefined ? undefined : resolve(cwd, values.json),
    timeoutMs: positiveInteger('--timeout-ms', values['timeout-ms'], DEFAULT_TIMEOUT_MS, 2_147_483_647)!,
  };
}

// ---------------------------------------------------------------------------------------------
// Ground truth

/** RFC 4180 CSV: quoted fields with commas, `""` escapes and line breaks; LF, CRLF or CR; a BOM. */
export function parseCsv(text: string): { line: number; fields: string[] }[] {
  const rows: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  let fieldStarted = false; // distinguishes an empty last field from an empty line
  const endRow = (): void => {
    if (fieldStarted || fields.length > 0) {
      fields.push(field);
      rows.push({ line: rowLine, fields });
    }
    fields = [];
    field = '';
    fieldStarted = false;
  };
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (quoted) {
      if (c === '"') {
        if (body[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === '\n' || (c === '\r' && body[i + 1] !== '\n')) line++;
        field += c;
      }
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      fieldStarted = true;
    } else if (c === ',') {
      fields.push(field);
      field = '';
      fieldStarted = true;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && body[i + 1] === '\n') i++;
      endRow();
      line++;
      rowLine = line;
    } else {
      field += c;
      fieldStarted = true;
    }
  }
  if (quoted) throw new SyntaxError(`unterminated quoted field starting on line ${rowLine}`);
  endRow();
  return rows;
}

/** `goldfish, Carassius auratus` → `goldfish`. */
/** `n01443537_goldfish.JPEG` → `n01443537_goldfish` (the server's rule: the last extension goes). */
/** Expected short labels by file name, with the stem as a fallback (`x.jpg` finds `x.JPEG`). */
export class GroundTruth {
  private readonly byStem = new Map<string, string | null>(); // null: two files, two labels

  constructor(
    readonly source: string,
    private readonly byFile: ReadonlyMap<string, string>,
  ) {
    for (const [file, label] of byFile) {
      const name = stem(file);
      const known = this.byStem.get(name);
      this.byStem.set(name, known === undefined || known === label ? label : null);
    }
  }

  get size(): number {
    return this.byFile.size;
  }

  /** The file names it lists. */
  files(): string[] {
    return [...this.byFile.keys()];
  }

  /** The expected short label of an uploaded file, or undefined when the CSV does not know it. */
  labelOf(fileName: string): string | undefined {
    return this.byFile.get(fileName) ?? this.byStem.get(stem(fileName)) ?? undefined;
  }

  /** Parses `file,...,label` CSV text (other columns ignored, order free). Throws WorkloadUsageError. */
  static parse(text: string, source: string): GroundTruth {
    const bad = (why: string): WorkloadUsageError =>
      WorkloadUsageError.of(`--ground-truth ${source}: ${why}`, '--ground-truth');
    let rows: ReturnType<typeof parseCsv>;
    try {
      rows = parseCsv(text);
    } catch (err) {
      throw bad((err as Error).message);
    }
    const header = rows.shift();
    const columns = header?.fields.map((f) => f.trim().toLowerCase()) ?? [];
    const fileColumn = columns.indexOf('file');
    const labelColumn = columns.indexOf('label');
    if (fileColumn < 0 || labelColumn < 0) {
      throw bad(
        `the header must name the columns "file" and "label" (as in file,class_index,wnid,label), got "${header?.fields.join(',') ?? ''}"`,
      );
    }
    const byFile = new Map<string, string>();
    for (const { line, fields } of rows) {
      if (fields.length !== columns.length)
        throw bad(`line ${line} has ${fields.length} fields, the header ${columns.length}`);
      const file = fields[fileColumn]!.trim();
      const label = shortLabel(fields[labelColumn]!);
      if (file === '' || label === '') throw bad(`line ${line} has an empty file or label`);
      const known = byFile.get(file);
      if (known !== undefined && known !== label)
        throw bad(`line ${line} gives ${file} the label "${label}", an earlier line "${known}"`);
      byFile.set(file, label);
    }
    if (byFile.size === 0) throw bad('no rows');
    return new GroundTruth(source, byFile);
  }

  static async load(path: string): Promise<GroundTruth> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw WorkloadUsageError.of(
        `--ground-truth ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        '--ground-truth',
      );
    }
    return GroundTruth.parse(text, path);
  }
}

// ---------------------------------------------------------------------------------------------
// Plan

export interface ImageFile {
  /** File name in the folder, e.g. `n01440764_tench.JPEG`. */
  readonly name: string;
  readonly path: string;
  readonly stem: string;
  readonly mime: string;
  /** Expected short label, when the ground truth knows the file. */
  readonly expected: string | undefined;
}

export interface WorkloadPlan {
  readonly url: URL;
  readonly dir: string;
  /** Sorted by name; upload i sends files[i % files.length]. */
  readonly files: readonly ImageFile[];
  readonly count: number;
  readonly concurrency: number;
  readonly timeoutMs: number;
  readonly groundTruth: GroundTruth | undefined;
  readonly json: string | undefined;
  /** Things worth saying before the run (files the ground truth does not know, ...). */
  readonly warnings: readonly string[];
}

function listSome(names: readonly string[], max = 5): string {
  return names.slice(0, max).join(', ') + (names.length > max ? `, ... (${names.length - max} more)` : '');
}

/** Reads the folder, the ground truth and checks the --json path: every usage error before any upload. */
export async function prepareWorkload(options: WorkloadOptions): Promise<WorkloadPlan> {
  const dirStat = await stat(options.dir).catch(() => undefined);
  if (!dirStat?.isDirectory()) throw WorkloadUsageError.of(`--dir ${options.dir} is not a folder`, '--dir');

  if (options.json !== undefined) {
    const parent = await stat(dirname(options.json)).catch(() => undefined);
    if (!parent?.isDirectory())
      throw WorkloadUsageError.of(`--json ${options.json}: folder ${dirname(options.json)} does not exist`, '--json');
    const existing = await stat(options.json).catch(() => undefined);
    if (existing?.isDirectory()) throw WorkloadUsageError.of(`--json ${options.json} is a folder`, '--json');
  }

  const groundTruth = options.groundTruth === undefined ? undefined : await GroundTruth.load(options.groundTruth);

  const entries = await readdir(options.dir, { withFileTypes: true });
  const files: ImageFile[] = [];
  for (const entry of entries) {
    const ext = extname(entry.name).toLowerCase();
    if (entry.name.startsWith('.') || !IMAGE_EXTENSIONS.includes(ext)) continue; // dotfiles: `._x.jpg` is macOS metadata
    const path = join(options.dir, entry.name);
    if (!entry.isFile() && !(entry.isSymbolicLink() && (await stat(path).catch(() => undefined))?.isFile())) continue;
    files.push({
      name: entry.name,
      path,
      stem: stem(entry.name),
      mime: MIME[ext]!,
      expected: groundTruth?.labelOf(entry.name),
    });
  }
  files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (files.length === 0) {
    throw WorkloadUsageError.of(
      `--dir ${options.dir} holds no images (${IMAGE_EXTENSIONS.join(' ')}, any case)`,
      '--dir',
    );
  }

  const warnings: string[] = [];
  if (groundTruth) {
    const unknown = files.filter((f) => f.expected === undefined).map((f) => f.name);
    if (unknown.length === files.length) {
      warnings.push(
        `the ground truth knows none of the ${files.length} files: accuracy cannot be measured (${basename(groundTruth.source)} lists e.g. ${listSome(groundTruth.files(), 2)})`,
      );
    } else if (unknown.length > 0) {
      warnings.push(
        `the ground truth does not know ${unknown.length} of ${files.length} files (left out of accuracy): ${listSome(unknown)}`,
      );
    }
  }
  const refused = files.filter((f) => fileNameProblem(f.name) !== undefined).map((f) => f.name);
  if (refused.length > 0) {
    warnings.push(
      `${refused.length} file name(s) the service refuses (control characters, or over ${MAX_CLIENT_NAME_BYTES} bytes): ${listSome(refused)}`,
    );
  }

  return {
    url: options.url,
    dir: options.dir,
    files,
    count: options.count ?? files.length,
    concurrency: options.concurrency,
    timeoutMs: options.timeoutMs,
    groundTruth,
    json: options.json,
    warnings,
  };
}

// ---------------------------------------------------------------------------------------------
// Run

/**
 * - `ok`: 200 with the uploaded file's name
 * - `wrong-owner`: 200 naming another file
 * - `bad-answer`: 200 that is not `<name>,<label>`
 * - `http-error`: any other status
 * - `timeout`: no complete answer within --timeout-ms
 * - `network`: no HTTP answer at all (refused, reset, ...) or the file could not be read
 * - `aborted`: the run was stopped (Ctrl-C) while the upload was in flight
 */
export type UploadOutcome = 'ok' | 'wrong-owner' | 'bad-answer' | 'http-error' | 'timeout' | 'network' | 'aborted';

export interface UploadRow {
  /** 0-based order of sending. */
  readonly seq: number;
  readonly file: string;
  readonly stem: string;
  /** Sent this many ms after the run started. */
  readonly startMs: number;
  /** From sending the request to the last byte of the answer (or the failure). */
  readonly ms: number;
  /** HTTP status; null without an HTTP answer. */
  readonly status: number | null;
  readonly outcome: UploadOutcome;
  /** The 200 body. */
  readonly answer?: string;
  readonly name?: string;
  readonly label?: string;
  readonly expected?: string;
  /** Right owner and right label; only when the ground truth knows the file and the status is 200. */
  readonly correct?: boolean;
  /** Everything but `ok`/`wrong-owner`/`bad-answer`: the JSON error's code, or ours (CLIENT_TIMEOUT, ...). */
  readonly error?: { readonly code: string; readonly message: string };
}

export interface ErrorCount {
  /** null: no HTTP answer (client timeout, connection refused, aborted). */
  readonly status: number | null;
  readonly code: string;
  readonly count: number;
}

export interface WorkloadSummary {
  readonly url: string;
  readonly dir: string;
  readonly files: number;
  readonly planned: number;
  readonly concurrency: number;
  readonly timeoutMs: number;
  /** Uploads started. Less than `planned` only when the run was aborted. */
  readonly sent: number;
  /** 200 answers, whatever they say. */
  readonly answered: number;
  /** 200 naming the uploaded file. */
  readonly rightOwner: number;
  readonly wrongOwner: number;
  /** 200 that is not `<name>,<label>`. */
  readonly badAnswers: number;
  /** Uploads without a 200, by status and code, most frequent first. */
  readonly errors: readonly ErrorCount[];
  readonly failed: number;
  /** With ground truth: correct / answered, over the answered files the ground truth knows. */
  readonly accuracy?: {
    readonly correct: number;
    readonly answered: number;
    readonly ratio: number;
    readonly unknown: number;
  };
  /** First send to last answer. */
  readonly makespanMs: number;
  /** 200 answers per second of makespan. */
  readonly imagesPerSecond: number;
  /** Over the 200 answers. */
  readonly latencyMs: Distribution | undefined;
  /** The most requests this client had in flight at once. */
  readonly maxInFlight: number;
  readonly aborted: boolean;
  /** Every planned upload got a 200 naming its own file. */
  readonly passed: boolean;
}

export interface WorkloadReport {
  readonly summary: WorkloadSummary;
  /** In order of sending. */
  readonly uploads: readonly UploadRow[];
}

export interface RunHooks {
  /** Called as each upload finishes, in order of completion. */
  readonly onResult?: (row: UploadRow, done: number, total: number) => void;
  /** Aborting stops sending and cancels the uploads in flight. */
  readonly signal?: AbortSignal;
}

/** Splits a 200 body into `<name>,<label>`; a name equal to the expected stem wins even if it has commas. */
export function parseAnswer(body: string, expectedStem: string): { name: string; label: string } | undefined {
  const text = body.replace(/\r?\n$/, '');
  if (/[\r\n]/.test(text)) return undefined;
  let name: string;
  let label: string;
  if (text.startsWith(`${expectedStem},`)) {
    name = expectedStem;
    label = text.slice(expectedStem.length + 1);
  } else {
    const comma = text.indexOf(',');
    if (comma < 0) return undefined;
    name = text.slice(0, comma);
    label = text.slice(comma + 1);
  }
  return name === '' || label.trim() === '' ? undefined : { name, label };
}

const round1 = (ms: number): number => Math.round(ms * 10) / 10;

function errorOf(status: number, body: string): { code: string; message: string } {
  try {
    const json = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
    if (json && typeof json.error?.code === 'string') {
      return { code: json.error.code, message: typeof json.error.message === 'string' ? json.error.message : '' };
    }
  } catch {
    // not JSON: fall through
  }
  const text = body.replace(/\s+/g, ' ').trim();
  return { code: `HTTP_${status}`, message: text.length > 200 ? `${text.slice(0, 200)}...` : text };
}

function failureOf(
  err: unknown,
  timeoutMs: number,
  runSignal: AbortSignal | undefined,
): { outcome: UploadOutcome; code: string; message: string } {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError')
    return { outcome: 'timeout', code: 'CLIENT_TIMEOUT', message: `no answer within ${timeoutMs} ms` };
  if (e?.name === 'AbortError' || runSignal?.aborted)
    return { outcome: 'aborted', code: 'ABORTED', message: 'the run was stopped' };
  const cause = e?.cause;
  const code = (e as NodeJS.ErrnoException)?.code ?? cause?.code;
  return { outcome: 'network', code: code ?? 'NETWORK_ERROR', message: cause?.message ?? e?.message ?? String(err) };
}

async function uploadOne(
  plan: WorkloadPlan,
  file: ImageFile,
  seq: number,
  runStart: number,
  signal: AbortSignal | undefined,
): Promise<UploadRow> {
  const base = {
    seq,
    file: file.name,
    stem: file.stem,
    ...(file.expected === undefined ? {} : { expected: file.expected }),
  };
  let bytes: Buffer;
  const readStart = performance.now();
  try {
    bytes = await readFile(file.path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'READ_ERROR';
    return {
      ...base,
      startMs: round1(readStart - runStart),
      ms: 0,
      status: null,
      outcome: 'network',
      error: { code, message: `cannot read ${file.path}: ${(err as Error).message}` },
    };
  }
  const form = new FormData();
  form.append('myfile', new Blob([bytes], { type: file.mime }), file.name);

  const timeout = AbortSignal.timeout(plan.timeoutMs);
  const started = performance.now();
  const elapsed = (): number => round1(performance.now() - started);
  const startMs = round1(started - runStart);
  try {
    const response = await fetch(plan.url, {
      method: 'POST',
      body: form,
      redirect: 'manual', // a redirect is an answer to report, not to follow with a GET
      signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
    });
    const body = await response.text();
    const ms = elapsed();
    const status = response.status;
    if (status !== 200) return { ...base, startMs, ms, status, outcome: 'http-error', error: errorOf(status, body) };
    const parsed = parseAnswer(body, file.stem);
    if (!parsed)
      return {
        ...base,
        startMs,
        ms,
        status,
        outcome: 'bad-answer',
        answer: body,
        ...(file.expected === undefined ? {} : { correct: false }),
      };
    const owner = parsed.name === file.stem;
    return {
      ...base,
      startMs,
      ms,
      status,
      outcome: owner ? 'ok' : 'wrong-owner',
      answer: body,
      name: parsed.name,
      label: parsed.label,
      ...(file.expected === undefined ? {} : { correct: owner && parsed.label === file.expected }),
    };
  } catch (err) {
    const ms = elapsed();
    const failure = failureOf(err, plan.timeoutMs, signal);
    return {
      ...base,
      startMs,
      ms,
      status: null,
      outcome: failure.outcome,
      error: { code: failure.code, message: failure.message },
    };
  }
}

/** Summary of finished rows; exported so a partial run (or a test) can be summarized too. */
export function summarize(
  plan: WorkloadPlan,
  rows: readonly UploadRow[],
  run: { makespanMs: number; maxInFlight: number; aborted: boolean },
): WorkloadSummary {
  const answeredRows = rows.filter((r) => r.status === 200);
  const count = (outcome: UploadOutcome): number => rows.filter((r) => r.outcome === outcome).length;
  const errorCounts = new Map<string, { status: number | null; code: string; count: number }>();
  for (const row of rows) {
    if (row.status === 200) continue;
    const code = row.error?.code ?? 'UNKNOWN';
    const key = `${row.status} ${code}`;
    const known = errorCounts.get(key);
    if (known) known.count++;
    else errorCounts.set(key, { status: row.status, code, count: 1 });
  }
  const errors = [...errorCounts.values()].sort(
    (a, b) => b.count - a.count || String(a.status).localeCompare(String(b.status)) || a.code.localeCompare(b.code),
  );
  const judged = answeredRows.filter((r) => r.correct !== undefined);
  const correct = judged.filter((r) => r.correct).length;
  const rightOwner = count('ok');
  return {
    url: plan.url.href,
    dir: plan.dir,
    files: plan.files.length,
    planned: plan.count,
    concurrency: plan.concurrency,
    timeoutMs: plan.timeoutMs,
    sent: rows.length,
    answered: answeredRows.length,
    rightOwner,
    wrongOwner: count('wrong-owner'),
    badAnswers: count('bad-answer'),
    errors,
    failed: rows.length - answeredRows.length,
    ...(plan.groundTruth
      ? {
          accuracy: {
            correct,
            answered: judged.length,
            ratio: judged.length === 0 ? 0 : correct / judged.length,
            unknown: answeredRows.length - judged.length,
          },
        }
      : {}),
    makespanMs: round1(run.makespanMs),
    imagesPerSecond: run.makespanMs > 0 ? Math.round((answeredRows.length / (run.makespanMs / 1000)) * 100) / 100 : 0,
    latencyMs: describe(answeredRows.map((r) => r.ms)),
    maxInFlight: run.maxInFlight,
    aborted: run.aborted,
    passed: !run.aborted && rows.length === plan.count && rightOwner === plan.count,
  };
}

/**
 * Sends `plan.count` uploads, never more than `plan.concurrency` at once, each bounded by
 * `plan.timeoutMs`; resolves when every upload has an outcome. Failures are rows, not rejections.
 */
export async function runWorkload(plan: WorkloadPlan, hooks: RunHooks = {}): Promise<WorkloadReport> {
  const rows: UploadRow[] = [];
  let next = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const runStart = performance.now();
  let lastEnd = runStart;

  const lane = async (): Promise<void> => {
    while (next < plan.count && !hooks.signal?.aborted) {
      const seq = next++;
      const file = plan.files[seq % plan.files.length]!;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      let row: UploadRow;
      try {
        row = await uploadOne(plan, file, seq, runStart, hooks.signal);
      } finally {
        inFlight--;
      }
      lastEnd = performance.now();
      rows.push(row);
      hooks.onResult?.(row, rows.length, plan.count);
    }
  };
  await Promise.all(Array.from({ length: Math.min(plan.concurrency, plan.count) }, lane));

  rows.sort((a, b) => a.seq - b.seq);
  const summary = summarize(plan, rows, {
    makespanMs: lastEnd - runStart,
    maxInFlight,
    aborted: hooks.signal?.aborted ?? false,
  });
  return { summary, uploads: rows };
}

// ---------------------------------------------------------------------------------------------
// Text

/** `n01440764_tench.JPEG -> n01440764_tench,tench (123.4 ms)`, with a note when something is off. */
export function formatRow(row: UploadRow): string {
  const ms = `(${row.ms} ms)`;
  switch (row.outcome) {
    case 'ok':
    case 'wrong-owner': {
      const notes: string[] = [];
      if (row.outcome === 'wrong-owner') notes.push(`WRONG_OWNER: names ${row.name}, not ${row.stem}`);
      else if (row.expected !== undefined && row.label !== row.expected)
        notes.push(`wrong label: expected ${row.expected}`);
      return `${row.file} -> ${row.answer} ${ms}${notes.length ? `  [${notes.join('; ')}]` : ''}`;
    }
    case 'bad-answer':
      return `${row.file} -> BAD_ANSWER ${JSON.stringify(row.answer)} ${ms}`;
    case 'http-error':
      return `${row.file} -> ${row.status} ${row.error?.code}${row.error?.message ? `: ${row.error.message}` : ''} ${ms}`;
    default:
      return `${row.file} -> ${row.error?.code}: ${row.error?.message} ${ms}`;
  }
}

const fmt = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);

export function formatSummary(s: WorkloadSummary): string {
  const lines: string[] = [];
  const pad = (label: string, value: string | number): void => {
    lines.push(`  ${label.padEnd(12)} ${value}`);
  };
  lines.push(
    `summary: POST ${s.url}, ${s.files} files from ${s.dir} (concurrency ${s.concurrency}, timeout ${s.timeoutMs} ms)`,
  );
  pad('sent', s.planned === s.sent ? s.sent : `${s.sent} of ${s.planned}${s.aborted ? ' (stopped)' : ''}`);
  pad('answered', `${s.answered} (200)`);
  pad('right owner', s.rightOwner);
  pad('wrong owner', s.wrongOwner);
  if (s.badAnswers > 0) pad('bad answers', `${s.badAnswers} (200 but not <name>,<label>)`);
  pad('errors', s.failed);
  for (const e of s.errors)
    lines.push(`    ${(e.status === null ? 'no answer' : String(e.status)).padEnd(9)} ${e.code.padEnd(24)} ${e.count}`);
  if (s.accuracy) {
    const a = s.accuracy;
    pad(
      'accuracy',
      a.answered === 0
        ? 'n/a (no answered file is in the ground truth)'
        : `${a.correct}/${a.answered} = ${(a.ratio * 100).toFixed(1)}%${a.unknown ? ` (${a.unknown} answered files not in the ground truth)` : ''}`,
    );
  }
  pad('makespan', fmt(s.makespanMs));
  pad('throughput', `${s.imagesPerSecond.toFixed(2)} images/s`);
  pad(
    'latency',
    s.latencyMs
      ? `p50 ${fmt(s.latencyMs.p50)}  p95 ${fmt(s.latencyMs.p95)}  p99 ${fmt(s.latencyMs.p99)}  max ${fmt(s.latencyMs.max)}`
      : 'n/a (no 200 answers)',
  );
  pad('in flight', `at most ${s.maxInFlight}`);
  const bad = s.planned - s.rightOwner;
  lines.push(
    s.passed
      ? `PASS: all ${s.planned} uploads answered 200 with the right owner`
      : `FAIL: ${bad} of ${s.planned} uploads did not get a 200 with the right owner`,
  );
  return lines.join('\n');
}

// ---------------------------------------------------------------- the command line

async function run(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(`${WORKLOAD_USAGE}\n`);
    return 0;
  }
  // `npm run` moves to the package root; relative paths mean what they meant where npm was typed.
  const cwd =
    process.env.npm_lifecycle_event === 'workload' && process.env.INIT_CWD ? process.env.INIT_CWD : process.cwd();
  const plan = await prepareWorkload(parseWorkloadArgs(argv, cwd));
  for (const warning of plan.warnings) process.stderr.write(`warning: ${warning}\n`);
  process.stdout.write(
    `sending ${plan.count} uploads of ${plan.files.length} files from ${plan.dir} to ${plan.url.href} ` +
      `(concurrency ${plan.concurrency}, timeout ${plan.timeoutMs} ms${plan.groundTruth ? `, ground truth ${plan.groundTruth.source}` : ''})\n`,
  );

  const stop = new AbortController();
  const onSigint = (): void => {
    if (stop.signal.aborted) process.exit(130); // second Ctrl-C: leave now
    process.stderr.write('\nstopping: no new uploads, cancelling those in flight (Ctrl-C again to quit at once)\n');
    stop.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    const report = await runWorkload(plan, {
      signal: stop.signal,
      onResult: (row) => process.stdout.write(`${formatRow(row)}\n`),
    });
    process.stdout.write(`\n${formatSummary(report.summary)}\n`);
    if (plan.json !== undefined) {
      await writeFile(plan.json, `${JSON.stringify(report, null, 2)}\n`);
      process.stdout.write(`wrote ${plan.json}\n`);
    }
    return report.summary.passed ? 0 : 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** `npm run workload`: resolves with the exit code (0 all right, 1 an upload failed, 2 bad usage). */
export async function workloadMain(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (err) {
    if (err instanceof WorkloadUsageError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`workload failed: ${(err as Error)?.stack ?? String(err)}\n`);
    return 2;
  }
}
