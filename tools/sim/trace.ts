/**
 * Arrival traces for the simulator.
 *
 * Formats (chosen by file extension):
 *  - `.json`: either an array of arrival times in seconds, `[0, 0.5, 2]`, or an object
 *    `{ "name": "...", "description": "...", "arrivals": [0, 0.5, 2] }`, or bursts of arrivals at
 *    the same second `{ "name": "...", "bursts": [{ "at": 0, "count": 6000 }, ...] }`, or a closed
 *    loop `{ "name": "...", "closedLoop": { "clients": 100, "requests": 1000 } }` (see `ClosedLoop`);
 *    an object may say `"replay": false`: simulated only, `scaling:validate` does not replay it (too
 *    many requests for one machine);
 *  - `.csv` (or anything else): one arrival time in seconds per line (first column); blank lines,
 *    `#` comments and a non-numeric header line (e.g. `arrival_seconds`) are ignored.
 * Times must be finite and ≥ 0; they are sorted, so the file need not be.
 */

import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { readJsonFile } from '../../lib/json-file.js';
import { ScalingError } from '../../scaling/core/errors.js';
import { isObject } from '../../scaling/core/values.js';

/**
 * Closed-loop clients, the shape of the classic workload generator (`npm run workload`): every
 * client sends its first request at `startSeconds`, then its next one `thinkSeconds` after it gets
 * an answer, while any of the `requests` are left (the clients share them, as the generator's lanes
 * do). So a client never has more than one request outstanding, and the load follows the answers.
 */
export interface ClosedLoop {
  /** Concurrent clients, integer ≥ 1 (the generator's `--concurrency`). */
  readonly clients: number;
  /** Requests in all, integer ≥ 1 (`--count`). */
  readonly requests: number;
  /** Seconds from an answer to the same client's next request, ≥ 0 (default 0). */
  readonly thinkSeconds: number;
  /** When the clients send their first requests, seconds ≥ 0 (default 0). */
  readonly startSeconds: number;
}

/** What arrives: fixed arrival times (open loop), or closed-loop clients. */
export type Workload = { readonly arrivals: readonly number[] } | { readonly closedLoop: ClosedLoop };

interface TraceName {
  readonly name: string;
  readonly description: string;
  /** false: simulated only, too large to replay on one machine (`scaling:validate` skips it). */
  readonly replay?: boolean;
}
/** A trace of fixed arrival times, in seconds, sorted ascending. */
export type ArrivalsTrace = TraceName & { readonly arrivals: readonly number[] };
export type ClosedLoopTrace = TraceName & { readonly closedLoop: ClosedLoop };
export type Trace = ArrivalsTrace | ClosedLoopTrace;

/** Requests a workload sends in all. */
export function requestCount(workload: Workload): number {
  return 'arrivals' in workload ? workload.arrivals.length : workload.closedLoop.requests;
}

const invalid = (message: string, context: Record<string, unknown>): ScalingError =>
  new ScalingError('INVALID_TRACE', message, context);

function checkArrivals(values: readonly unknown[], source: string): number[] {
  if (values.length === 0) throw invalid(`Trace ${source} has no arrivals`, { source });
  const out: number[] = [];
  values.forEach((v, index) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw invalid(`Trace ${source}: arrival #${index} must be a finite number of seconds >= 0`, {
        source,
        index,
        value: v,
      });
    }
    out.push(v);
  });
  return out.sort((a, b) => a - b);
}

const CLOSED_LOOP_FIELDS = ['clients', 'requests', 'thinkSeconds', 'startSeconds'] as const;

/** Checks a `closedLoop` object: whole numbers of clients and requests ≥ 1, times ≥ 0 (default 0). */
export function checkClosedLoop(value: unknown, source: string): ClosedLoop {
  if (!isObject(value)) throw invalid(`Trace ${source}: "closedLoop" must be an object`, { source });
  for (const key of Object.keys(value)) {
    if (!(CLOSED_LOOP_FIELDS as readonly string[]).includes(key)) {
      throw invalid(
        `Trace ${source}: closedLoop.${key} is not a known field (known: ${CLOSED_LOOP_FIELDS.join(', ')})`,
        { source, field: `closedLoop.${key}` },
      );
    }
  }
  const field = (key: (typeof CLOSED_LOOP_FIELDS)[number], whole: boolean): number => {
    const v = value[key] ?? (whole ? undefined : 0);
    const ok = typeof v === 'number' && Number.isFinite(v) && (whole ? Number.isInteger(v) && v >= 1 : v >= 0);
    if (!ok)
      throw invalid(
        `Trace ${source}: closedLoop.${key} must be ${whole ? 'an integer >= 1' : 'a number of seconds >= 0'}`,
        { source, field: `closedLoop.${key}`, value: v },
      );
    return v;
  };
  return {
    clients: field('clients', true),
    requests: field('requests', true),
    thinkSeconds: field('thinkSeconds', false),
    startSeconds: field('startSeconds', false),
  };
}

/** `[{ at, count }]` → `count` arrivals at second `at`, for each burst. */
function burstArrivals(value: unknown, source: string): number[] {
  if (!Array.isArray(value) || value.length === 0)
    throw invalid(`Trace ${source}: "bursts" must be a non-empty array of { "at", "count" }`, { source });
  return value.flatMap((burst, index) => {
    const at = isObject(burst) ? burst.at : undefined;
    const count = isObject(burst) ? burst.count : undefined;
    if (
      typeof at !== 'number' ||
      !Number.isFinite(at) ||
      at < 0 ||
      typeof count !== 'number' ||
      !Number.isInteger(count) ||
      count < 1
    )
      throw invalid(`Trace ${source}: burst #${index} must be { "at": seconds >= 0, "count": an integer >= 1 }`, {
        source,
        index,
        value: burst,
      });
    return new Array<number>(count).fill(at);
  });
}

/** A trace from parsed JSON: an array of seconds, or `{ name?, description?, replay?, arrivals | bursts | closedLoop }`. */
export function traceFromJson(parsed: unknown, source: string): Trace {
  if (Array.isArray(parsed)) return { name: source, description: '', arrivals: checkArrivals(parsed, source) };
  if (isObject(parsed)) {
    if (parsed.replay !== undefined && typeof parsed.replay !== 'boolean')
      throw invalid(`Trace ${source}: "replay" must be true or false`, { source, value: parsed.replay });
    const named = {
      name: typeof parsed.name === 'string' ? parsed.name : source,
      description: typeof parsed.description === 'string' ? parsed.description : '',
      ...(parsed.replay === false ? { replay: false } : {}),
    };
    const forms = (['arrivals', 'bursts', 'closedLoop'] as const).filter((k) => parsed[k] !== undefined);
    if (forms.length > 1)
      throw invalid(`Trace ${source}: give one of "arrivals", "bursts" or "closedLoop", not ${forms.join(' and ')}`, {
        source,
      });
    if (parsed.closedLoop !== undefined) return { ...named, closedLoop: checkClosedLoop(parsed.closedLoop, source) };
    if (parsed.bursts !== undefined)
      return { ...named, arrivals: checkArrivals(burstArrivals(parsed.bursts, source), source) };
    const arrivals = parsed.arrivals;
    if (!Array.isArray(arrivals)) throw invalid(`Trace ${source}: "arrivals" must be an array of seconds`, { source });
    return { ...named, arrivals: checkArrivals(arrivals, source) };
  }
  throw invalid(`Trace ${source} must be a JSON array or an object with "arrivals", "bursts" or "closedLoop"`, {
    source,
  });
}

/** A JSON trace from its text (`loadTrace` reads `.json` files with `readJsonFile` instead). */
export function parseJsonTrace(text: string, source: string): Trace {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ScalingError(
      'INVALID_TRACE',
      `Trace ${source} is not valid JSON: ${(err as Error).message}`,
      { source },
      { cause: err },
    );
  }
  return traceFromJson(parsed, source);
}

export function parseCsvTrace(text: string, source: string): ArrivalsTrace {
  const values: number[] = [];
  const lines = text.split(/\r?\n/);
  let description = '';
  lines.forEach((raw, lineIndex) => {
    const line = raw.trim();
    if (line === '') return;
    if (line.startsWith('#')) {
      if (description === '') description = line.replace(/^#\s*/, '');
      return;
    }
    const cell = (line.split(',')[0] ?? '').trim();
    const value = Number(cell);
    if (cell === '' || !Number.isFinite(value)) {
      if (values.length === 0 && /[A-Za-z]/.test(cell)) return; // header
      throw invalid(`Trace ${source}: line ${lineIndex + 1} is not a number of seconds: "${cell}"`, {
        source,
        line: lineIndex + 1,
      });
    }
    values.push(value);
  });
  return { name: source, description, arrivals: checkArrivals(values, source) };
}

/** Reads a trace file; its name is the file name without the extension. */
export async function loadTrace(path: string): Promise<Trace> {
  const name = basename(path, extname(path));
  if (extname(path).toLowerCase() === '.json') {
    const parsed = await readJsonFile(path, {
      what: 'trace',
      fail: (message, cause) => new ScalingError('INVALID_TRACE', message, { source: path }, { cause }),
    });
    return traceFromJson(parsed, name);
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ScalingError(
      'INVALID_TRACE',
      `Cannot read trace ${path}: ${(err as Error).message}`,
      { source: path },
      { cause: err },
    );
  }
  return parseCsvTrace(text, name);
}
