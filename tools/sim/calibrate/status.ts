/**
 * `GET /api/v1/status` of the running service, read back as the `ServiceStatus` it is declared as
 * (`scaling/core/status.ts`) and polled to record the workers over time and every scaling decision
 * the local autoscaler made (the status keeps only the last few, so they are accumulated here).
 */
import { DECISION_RULES } from '../../../scaling/core/decide.js';
import type {
  DecisionInputs,
  DecisionRecord,
  PolicySummary,
  ResizeOutcome,
  ServiceStatus,
} from '../../../scaling/core/status.js';
import { isObject, type JsonObject } from '../../../scaling/core/values.js';
import { ValidateError } from './errors.js';

/** One poll of the status, as the replay's timeline keeps it. */
export interface StatusSample {
  /** Seconds since the replay's time origin. */
  readonly t: number;
  readonly desired: number;
  readonly running: number;
  readonly visible: number;
  readonly inFlight: number;
}

const bad = (message: string, context: Record<string, unknown> = {}) =>
  new ValidateError('SERVICE', `/api/v1/status: ${message}`, context);

function field(o: JsonObject, key: string, where: string): unknown {
  if (!(key in o)) throw bad(`${where}.${key} is missing`, { where, key });
  return o[key];
}

function num(o: JsonObject, key: string, where: string): number {
  const v = field(o, key, where);
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw bad(`${where}.${key} is not a number`, { where, key, value: v });
  return v;
}

function numOrNull(o: JsonObject, key: string, where: string): number | null {
  return o[key] === null ? null : num(o, key, where);
}

function str(o: JsonObject, key: string, where: string): string {
  const v = field(o, key, where);
  if (typeof v !== 'string') throw bad(`${where}.${key} is not a string`, { where, key, value: v });
  return v;
}

function oneOf<const T extends string>(o: JsonObject, key: string, where: string, values: readonly T[]): T {
  const v = str(o, key, where);
  if (!(values as readonly string[]).includes(v))
    throw bad(`${where}.${key} is not one of ${values.join(', ')}`, { where, key, value: v });
  return v as T;
}

function obj(o: JsonObject, key: string, where: string): JsonObject {
  const v = field(o, key, where);
  if (!isObject(v)) throw bad(`${where}.${key} is not an object`, { where, key });
  return v;
}

function list(o: JsonObject, key: string, where: string): unknown[] {
  const v = field(o, key, where);
  if (!Array.isArray(v)) throw bad(`${where}.${key} is not an array`, { where, key });
  return v;
}

function parseInputs(o: JsonObject, where: string): DecisionInputs {
  return {
    visible: num(o, 'visible', where),
    inFlight: num(o, 'inFlight', where),
    running: num(o, 'running', where),
    desired: num(o, 'desired', where),
    lastScaleOut: numOrNull(o, 'lastScaleOut', where),
    lastScaleIn: numOrNull(o, 'lastScaleIn', where),
    idleSince: numOrNull(o, 'idleSince', where),
    backlogSince: numOrNull(o, 'backlogSince', where),
  };
}

function parseResize(o: JsonObject, where: string): ResizeOutcome {
  const state = oneOf(o, 'state', where, ['pending', 'done', 'failed', 'superseded']);
  const attempts = num(o, 'attempts', where);
  if (state === 'pending') return { state, attempts };
  const ms = num(o, 'ms', where);
  if (state === 'done') return { state, attempts, ms };
  return { state, attempts, ms, error: obj(o, 'error', where) };
}

function parseDecision(d: unknown, i: number): DecisionRecord {
  const where = `decisions[${i}]`;
  if (!isObject(d)) throw bad(`${where} is not an object`);
  return {
    at: str(d, 'at', where),
    t: num(d, 't', where),
    inputs: parseInputs(obj(d, 'inputs', where), `${where}.inputs`),
    from: num(d, 'from', where),
    to: num(d, 'to', where),
    action: oneOf(d, 'action', where, ['scale-out', 'scale-in']),
    rule: oneOf(d, 'rule', where, DECISION_RULES),
    reason: str(d, 'reason', where),
    resize: parseResize(obj(d, 'resize', where), `${where}.resize`),
  };
}

function parsePolicy(p: JsonObject): PolicySummary {
  return {
    minCapacity: num(p, 'minCapacity', 'policy'),
    maxCapacity: num(p, 'maxCapacity', 'policy'),
    periodSeconds: num(p, 'periodSeconds', 'policy'),
    targetBacklogPerInstance: num(p, 'targetBacklogPerInstance', 'policy'),
  };
}

/** Checks an answer of `GET /api/v1/status` against `ServiceStatus`; throws `ValidateError` SERVICE naming the bad field. */
export function parseStatus(body: unknown): ServiceStatus {
  if (!isObject(body)) throw new ValidateError('SERVICE', '/api/v1/status did not answer a JSON object', {});
  const queue = obj(body, 'queue', 'status');
  const workers = obj(body, 'workers', 'status');
  const decisions = list(body, 'decisions', 'status').map(parseDecision);
  const runtime = obj(body, 'runtime', 'status');
  const nodes = list(runtime, 'workers', 'runtime');
  const sampledAt = queue.sampledAt;
  if (sampledAt !== undefined && sampledAt !== null && typeof sampledAt !== 'string')
    throw bad('queue.sampledAt is not a string or null', { value: sampledAt });
  return {
    queue: {
      visible: num(queue, 'visible', 'queue'),
      inFlight: num(queue, 'inFlight', 'queue'),
      ...(sampledAt === undefined ? {} : { sampledAt }),
    },
    workers: { desired: num(workers, 'desired', 'workers'), running: num(workers, 'running', 'workers') },
    ...(body.policy === undefined ? {} : { policy: parsePolicy(obj(body, 'policy', 'status')) }),
    decisions,
    runtime: {
      node: str(runtime, 'node', 'runtime'),
      workers: nodes.map((v, i) => {
        if (typeof v !== 'string') throw bad(`runtime.workers[${i}] is not a string`, { value: v });
        return v;
      }),
    },
  };
}

export async function fetchStatus(baseUrl: string, signal?: AbortSignal): Promise<ServiceStatus> {
  let response: Response;
  try {
    response = await fetch(`${baseUrl}/api/v1/status`, signal ? { signal } : {});
  } catch (err) {
    throw new ValidateError(
      'SERVICE',
      `GET /api/v1/status failed: ${(err as Error).message}`,
      { baseUrl },
      { cause: err },
    );
  }
  const text = await response.text();
  if (!response.ok) {
    throw new ValidateError(
      'SERVICE',
      `GET /api/v1/status answered ${response.status} (is the autoscaler wiring in place?)`,
      { status: response.status, body: text.slice(0, 200) },
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new ValidateError(
      'SERVICE',
      'GET /api/v1/status did not answer JSON',
      { body: text.slice(0, 200) },
      { cause: err },
    );
  }
  return parseStatus(body);
}

export interface StatusRecorder {
  readonly samples: readonly StatusSample[];
  /** Every decision seen, oldest first, without duplicates. */
  decisions(): DecisionRecord[];
  readonly latest: ServiceStatus | undefined;
  /** Stops polling; rejects with the first polling error, if any. */
  stop(): Promise<void>;
}

/** Polls every `everyMs` (never overlapping); `origin` is the `performance.now()` the samples are relative to. */
export function recordStatus(baseUrl: string, origin: number, everyMs: number): StatusRecorder {
  const samples: StatusSample[] = [];
  const seen = new Map<string, DecisionRecord>();
  let latest: ServiceStatus | undefined;
  let failure: unknown;
  let active = true;
  const controller = new AbortController();
  const loop = (async () => {
    while (active) {
      const started = performance.now();
      try {
        const s = await fetchStatus(baseUrl, controller.signal);
        latest = s;
        samples.push({
          t: (performance.now() - origin) / 1000,
          desired: s.workers.desired,
          running: s.workers.running,
          visible: s.queue.visible,
          inFlight: s.queue.inFlight,
        });
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
