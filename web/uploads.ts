/**
 * Getting images out of a request: multipart form files (koa-body / formidable) or a raw body with
 * an image content type. Every file is checked before anything is stored: not empty, within the
 * size and count limits, and an image type we decode — judged from its bytes.
 */
import { Writable } from 'node:stream';
import type { File, Part } from 'formidable';
import type VolatileFile from 'formidable/VolatileFile.js';
import type { Context, Middleware } from 'koa';
import { koaBody } from 'koa-body';
import { clientFileName, fileNameProblem } from '../pipeline/contract/keys.js';
import { checkImage } from '../pipeline/images.js';
import { HttpError } from './errors.js';

export interface Limits {
  readonly maxUploadBytes: number;
  readonly maxFilesPerRequest: number;
}

export interface ReceivedImage {
  /** The client's file name, its last path segment, exactly as sent (checked: no control characters). */
  readonly originalName: string;
  readonly bytes: Buffer;
  /** Decided from the bytes (`checkImage`). */
  readonly mime: string;
}

/**
 * Uploaded files stay in memory (they are small and go straight to S3): formidable streams each
 * one into a buffer list instead of a temp file. Keyed weakly by formidable's file object (the one
 * that ends in `ctx.request.files`), so a refused upload's bytes go with its request.
 */
const buffered = new WeakMap<object, Buffer[]>();

function memoryStream(file?: VolatileFile): Writable {
  const chunks: Buffer[] = [];
  if (file) buffered.set(file, chunks);
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
}

/** The bytes of every file of a parsed request. */
function takeFiles(files: readonly File[]): Map<File, Buffer> {
  const out = new Map<File, Buffer>();
  for (const file of files) {
    out.set(file, Buffer.concat(buffered.get(file) ?? []));
    buffered.delete(file);
  }
  return out;
}

/**
 * RFC 7578 lets a file part leave out its own Content-Type, and Python's `requests` (with many
 * load generators written on it) does exactly that; formidable takes any part without a type for a
 * text field. Here a part that names a file is a file whatever its type says or omits (the bytes
 * decide what it is, later). Its name is `filename*` (RFC 5987, preferred when present as RFC 6266
 * §4.3 says) or else `filename`, as formidable reads it.
 */
function asFilePart(part: Part, handlePart: (part: Part) => void): void {
  const disposition = (part as Part & { headers?: Record<string, string> }).headers?.['content-disposition'] ?? '';
  const extended = extendedFileName(disposition);
  if (extended !== undefined) part.originalFilename = extended;
  if (part.originalFilename !== null && !part.mimetype) part.mimetype = 'application/octet-stream';
  handlePart(part);
}

/**
 * The `filename*` parameter of a Content-Disposition header (`UTF-8''%D1%80%D1%8B.jpg`), decoded;
 * undefined when there is none. Percent escapes that do not make UTF-8 become U+FFFD, as browsers do.
 */
export function extendedFileName(disposition: string): string | undefined {
  const match = /(?:^|;)\s*filename\*\s*=\s*"?([^'";\s]*)'[^']*'([^";\s]*)"?/i.exec(disposition);
  if (!match) return undefined;
  const [, charset, encoded] = match as unknown as [string, string, string];
  const bytes = Buffer.from(
    encoded.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))),
    'latin1',
  );
  return /^iso-8859-1$/i.test(charset) ? bytes.toString('latin1') : new TextDecoder('utf-8').decode(bytes);
}

/** Parses multipart bodies into memory; formidable's own errors become 4xx JSON errors. */
export function multipartBody(limits: Limits): Middleware {
  return koaBody({
    multipart: true,
    json: false,
    text: false,
    urlencoded: false,
    formidable: {
      maxFileSize: limits.maxUploadBytes,
      maxTotalFileSize: limits.maxUploadBytes * limits.maxFilesPerRequest,
      maxFiles: limits.maxFilesPerRequest,
      maxFields: 100,
      allowEmptyFiles: true,
      minFileSize: 0,
      fileWriteStreamHandler: memoryStream,
      onPart: asFilePart,
    },
    onError(err) {
      const httpCode = (err as { httpCode?: number }).httpCode;
      const message = err.message.replace(/^options\./, '');
      if (/maxFiles\b/.test(err.message)) {
        throw new HttpError('TOO_MANY_FILES', `too many files: at most ${limits.maxFilesPerRequest} per request`);
      }
      if (httpCode === 413 || /maxFileSize|maxTotalFileSize/.test(err.message)) {
        throw new HttpError(
          'TOO_LARGE',
          `upload too large: ${message} (limit ${limits.maxUploadBytes} bytes per file)`,
        );
      }
      throw new HttpError('BAD_MULTIPART', `could not parse the multipart body: ${message}`);
    },
  });
}

async function readRawBody(ctx: Context, limit: number): Promise<Buffer> {
  const declared = Number(ctx.get('content-length') || NaN);
  if (declared > limit) throw new HttpError('TOO_LARGE', `upload too large: ${declared} bytes (limit ${limit})`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError('TOO_LARGE', `upload too large: over ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function filesOf(ctx: Context, field: string | undefined): File[] {
  const all = ctx.request.files ?? {};
  const pick = field === undefined ? Object.values(all) : all[field] === undefined ? [] : [all[field]!];
  return pick.flat();
}

/**
 * Bodies taken as one raw image: image types, octet-stream, and the form type that
 * `curl --data-binary @photo.jpg` and `wget --post-file=photo.jpg` send when told no other (the bytes
 * decide what it is, as for every upload).
 */
const RAW_TYPES = ['image/*', 'application/octet-stream', 'application/x-www-form-urlencoded'];

/**
 * The images of a request. `field` restricts multipart uploads to one form field (the classic
 * protocol's `myfile`); raw bodies are accepted when `allowRaw` is set.
 */
export async function receiveImages(
  ctx: Context,
  limits: Limits,
  options: { field?: string; allowRaw: boolean },
): Promise<ReceivedImage[]> {
  const received: { originalName: string; bytes: Buffer }[] = [];
  if (ctx.is('multipart')) {
    const bytes = takeFiles(filesOf(ctx, options.field));
    for (const [file, data] of bytes) received.push({ originalName: file.originalFilename ?? 'upload', bytes: data });
    if (received.length === 0) {
      const fields = Object.keys(ctx.request.files ?? {});
      throw new HttpError(
        'NO_FILE',
        options.field
          ? `no file in form field "${options.field}"${fields.length ? ` (got fields: ${fields.join(', ')})` : ''}`
          : 'no file in the multipart body',
      );
    }
  } else if (options.allowRaw && ctx.is(RAW_TYPES)) {
    const name = (typeof ctx.query.name === 'string' ? ctx.query.name : '') || ctx.get('x-file-name') || 'upload';
    received.push({ originalName: name, bytes: await readRawBody(ctx, limits.maxUploadBytes) });
  } else {
    const expected = options.allowRaw ? 'multipart/form-data or a raw image body (image/*)' : 'multipart/form-data';
    throw new HttpError(
      'UNSUPPORTED_MEDIA_TYPE',
      `expected ${expected}, got ${ctx.get('content-type') || 'no content type'}`,
    );
  }
  if (options.field !== undefined && received.length > 1) {
    throw new HttpError(
      'ONE_FILE_ONLY',
      `send exactly one file in form field "${options.field}" (got ${received.length}); /api/v1/classify takes several`,
    );
  }
  if (received.length > limits.maxFilesPerRequest) {
    throw new HttpError('TOO_MANY_FILES', `too many files: at most ${limits.maxFilesPerRequest} per request`);
  }
  const named = received.map(({ originalName: sent, bytes }) => {
    const originalName = clientFileName(sent);
    const problem = fileNameProblem(originalName);
    if (problem)
      throw new HttpError('BAD_FILE_NAME', `the file name ${JSON.stringify(originalName)} ${problem}`, {
        file: originalName,
      });
    if (bytes.length === 0) throw new HttpError('EMPTY_FILE', `${originalName} is empty`, { file: originalName });
    return { originalName, bytes };
  });
  // Bytes and headers only (no pixels are decoded): refuse what is not an image we decode, broken
  // headers and decompression bombs here, before anything is stored or queued.
  const images: ReceivedImage[] = [];
  for (const { originalName, bytes } of named)
    images.push({ originalName, bytes, mime: (await checkImage(bytes, originalName)).mime });
  return images;
}
