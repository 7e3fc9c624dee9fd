/**
 * What the scaling command lines share: strict flag parsing (unknown flags and positionals are
 * errors), where their output goes, and how a failure becomes an exit code.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { createLogger, type Logger } from '../../lib/log.js';
import { ScalingError } from './errors.js';

type OptionTable = NonNullable<ParseArgsConfig['options']>;

/** node's parseArgs, strict, with its error turned into the caller's typed error. */
export function parseFlags<const O extends OptionTable>(
  argv: readonly string[],
  options: O,
  fail: (message: string, cause: unknown) => Error,
) {
  try {
    return parseArgs({ args: [...argv], strict: true as const, allowPositionals: false as const, options }).values;
  } catch (err) {
    throw fail((err as Error).message, err);
  }
}

/** `parseFlags`' `fail` for the scaling CLIs: ScalingError INVALID_OPTIONS with the command line. */
export const badFlags =
  (argv: readonly string[]) =>
  (message: string, cause: unknown): ScalingError =>
    new ScalingError('INVALID_OPTIONS', message, { argv: [...argv] }, { cause });

/** Where a command writes: its result on stdout, messages for people on stderr, JSON log lines. */
export interface CliDeps {
  readonly stdout?: (text: string) => void;
  readonly stderr?: (text: string) => void;
  readonly logger?: Logger;
}

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly logger: Logger;
}

/** The given outputs, or the process's own (one line per call) and the logger of `component`. */
export function cliIo(deps: CliDeps, component: string): CliIo {
  return {
    stdout: deps.stdout ?? ((text: string) => process.stdout.write(`${text}\n`)),
    stderr: deps.stderr ?? ((text: string) => process.stderr.write(`${text}\n`)),
    logger: deps.logger ?? createLogger(component),
  };
}

/**
 * The exit code of a command that threw: a `ScalingError` is logged (`<command>.failed`) and its
 * message printed, with the usage after bad options (exit 2; 1 otherwise); anything else is a crash
 * (`<command>.crashed`, with its stack), exit 1.
 */
export function failureExitCode(err: unknown, command: string, usage: string, io: CliIo): number {
  if (err instanceof ScalingError) {
    io.logger.error(`${command}.failed`, { error: err });
    io.stderr(`error: ${err.message}`);
    if (err.code === 'INVALID_OPTIONS') {
      io.stderr(usage);
      return 2;
    }
    return 1;
  }
  io.logger.error(`${command}.crashed`, { error: err, ...(err instanceof Error ? { stack: err.stack } : {}) });
  return 1;
}
