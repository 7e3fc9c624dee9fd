/**
 * Structured logs: one JSON object per line on stderr (stdout stays free for a command's output).
 * Every line has `t` (ISO time), `level`, `component` and `msg`; the rest is context.
 */
import type { LogLevel } from './config.js';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

let threshold: number = RANK[(process.env.LOG_LEVEL as LogLevel | undefined) ?? 'info'] ?? RANK.info;

export function setLogLevel(level: LogLevel): void {
  threshold = RANK[level];
}

export interface Logger {
  debug(msg: string, context?: Record<string, unknown>): void;
  info(msg: string, context?: Record<string, unknown>): void;
  warn(msg: string, context?: Record<string, unknown>): void;
  error(msg: string, context?: Record<string, unknown>): void;
  child(component: string): Logger;
}

/** Errors become plain objects so JSON.stringify keeps their name, message, code and context. */
export function serializeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  for (const key of ['code', 'context', 'stage', 'retryable'] as const) {
    const value = (err as unknown as Record<string, unknown>)[key];
    if (value !== undefined) out[key] = value;
  }
  if (err.cause !== undefined) out.cause = serializeError(err.cause);
  return out;
}

function write(level: LogLevel, component: string, msg: string, context?: Record<string, unknown>): void {
  if (RANK[level] < threshold) return;
  const line: Record<string, unknown> = { t: new Date().toISOString(), level, component, msg, pid: process.pid };
  if (context) {
    for (const [key, value] of Object.entries(context)) line[key] = value instanceof Error ? serializeError(value) : value;
  }
  process.stderr.write(`${JSON.stringify(line)}\n`);
}

export function createLogger(component: string): Logger {
  return {
    debug: (msg, context) => write('debug', component, msg, context),
    info: (msg, context) => write('info', component, msg, context),
    warn: (msg, context) => write('warn', component, msg, context),
    error: (msg, context) => write('error', component, msg, context),
    child: (name) => createLogger(`${component}.${name}`),
  };
}
