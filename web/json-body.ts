/**
 * A JSON request body (by-reference classification, batches): read up to a small limit, parsed, and
 * required to be an object; anything else is a 400 that says what was wrong.
 */
import type { Context } from 'koa';
import { HttpError } from './errors.js';

const LIMIT = 64 * 1024;

export async function readJsonObject(ctx: Context): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > LIMIT) throw new HttpError('TOO_LARGE', `a JSON body is at most ${LIMIT} bytes`);
    chunks.push(chunk as Buffer);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new HttpError('BAD_REQUEST', `the body is not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new HttpError('BAD_REQUEST', 'the body must be a JSON object');
  return value as Record<string, unknown>;
}

/** Canonical JSON (keys sorted at every level): the same request, the same text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
