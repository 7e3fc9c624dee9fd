/**
 * `GET /api/v1/status` of the running service, polled to record the workers over time and every
 * scaling decision the local autoscaler made (the status keeps only the last few, so they are
 * accumulated here).
 */
import { ValidateError } from './errors.js';

export interface StatusSample {
  /** Seconds since the replay's time origin. */
  readonly t: number;
  readonly desired: number;
  readonly running: number;
  readonly visible: number;
  readonly inFlight: number;
}

/** One decision as the status reports it (see scaling/local-autoscaler.ts DecisionRecord). */
export interface ObservedDecision {
  readonly at: string;
  /** Epoch seconds. */
  readonly t: number;
  readonly from: number;
  readonly to: number;
  readonly action: string;
  readonly rule: string;
  readonly reason: string;
  readonly resize: { readonly state: string; readonly ms: number | undefined };
}

export interface StatusPolicy {
  readonly minCapacity: number;
  readonly maxCapacity: number;
  readonly periodSeconds: number;
  readonly targetBacklogPerInstance: number;
}

export interface StatusSnapshot {
  readonly desired: number;
  readonly running: number;
  readonly visible: number;
  readonly inFlight: number;
  readonly policy: StatusPolicy | undefined;
  readonly decisions: readonly ObservedDecision[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function field(o: Obj, key: string, where: string): unknown {
  if (!(key in o)) throw new ValidateError('SERVICE', `/api/v1/status: ${where}.${key} is missing`, { where, key });
  return o[key];
}

function num(o: Obj, key: string, where: string): number {
  const v = field(o, key, where);
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ValidateError('SERVICE', `/api/v1/status: ${where}.${key} is not a number`, { where, key, value: v });
  return v;
}

function str(o: Obj, key: string, where: string): string {
  const v = field(o, key, where);
  if (typeof v !== 'string') throw new ValidateError('SERVICE', `/api/v1/status: ${where}.${key} is not a string`, { where, key, value: v });
  return v;
}

function obj(o: Obj, key: string, where: string): Obj {
  const v = field(o, key, where);
  if (!isObj(v)) throw new ValidateError('SERVICE', `/api/v1/status: ${where}.${key} is not an object`, { where, key });
  return v;
}

export function parseStatus(body: unknown): StatusSnapshot {
  if (!isObj(body)) throw new ValidateError('SERVICE', '/api/v1/status did not answer a JSON object', {});
  const queue = obj(body, 'queue', 'status');
  const workers = obj(body, 'workers', 'status');
  const list = field(body, 'decisions', 'status');
  if (!Array.isArray(list)) throw new ValidateError('SERVICE', '/api/v1/status: decisions is not an array', {});
  const decisions = list.map((d: unknown, i): ObservedDecision => {
    const where = `decisions[${i}]`;
    if (!isObj(d)) throw new ValidateError('SERVICE', `/api/v1/status: ${where} is not an object`, {});
    const resize = obj(d, 'resize', where);
    return {
      at: str(d, 'at', where),
      t: num(d, 't', where),
      from: num(d, 'from', where),
      to: num(d, 'to', where),
      action: str(d, 'action', where),
      rule: str(d, 'rule', where),
      reason: str(d, 'reason', where),
      resize: { state: str(resize, 'state', `${where}.resize`), ms: typeof resize['ms'] === 'number' ? resize['ms'] : undefined },
    };
  });
  const p = body['policy'];
  return {
    desired: num(workers, 'desired', 'workers'),
    running: num(workers, 'running', 'workers'),
    visible: num(queue, 'visible', 'queue'),
    inFlight: num(queue, 'inFlight', 'queue'),
    policy: isObj(p)
      ? {
          minCapacity: num(p, 'minCapacity', 'policy'),
          maxCapacity: num(p, 'maxCapacity', 'policy'),
          periodSeconds: num(p, 'periodSeconds', 'policy'),
          targetBacklogPerInstance: num(p, 'targetBacklogPerInstance', 'policy'),
        }
      : undefined,
    decisions,
  };
}

export async function fetchStatus(baseUrl: string, signal?: AbortSignal): Promise<StatusSnapshot> {
  let response: Response;
  try {
    response = await fetch(`${baseUrl}/api/v1/status`, signal ? { signal } : {});
  } catch (err) {
    throw new ValidateError('SERVICE', `GET /api/v1/status failed: ${(err as Error).message}`, { baseUrl }, { cause: err });
  }
  const text = await response.text();
  if (!response.ok) {
    throw new ValidateError('SERVICE', `GET /api/v1/status answered ${response.status} (is the autoscaler wiring in place?)`, { status: response.status, body: text.slice(0, 200) });
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new ValidateError('SERVICE', 'GET /api/v1/status did not answer JSON', { body: text.slice(0, 200) }, { cause: err });
  }
  return parseStatus(body);
}

export interface StatusRecorder {
  readonly samples: readonly StatusSample[];
  /** Every decision seen, oldest first, without duplicates. */
  decisions(): ObservedDecision[];
  readonly latest: StatusSnapshot | undefined;
  /** Stops polling; rejects with the first polling error, if any. */
  stop(): Promise<void>;
}

/** Polls every `everyMs` (never overlapping); `origin` is the `performance.now()` the samples are relative to. */
export function recordStatus(baseUrl: string, origin: number, everyMs: number): StatusRecorder {
  const samples: StatusSample[] = [];
  const seen = new Map<string, ObservedDecision>();
  let latest: StatusSnapshot | undefined;
  let failure: unknown;
  let active = true;
  const controller = new AbortController();
  const loop = (async () => {
    while (active) {
      const started = performance.now();
      try {
        const s = await fetchStatus(baseUrl, controller.signal);
        latest = s;
        samples.push({ t: (performance.now() - origin) / 1000, desired: s.desired, running: s.running, visible: s.visible, inFlight: s.inFlight });
        // A decision's resize outcome changes later (pending → done): keep the newest copy.
        for (const d of s.decisions) seen.set(`${d.at}|${d.from}|${d.to}`, d);
      } catch (err) {
        if (!active) break;
        failure = err;
        break;
      }
      const wait = Math.max(0, everyMs - (performance.now() - started));
      await new Promise((r) => setTimeout(r, wait));
    }
  })();
  return {
    samples,
    decisions: () => [...seen.values()].sort((a, b) => a.t - b.t),
    get latest() {
      return latest;
    },
    async stop() {
      active = false;
      controller.abort();
      await loop;
      if (failure !== undefined) throw failure;
    },
  };
}
