/**
 * Optional access control. With API_KEYS set, a request needs `Authorization: Bearer <key>` with one
 * of the keys, except where `isOpen` says otherwise: the health checks (probes send no header), the
 * page's static shell (`GET /` and `/assets/…`: files with no data in them, which a browser loads
 * before it can ask for a key), and the classic `POST /` unless CLASSIC_REQUIRES_KEY is on (its
 * client sends no header). A missing or wrong key is `401 UNAUTHORIZED` with `WWW-Authenticate:
 * Bearer`.
 *
 * Keys are compared in constant time: the SHA-256 digest of what was sent against the digest of
 * every key (equal lengths, `timingSafeEqual`, no early exit), so neither the answer's timing nor
 * which key matched tells anything about a key. Neither the keys nor the header are ever logged or
 * echoed; only a query string never carries one (the page reads its event stream with `fetch`,
 * which sends the header).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Config } from '../lib/config.js';
import { HttpError } from './errors.js';

export type AuthOptions = Config['auth'];

/** Where the page's static files are served (open: they hold no data). */
export const ASSETS_PREFIX = '/assets/';

/** True for a request that goes through without a key. */
export function isOpen(method: string, path: string, options: AuthOptions): boolean {
  const read = method === 'GET' || method === 'HEAD';
  if (path === '/healthz' || path === '/readyz') return true;
  if (read && (path === '/' || path.startsWith(ASSETS_PREFIX))) return true;
  return path === '/' && method === 'POST' && !options.classicRequiresKey;
}

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

const REALM = 'Bearer realm="image-recognition"';

/** The middleware, or undefined when no key is configured (access control off). */
export function accessControl(options: AuthOptions): Middleware | undefined {
  if (options.apiKeys.length === 0) return undefined;
  const keys = options.apiKeys.map(digest);
  const accepted = (token: string): boolean => {
    const sent = digest(token);
    let ok = false;
    // Every key is compared, whatever the outcome of the others.
    for (const key of keys) ok = timingSafeEqual(key, sent) || ok;
    return ok;
  };
  return async (ctx, next) => {
    if (isOpen(ctx.method, ctx.path, options)) return next();
    const token = /^Bearer +(\S+) *$/i.exec(ctx.get('authorization'))?.[1];
    if (token === undefined) {
      ctx.set('WWW-Authenticate', REALM);
      throw new HttpError('UNAUTHORIZED', 'this route needs an API key: send the header Authorization: Bearer <key>');
    }
    if (!accepted(token)) {
      ctx.set('WWW-Authenticate', `${REALM}, error="invalid_token"`);
      throw new HttpError('UNAUTHORIZED', 'the API key sent in Authorization: Bearer was not accepted');
    }
    return next();
  };
}
