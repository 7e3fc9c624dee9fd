/**
 * One trace against the real service: `npm start`'s entry point in a child process with the local
 * autoscaler on (WORKERS unset), the trace replayed through HTTP, `/api/v1/status` polled, and the
 * stored results read back. Bounded: past `timeoutMs` the uploads are aborted and the service is
 * stopped (killed if it does not stop within a minute and a half).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, loadConfig } from '../../../lib/config.js';
import type { Logger } from '../../../lib/log.js';
import { freePorts } from '../../../lib/ports.js';
import type { DecisionRecord, PolicySummary } from '../../../scaling/core/status.js';
import type { Photo } from '../../bench/photos.js';
import { type RunningService, startServiceProcess } from '../../bench/pipeline.js';
import { ValidateError } from './errors.js';
import { type RequestOutcome, replayArrivals, type Upload } from './replay.js';
import { fetchStatus, recordStatus, type StatusSample } from './status.js';
import { readStoredResults, type StoredResult } from './stored.js';

export interface MeasureOptions {
  readonly name: string;
  /** Arrival seconds, already scaled and windowed. */
  readonly arrivals: readonly number[];
  readonly photos: readonly Photo[];
  readonly minWorkers: number;
  readonly maxWorkers: number;
  readonly policyFile: string | undefined;
  readonly timeoutMs: number;
  readonly log: Logger;
}

export interface Measurement {
  readonly name: string;
  readonly arrivals: readonly number[];
  readonly requests: readonly RequestOutcome[];
  /** `Date.now() / 1000` at the time origin (arrival 0): decisions carry epoch seconds. */
  readonly originEpoch: number;
  readonly timeline: readonly StatusSample[];
  readonly decisions: readonly DecisionRecord[];
  readonly stored: readonly StoredResult[];
  /** The policy the service reported. */
  readonly policy: PolicySummary;
  /** The service's configuration (as the child read it from the same environment). */
  readonly config: Config;
}

const STATUS_EVERY_MS = 100;
const STOP_GRACE_MS = 90_000;

async function stopService(service: RunningService, log: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), STOP_GRACE_MS)));
  const outcome = await Promise.race([service.stop().then(() => 'stopped' as const), late]);
  clearTimeout(timer);
  if (outcome === 'late') {
    log.warn('the service did not stop in time; killing it', { pid: service.pid, graceMs: STOP_GRACE_MS });
    try {
      process.kill(service.pid, 'SIGKILL');
    } catch (err) {
      // It exited between the grace's end and the kill: the measurement taken stands.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}

async function waitForWorkers(url: string, minWorkers: number, deadline: number): Promise<PolicySummary> {
  for (;;) {
    const status = await fetchStatus(url);
    if (status.policy === undefined) {
      throw new ValidateError(
        'SERVICE',
        '/api/v1/status reports no policy: is the local autoscaler on (WORKERS unset)?',
        {},
      );
    }
    if (status.workers.desired === minWorkers && status.workers.running === minWorkers) return status.policy;
    if (Date.now() > deadline)
      throw new ValidateError('TIMEOUT', `the service did not settle at ${minWorkers} worker(s)`, { status });
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function measureTrace(options: MeasureOptions): Promise<Measurement> {
  const { log } = options;
  const deadline = Date.now() + options.timeoutMs;
  const uploads: Upload[] = await Promise.all(
    options.photos.map(async (p) => ({ file: p.file, bytes: await readFile(p.path) })),
  );
  const dataDir = await mkdtemp(join(tmpdir(), 'eir-validate-'));
  // Ports chosen here so that this process can read the stored results from the same endpoint.
  const [port] = await freePorts(1);
  const waitMs = String(Math.ceil(options.timeoutMs));
  const env: Record<string, string> = {
    // The local autoscaler scales local worker processes: always on the embedded endpoint.
    ENDPOINT_MODE: 'embedded',
    WORKERS: '', // unset: the local autoscaler decides
    WORKERS_MIN: String(options.minWorkers),
    WORKERS_MAX: String(options.maxWorkers),
    SCALING_POLICY: options.policyFile ?? '',
    EMBEDDED_PORT: String(port),
    DATA_DIR: dataDir,
    // Hold every connection until its answer: the latency is the answer's, not a poll's.
    ANSWER_WAIT_MS: waitMs,
    REQUEST_TIMEOUT_MS: waitMs,
    // Every request goes through the queue, as the simulator has it. The traces outnumber the photos
    // (steady: 900 requests, 250 photos), and with the result cache on, a photo sent again is answered
    // from the output bucket without the queue: 650 of the steady trace's 900 requests then never
    // reached a worker, and its p95 (the 45th slowest of 900) fell among the 250 that did.
    RESULT_CACHE: 'false',
  };
  const config = loadConfig({ ...process.env, ...env });
  log.info('starting the service', {
    trace: options.name,
    requests: options.arrivals.length,
    minWorkers: options.minWorkers,
    maxWorkers: options.maxWorkers,
  });
  let service: RunningService;
  try {
    service = await startServiceProcess(env);
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw new ValidateError(
      'SERVICE',
      `the service did not start: ${(err as Error).message}`,
      { trace: options.name },
      { cause: err },
    );
  }
  const controller = new AbortController();
  const timer = setTimeout(
    () =>
      controller.abort(
        new ValidateError('TIMEOUT', `trace ${options.name} did not finish within ${options.timeoutMs} ms`, {
          trace: options.name,
          timeoutMs: options.timeoutMs,
        }),
      ),
    Math.max(0, deadline - Date.now()),
  );
  try {
    const policy = await waitForWorkers(service.url, options.minWorkers, deadline);
    const origin = performance.now();
    const originEpoch = Date.now() / 1000;
    const recorder = recordStatus(service.url, origin, STATUS_EVERY_MS);
    let requests: RequestOutcome[];
    try {
      requests = await replayArrivals(service.url, options.arrivals, uploads, origin, controller.signal);
    } finally {
      await recorder.stop();
    }
    const ids = requests.flatMap((r) => (r.id !== undefined && r.done !== undefined ? [r.id] : []));
    const stored = await readStoredResults(config, ids);
    log.info('trace replayed', {
      trace: options.name,
      answered: ids.length,
      requests: requests.length,
      decisions: recorder.decisions().length,
    });
    return {
      name: options.name,
      arrivals: options.arrivals,
      requests,
      originEpoch,
      timeline: recorder.samples,
      decisions: recorder.decisions(),
      stored,
      policy,
      config,
    };
  } finally {
    clearTimeout(timer);
    await stopService(service, log);
    await rm(dataDir, { recursive: true, force: true });
  }
}
