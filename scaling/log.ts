/** Structured JSON logs (one object per line) to stderr, so stdout stays machine-readable. */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, event: string, fields?: Readonly<Record<string, unknown>>): void;
}

const RANK: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };

function envLevel(): LogLevel {
  const v = process.env['SCALING_LOG_LEVEL'];
  return v === 'debug' || v === 'info' || v === 'warn' || v === 'error' ? v : 'info';
}

/** JSON lines to stderr, from `minLevel` up (default: $SCALING_LOG_LEVEL or `info`). */
export function createStderrLogger(minLevel: LogLevel = envLevel()): Logger {
  return {
    log(level, event, fields = {}) {
      if (RANK[level] < RANK[minLevel]) return;
      process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, event, ...fields })}\n`);
    },
  };
}

export const stderrLogger: Logger = createStderrLogger();

export const silentLogger: Logger = { log() {} };

/** Collects entries in memory; handy in tests. */
export function memoryLogger(): Logger & {
  readonly entries: { level: LogLevel; event: string; fields: Readonly<Record<string, unknown>> }[];
} {
  const entries: { level: LogLevel; event: string; fields: Readonly<Record<string, unknown>> }[] = [];
  return {
    entries,
    log(level, event, fields = {}) {
      entries.push({ level, event, fields });
    },
  };
}
