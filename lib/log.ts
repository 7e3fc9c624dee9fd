/**
 * The one logger of the service — web tier, pipeline, workers, endpoint, scaling — on pino: one JSON
 * object per line on stderr (stdout stays free for a command's output), written synchronously so a
 * process that exits says its last words. Every line has `level` (a word), `time` (ISO), `pid`,
 * `component` and `msg`; the rest is context, with errors as plain objects (name, code, message,
 * context, cause chain). `with({ requestId })` gives a logger whose every line carries those fields.
 */
import pino from 'pino';
import { serializeError } from './errors.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** LOG_LEVEL of the process until the configuration says otherwise (`setLogLevel`). */
let threshold: number = RANK[(process.env.LOG_LEVEL as LogLevel | undefined) ?? 'info'] ?? RANK.info;

/** Every logger made so far follows this, including those made at import time. */
export function setLogLevel(level: LogLevel): void {
  threshold = RANK[level];
}

export function isLogLevel(value: string): value is LogLevel {
  return Object.hasOwn(RANK, value);
}

export interface Logger {
  debug(msg: string, context?: Record<string, unknown>): void;
  info(msg: string, context?: Record<string, unknown>): void;
  warn(msg: string, context?: Record<string, unknown>): void;
  error(msg: string, context?: Record<string, unknown>): void;
  /** A logger for a part of this one: component `<this>.<name>`. */
  child(name: string): Logger;
  /** This logger with `fields` on every line (a request id, a worker id...). */
  with(fields: Record<string, unknown>): Logger;
}

let root: pino.Logger | undefined;

/** Where lines go: stderr, or a test's sink. */
function rootLogger(): pino.Logger {
  root ??= pino(
    {
      // Levels are filtered here, by `threshold`, so that `setLogLevel` reaches every child.
      level: 'trace',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: 2, sync: true }),
  );
  return root;
}

/** Sends every line to `write` instead of stderr (tests that read what was logged). */
export function captureLogs(write: (line: string) => void): () => void {
  const previous = root;
  root = pino(
    {
      level: 'trace',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    { write },
  );
  return () => {
    root = previous;
  };
}

function plain(context: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!context) return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(context)) out[key] = value instanceof Error ? serializeError(value) : value;
  return out;
}

function make(component: string, fields: Record<string, unknown>): Logger {
  const line = (level: LogLevel) => (msg: string, context?: Record<string, unknown>) => {
    if (RANK[level] < threshold) return;
    rootLogger()[level]({ component, ...fields, ...plain(context) }, msg);
  };
  return {
    debug: line('debug'),
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
    child: (name) => make(`${component}.${name}`, fields),
    with: (more) => make(component, { ...fields, ...plain(more) }),
  };
}

export function createLogger(component: string): Logger {
  return make(component, {});
}

/** A logger that drops everything (tests, quiet library use). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
  with: () => silentLogger,
};
