/**
 * Replays a trace through HTTP: photo i is uploaded to `POST /api/v1/classify` at its arrival time
 * (seconds after the time origin), each on its own connection, whatever is still in flight. An
 * answer of 202 (the web tier stopped holding the connection) is followed up on its job location.
 */
import { isObject, type JsonObject } from '../../../scaling/core/values.js';
import { ValidateError } from './errors.js';

export interface Upload {
  readonly file: string;
  readonly bytes: Uint8Array;
}

export interface RequestOutcome {
  readonly index: number;
  /** Scheduled arrival, seconds after the origin. */
  readonly arrival: number;
  /** When the upload was actually sent, seconds after the origin. */
  readonly sent: number;
  /** When the answer arrived, seconds after the origin (undefined: no answer). */
  readonly done: number | undefined;
  /** HTTP status of the upload (0: no response). */
  readonly status: number;
  readonly id: string | undefined;
  /** Stage timings (ms) the service reported for this image. */
  readonly timings: Readonly<Record<string, number>>;
  /** Answered 202; the result was read from `/api/v1/jobs/:id` (latency rounded up to the poll). */
  readonly polled: boolean;
  readonly error: string | undefined;
}

function numbers(v: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (isObject(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'number') out[k] = x;
  return out;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });

async function json(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ValidateError(
      'SERVICE',
      `${response.url} answered ${response.status} with non-JSON`,
      { status: response.status, body: text.slice(0, 200) },
      { cause: err },
    );
  }
}

/** Follows a 202 job until it is done or failed. */
async function pollJob(
  baseUrl: string,
  location: string,
  signal: AbortSignal,
): Promise<{ ok: boolean; id: string; timings: Record<string, number>; error?: string }> {
  for (;;) {
    await sleep(100, signal);
    const response = await fetch(new URL(location, baseUrl), { signal });
    const body = await json(response);
    if (!isObject(body)) throw new ValidateError('SERVICE', `${location} did not answer an object`, { location });
    const status = body.status;
    if (status === 'done' && isObject(body.result)) {
      return { ok: true, id: String(body.id), timings: numbers(body.result.timings) };
    }
    if (status === 'failed') return { ok: false, id: String(body.id), timings: {}, error: JSON.stringify(body.error) };
    if (status !== 'pending')
      throw new ValidateError('SERVICE', `${location} answered an unknown status`, {
        location,
        status: response.status,
        body,
      });
  }
}

async function uploadOne(
  baseUrl: string,
  upload: Upload,
  signal: AbortSignal,
  origin: number,
  index: number,
  arrival: number,
): Promise<RequestOutcome> {
  const sent = (performance.now() - origin) / 1000;
  const base = { index, arrival, sent, polled: false };
  const at = () => (performance.now() - origin) / 1000;
  try {
    const form = new FormData();
    form.append('image', new Blob([upload.bytes]), upload.file);
    const response = await fetch(`${baseUrl}/api/v1/classify`, { method: 'POST', body: form, signal });
    const body = await json(response);
    const first =
      isObject(body) && Array.isArray(body.results) && isObject(body.results[0])
        ? (body.results[0] as JsonObject)
        : undefined;
    if (response.status === 200 && first && typeof first.label === 'string') {
      return {
        ...base,
        done: at(),
        status: 200,
        id: String(first.id),
        timings: numbers(first.timings),
        error: undefined,
      };
    }
    if (response.status === 202 && first && typeof first.location === 'string') {
      const job = await pollJob(baseUrl, first.location, signal);
      return {
        ...base,
        done: job.ok ? at() : undefined,
        status: 202,
        id: job.id,
        timings: job.timings,
        polled: true,
        error: job.error,
      };
    }
    return {
      ...base,
      done: undefined,
      status: response.status,
      id: undefined,
      timings: {},
      error: JSON.stringify(body).slice(0, 300),
    };
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    return { ...base, done: undefined, status: 0, id: undefined, timings: {}, error: (err as Error).message };
  }
}

/**
 * Uploads `uploads[i % uploads.length]` at `arrivals[i]` seconds after `origin` (a
 * `performance.now()` value). Resolves when every upload has its answer; rejects with the
 * signal's reason if it aborts first.
 */
export async function replayArrivals(
  baseUrl: string,
  arrivals: readonly number[],
  uploads: readonly Upload[],
  origin: number,
  signal: AbortSignal,
): Promise<RequestOutcome[]> {
  if (uploads.length === 0) throw new ValidateError('INVALID_OPTIONS', 'no photos to upload', { option: '--photos' });
  const pending = arrivals.map(async (arrival, index) => {
    const wait = origin + arrival * 1000 - performance.now();
    if (wait > 0) await sleep(wait, signal);
    return uploadOne(baseUrl, uploads[index % uploads.length]!, signal, origin, index, arrival);
  });
  return Promise.all(pending);
}
