/** Strict command-line parsing shared by the scaling CLIs: unknown flags and positionals are errors. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type OptionTable = NonNullable<ParseArgsConfig['options']>;

/** node's parseArgs, strict, with its error turned into the caller's typed error. */
export function parseFlags<const O extends OptionTable>(argv: readonly string[], options: O, fail: (message: string, cause: unknown) => Error) {
  try {
    return parseArgs({ args: [...argv], strict: true as const, allowPositionals: false as const, options }).values;
  } catch (err) {
    throw fail((err as Error).message, err);
  }
}
