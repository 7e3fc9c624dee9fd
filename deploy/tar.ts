/**
 * A deterministic gzipped tar (POSIX ustar, with a pax header for a name ustar cannot hold): the
 * entries in the order given, each file's bytes with a fixed owner (root) and time, mode 0755 or
 * 0644, and symbolic links. The same entries give the same bytes, so the stack's asset hash — and
 * with it the instances — only change when the release does.
 *
 * A release holds a few hundred MB before compression, and gzip is most of the time it takes: the
 * tar stream is cut into 4 MiB pieces compressed on every core at once (zlib's thread pool), each a
 * gzip member of its own, written in order. A gzip file may hold several members, which gunzip and
 * `tar -xz` read as one stream (RFC 1952 §2.2); the cuts depend on the bytes only, so the output
 * stays the same for the same input.
 */
import { open, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { DeployError } from './errors.js';

export type TarEntry =
  | {
      readonly path: string;
      /** The file's bytes, or the file to read them from. */
      readonly body: Buffer | { readonly file: string };
      readonly executable: boolean;
    }
  | { readonly path: string; readonly symlink: string };

/** Files read ahead of the one being written, and the size of each gzip member. */
const READ_AHEAD = 16;
const CHUNK_BYTES = 4 << 20;
const compress = promisify(gzip);

/** 1980-01-01, as zip archives date their entries: a constant, so equal inputs give equal bytes. */
const ENTRY_TIME = 315_532_800;

/** Writes `entries` as a gzipped tar to `out` (gzip `level`, 1..9); returns the uncompressed size. */
export async function writeTarGz(out: string, entries: Iterable<TarEntry>, level = 6): Promise<number> {
  const list = [...entries];
  // Files are read a few ahead of the one being written.
  const bodies = list.map(() => undefined as Promise<Buffer> | undefined);
  const bodyOf = (i: number): Promise<Buffer> | undefined => {
    const entry = list[i];
    if (entry === undefined || 'symlink' in entry) return undefined;
    bodies[i] ??= Buffer.isBuffer(entry.body) ? Promise.resolve(entry.body) : readFile(entry.body.file);
    return bodies[i];
  };
  let size = 0;
  async function* chunks(): AsyncGenerator<Buffer> {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const add = (block: Buffer) => {
      pending.push(block);
      pendingBytes += block.length;
      size += block.length;
    };
    // Exactly CHUNK_BYTES at a time (the rest stays for the next piece): the cuts follow the bytes.
    function* flush(all: boolean): Generator<Buffer> {
      let joined = Buffer.concat(pending, pendingBytes);
      while (joined.length >= CHUNK_BYTES) {
        yield joined.subarray(0, CHUNK_BYTES);
        joined = joined.subarray(CHUNK_BYTES);
      }
      if (all && joined.length > 0) {
        yield joined;
        joined = Buffer.alloc(0);
      }
      pending = joined.length > 0 ? [joined] : [];
      pendingBytes = joined.length;
    }
    for (const [i, entry] of list.entries()) {
      for (let ahead = i + 1; ahead <= i + READ_AHEAD; ahead++) void bodyOf(ahead)?.catch(() => undefined);
      if ('symlink' in entry) {
        for (const block of header(entry.path, { type: '2', size: 0, mode: 0o777, link: entry.symlink })) add(block);
      } else {
        const body = await bodyOf(i)!;
        bodies[i] = undefined;
        for (const block of header(entry.path, {
          type: '0',
          size: body.length,
          mode: entry.executable ? 0o755 : 0o644,
        }))
          add(block);
        add(body);
        const pad = (512 - (body.length % 512)) % 512;
        if (pad > 0) add(Buffer.alloc(pad));
      }
      if (pendingBytes >= CHUNK_BYTES) yield* flush(false);
    }
    add(Buffer.alloc(1024)); // the end: two empty blocks
    yield* flush(true);
  }
  const file = await open(out, 'w');
  try {
    const inFlight: Promise<Buffer>[] = [];
    const parallel = Math.max(1, availableParallelism());
    for await (const chunk of chunks()) {
      inFlight.push(compress(chunk, { level }));
      if (inFlight.length > parallel) await file.write(await inFlight.shift()!);
    }
    for (const member of inFlight) await file.write(await member);
  } finally {
    await file.close();
  }
  return size;
}

interface HeaderFields {
  /** '0' a file, '2' a symbolic link, 'x' a pax extended header. */
  readonly type: '0' | '2' | 'x';
  readonly size: number;
  readonly mode: number;
  readonly link?: string;
}

/** The header block(s) of one entry: a pax header first when its name or link does not fit ustar. */
function* header(path: string, fields: HeaderFields): Generator<Buffer> {
  const split = splitPath(path);
  const linkFits = fields.link === undefined || Buffer.byteLength(fields.link) <= 100;
  if (split === undefined || !linkFits) {
    const records = [
      ...(split === undefined ? [paxRecord('path', path)] : []),
      ...(linkFits ? [] : [paxRecord('linkpath', fields.link!)]),
    ];
    const body = Buffer.from(records.join(''), 'utf8');
    yield ustar(`PaxHeaders/${path.split('/').pop()!.slice(0, 80)}`, '', { type: 'x', size: body.length, mode: 0o644 });
    yield body;
    const pad = (512 - (body.length % 512)) % 512;
    if (pad > 0) yield Buffer.alloc(pad);
  }
  const { name, prefix } = split ?? { name: path.split('/').pop()!.slice(0, 100), prefix: '' };
  yield ustar(name, prefix, linkFits ? fields : { ...fields, link: fields.link!.slice(0, 100) });
}

/** `<length> <key>=<value>\n`, the length counting itself. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(rest) + 1;
  while (String(length).length + Buffer.byteLength(rest) !== length) length++;
  return `${length}${rest}`;
}

function ustar(name: string, prefix: string, fields: HeaderFields): Buffer {
  const block = Buffer.alloc(512);
  const put = (text: string, offset: number, length: number) => {
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length > length) throw new DeployError('RELEASE', `tar header field too long: ${text}`, { text });
    bytes.copy(block, offset);
  };
  const octal = (value: number, offset: number, length: number) =>
    put(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length);
  put(name, 0, 100);
  octal(fields.mode, 100, 8);
  octal(0, 108, 8); // uid
  octal(0, 116, 8); // gid
  octal(fields.size, 124, 12);
  octal(ENTRY_TIME, 136, 12);
  block.fill(0x20, 148, 156); // the checksum counts itself as spaces
  put(fields.type, 156, 1);
  if (fields.link !== undefined) put(fields.link, 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put('root', 265, 32);
  put('root', 297, 32);
  put(prefix, 345, 155);
  let sum = 0;
  for (const byte of block) sum += byte;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return block;
}

/** ustar keeps up to 100 bytes of name and 155 of directory prefix, split at a "/"; undefined when it cannot. */
function splitPath(path: string): { name: string; prefix: string } | undefined {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  for (let at = path.indexOf('/'); at >= 0; at = path.indexOf('/', at + 1)) {
    const prefix = path.slice(0, at);
    const name = path.slice(at + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  return undefined;
}
