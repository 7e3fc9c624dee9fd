/**
 * The one JSON-file reader: a file's parsed contents, or the caller's own typed error saying which
 * file and what was wrong with it (unreadable, not JSON). `missing: 'undefined'` turns a file that
 * does not exist into `undefined` instead of an error.
 */
import { readFile } from 'node:fs/promises';
import { describeError } from './errors.js';

export interface JsonFileOptions {
  /** What the file is, for messages: `labels file`, `policy file`... */
  readonly what: string;
  /** Builds the caller's error from a message that names the file and the problem. */
  readonly fail: (message: string, cause: unknown) => Error;
  readonly missing?: 'error' | 'undefined';
}

export async function readJsonFile(file: string, options: JsonFileOptions & { missing: 'undefined' }): Promise<unknown>;
export async function readJsonFile(file: string, options: JsonFileOptions): Promise<unknown>;
export async function readJsonFile(file: string, options: JsonFileOptions): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (options.missing === 'undefined' && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw options.fail(`cannot read ${options.what} ${file}: ${describeError(error)}`, error);
  }
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (error) {
    throw options.fail(`${options.what} ${file} is not valid JSON: ${describeError(error)}`, error);
  }
}
