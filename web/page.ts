/**
 * The page: `GET /` (index.html) and its files under `/assets/<name>` (plain HTML, CSS and JS
 * modules from `web/public/`, no build step, nothing from a CDN). The files are read once, at
 * start, into a table; a request names an entry of that table, never a path on disk. Each answer has
 * an ETag (a revalidation costs a 304) and a Content-Security-Policy that allows this origin only.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context } from 'koa';
import { ServiceError } from '../lib/errors.js';
import { ASSETS_PREFIX } from './auth.js';
import { HttpError } from './errors.js';

export const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Only this origin; images also from blob: (previews, thumbnails read with the API key) and data:. */
const CSP = [
  "default-src 'self'",
  "img-src 'self' blob: data:",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface PageFile {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

export interface PageFiles {
  /** `GET /`. */
  index(ctx: Context): void;
  /** `GET /assets/:name`. */
  asset(ctx: Context, name: string): void;
  /** The names under /assets/ (for the OpenAPI document and tests). */
  readonly names: readonly string[];
}

export function loadPageFiles(dir = PUBLIC_DIR): PageFiles {
  const files = new Map<string, PageFile>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type === undefined) continue;
    const body = readFileSync(join(dir, name));
    files.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` });
  }
  const send = (ctx: Context, file: PageFile) => {
    ctx.set('ETag', file.etag);
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Content-Security-Policy', CSP);
    ctx.type = file.type;
    if (ctx.get('if-none-match') === file.etag) {
      ctx.status = 304;
      return;
    }
    ctx.body = file.body;
  };
  const index = files.get('index.html');
  if (!index) throw new ServiceError('PAGE_MISSING', `the page's index.html is missing from ${dir}`, { dir });
  return {
    names: [...files.keys()].filter((name) => name !== 'index.html').sort(),
    index: (ctx) => send(ctx, index),
    asset(ctx, name) {
      const file = name === 'index.html' ? undefined : files.get(name);
      if (!file)
        throw new HttpError('NOT_FOUND', `no file ${JSON.stringify(name.slice(0, 80))} under ${ASSETS_PREFIX}`);
      send(ctx, file);
    },
  };
}
