/**
 * Arrival traces for the simulator.
 *
 * Formats (chosen by file extension):
 *  - `.json`: either an array of arrival times in seconds, `[0, 0.5, 2]`, or an object
 *    `{ "name": "...", "description": "...", "arrivals": [0, 0.5, 2] }`;
 *  - `.csv` (or anything else): one arrival time in seconds per line (first column); blank lines,
 *    `#` comments and a non-numeric header line (e.g. `arrival_seconds`) are ignored.
 * Times must be finite and ≥ 0; they are sorted, so the file need not be.
 */

import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { readJsonFile } from '../../models/json-file.js';
import { ScalingError } from '../core/errors.js';
import { isObject } from '../core/values.js';

export interface Trace {
  readonly name: string;
  readonly description: string;
  /** Arrival times in seconds, sorted ascending. */
  readonly arrivals: readonly number[];
}

const invalid = (message: string, context: Record<string, unknown>): ScalingError => new ScalingError('INVALID_TRACE', message, context);

function checkArrivals(values: readonly unknown[], source: string): number[] {
  if (values.length === 0) throw invalid(`Trace ${source} has no arrivals`, { source });
  const out: number[] = [];
  values.forEach((v, index) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw invalid(`Trace ${source}: arrival #${index} must be a finite number of seconds >= 0`, { source, index, value: v });
    }
    out.push(v);
  });
  return out.sort((a, b) => a - b);
}

/** A trace from parsed JSON: an array of seconds, or `{ name?, description?, arrivals }`. */
export function traceFromJson(parsed: unknown, source: string): Trace {
  if (Array.isArray(parsed)) return { name: source, description: '', arrivals: checkArrivals(parsed, source) };
  if (isObject(parsed)) {
    const arrivals = parsed['arrivals'];
    if (!Array.isArray(arrivals)) throw invalid(`Trace ${source}: "arrivals" must be an array of seconds`, { source });
    return {
      name: typeof parsed['name'] === 'string' ? parsed['name'] : source,
      description: typeof parsed['description'] === 'string' ? parsed['description'] : '',
      arrivals: checkArrivals(arrivals, source),
    };
  }
  throw invalid(`Trace ${source} must be a JSON array or an object with "arrivals"`, { source });
}

/** A JSON trace from its text (`loadTrace` reads `.json` files with `readJsonFile` instead). */
export function parseJsonTrace(text: string, source: string): Trace {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ScalingError('INVALID_TRACE', `Trace ${source} is not valid JSON: ${(err as Error).message}`, { source }, { cause: err });
  }
  return traceFromJson(parsed, source);
}

export function parseCsvTrace(text: string, source: string): Trace {
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
      throw invalid(`Trace ${source}: line ${lineIndex + 1} is not a number of seconds: "${cell}"`, { source, line: lineIndex + 1 });
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
    throw new ScalingError('INVALID_TRACE', `Cannot read trace ${path}: ${(err as Error).message}`, { source: path }, { cause: err });
  }
  return parseCsvTrace(text, name);
}
