/**
 * The dated tables of docs/benchmarks.md, rewritten from a run (`npm run bench -- --write-docs`).
 * Each table the bench owns sits between two marker comments:
 *
 *   <!-- bench:models -->
 *   | date | model | ... |
 *   |---|---|...|
 *   | 2026-12-02 | mobilenet-v1-0.75-224-onnx | ... |
 *   <!-- /bench:models -->
 *
 * A run replaces the rows of its own date in the tables it measured and appends them last; rows
 * of other dates, tables it did not measure and everything outside the markers stay as they are.
 * So a second run on the same day replaces the first one's rows: the result is the same document
 * whether the run is written once or twice. Pure functions over the text; the caller reads and
 * writes the file.
 */
import { ServiceError } from '../../lib/errors.js';

export class BenchDocsError extends ServiceError<'NO_TABLE' | 'TABLE_CHANGED' | 'BAD_ROW' | 'BAD_DATE'> {
  override readonly name = 'BenchDocsError';
}

/** One table the bench writes: its marker id, its columns after `date`, and this run's rows. */
export interface DatedTable {
  readonly id: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

const startMarker = (id: string) => `<!-- bench:${id} -->`;
const endMarker = (id: string) => `<!-- /bench:${id} -->`;

/** `| a | b |` → `['a', 'b']`; an escaped `\|` stays inside its cell. */
function cellsOf(line: string): string[] {
  const inner = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  return inner.split(/(?<!\\)\|/).map((cell) => cell.trim());
}

const rowOf = (cells: readonly string[]) =>
  `| ${cells.map((cell) => cell.replace(/\r?\n/g, ' ').replace(/(?<!\\)\|/g, '\\|')).join(' | ')} |`;

/** Where table `id` is: the line indices of its header and of its end marker. */
function locate(lines: readonly string[], id: string): { header: number; end: number } {
  const start = lines.findIndex((line) => line.trim() === startMarker(id));
  const end = lines.findIndex((line, i) => i > start && line.trim() === endMarker(id));
  if (start < 0 || end < 0)
    throw new BenchDocsError(
      'NO_TABLE',
      `the document has no table "${id}": expected a line ${startMarker(id)} and, below it, ${endMarker(id)}`,
      { table: id },
    );
  const header = lines.findIndex((line, i) => i > start && i < end && line.trim().startsWith('|'));
  if (header < 0 || !/^\|[\s|:-]+\|$/.test(lines[header + 1]?.trim() ?? ''))
    throw new BenchDocsError('NO_TABLE', `table "${id}" has no header and separator line between its markers`, {
      table: id,
    });
  return { header, end };
}

/**
 * Throws unless every table is in `doc` between its markers with exactly the columns the bench
 * writes (`date` first). Run before a long bench, so it cannot fail only at the end.
 */
export function checkDatedTables(doc: string, tables: readonly Pick<DatedTable, 'id' | 'columns'>[]): void {
  const lines = doc.split('\n');
  for (const table of tables) {
    const { header } = locate(lines, table.id);
    const found = cellsOf(lines[header]!);
    const expected = ['date', ...table.columns];
    if (found.join(' | ') !== expected.join(' | '))
      throw new BenchDocsError(
        'TABLE_CHANGED',
        `table "${table.id}" has the columns | ${found.join(' | ')} | but the bench writes | ${expected.join(' | ')} |: ` +
          'move its earlier rows to the new columns by hand (or keep them under a table of their own), then run again',
        { table: table.id },
      );
  }
}

/**
 * `doc` with each table's rows of `date` replaced by `rows` (appended after the earlier rows). Tables
 * with no rows are left alone.
 */
export function writeDatedTables(doc: string, date: string, tables: readonly DatedTable[]): string {
  if (!DATE.test(date))
    throw new BenchDocsError('BAD_DATE', `the date must be YYYY-MM-DD, got ${JSON.stringify(date)}`);
  const measured = tables.filter((table) => table.rows.length > 0);
  checkDatedTables(doc, measured);
  let lines = doc.split('\n');
  for (const table of measured) {
    for (const row of table.rows)
      if (row.length !== table.columns.length)
        throw new BenchDocsError(
          'BAD_ROW',
          `a row of table "${table.id}" has ${row.length} cells for its ${table.columns.length} columns after date`,
          { table: table.id, row: row.join(' | ') },
        );
    const { header, end } = locate(lines, table.id);
    const body = lines.slice(header + 2, end).filter((line) => line.trim() !== '');
    const kept = body.filter((line) => !(cellsOf(line)[0] ?? '').startsWith(date));
    const added = table.rows.map((row) => rowOf([date, ...row]));
    lines = [...lines.slice(0, header + 2), ...kept, ...added, ...lines.slice(end)];
  }
  return lines.join('\n');
}
