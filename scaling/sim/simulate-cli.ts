/** `npm run scaling:simulate`: run a trace through the simulator, print the summary, write SVG + JSON. */

import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { badFlags, cliIo, failureExitCode, parseFlags, type CliDeps } from '../core/cli.js';
import { ScalingError } from '../core/errors.js';
import { DEFAULT_POLICY, LOCAL_POLICY, targetBacklogPerInstance, type ScalingPolicy } from '../core/policy.js';
import { loadPolicy } from '../core/policy-file.js';
import { environmentPreset, simulate, validateEnvironment, type SimEnvironment, type SimMode, type SimResult } from './simulator.js';
import { renderChart } from './svg.js';
import { loadTrace, type Trace } from './trace.js';

export const SIMULATE_USAGE = `Usage: npm run scaling:simulate -- --trace FILE [options]

Simulates the queue, the instances and the scaler for a trace of arrival times.

  --trace FILE        arrival times in seconds: JSON array / {"arrivals": [...]}, or CSV (one per line)
  --policy FILE       JSON scaling policy (over the defaults of the mode)
  --mode aws|local    aws: 60 s periods, 90 s boot, metrics seen 1 period late (default)
                      local: the local autoscaler, 1 s periods, 2 s process start, no lag
  --out DIR           where to write <trace>-<mode>.svg and .json (default .tmp/scaling-sim)
  --seed N            PRNG seed for service-time jitter (default 1)
  --boot S  --service S  --batch N  --concurrency N  --lag N  --jitter F  --visibility S
                      override the environment (boot time, seconds per image, batch size,
                      worker slots per instance, metric lag in periods, jitter, visibility timeout)
  --ingest S  --deliver S
                      per-request time outside the queue, counted in latency (default 0): arrival →
                      in the queue (upload, store, enqueue) and processed → answered (delivery)
  --cold-start S  --cold-factor F
                      a launched instance works F times slower during its first S seconds in
                      service (default 0 s, factor 1: no cold start)
  --json              print the summary as JSON instead of text
  -h, --help          this text`;

export interface SimulateOptions {
  readonly help: boolean;
  readonly trace: string | undefined;
  readonly policyFile: string | undefined;
  readonly mode: SimMode;
  readonly out: string;
  readonly json: boolean;
  readonly overrides: Partial<Record<(typeof NUMERIC_FLAGS)[keyof typeof NUMERIC_FLAGS], number>>;
}

const NUMERIC_FLAGS = {
  seed: 'seed',
  boot: 'bootSeconds',
  service: 'perImageSeconds',
  batch: 'batchSize',
  concurrency: 'concurrency',
  lag: 'metricLagPeriods',
  jitter: 'jitter',
  visibility: 'visibilityTimeoutSeconds',
  ingest: 'ingestSeconds',
  deliver: 'deliverSeconds',
  'cold-start': 'coldStartSeconds',
  'cold-factor': 'coldStartFactor',
} as const;

export function parseSimulateArgs(argv: readonly string[]): SimulateOptions {
  const v = parseFlags(
    argv,
    {
      trace: { type: 'string' },
      policy: { type: 'string' },
      mode: { type: 'string', default: 'aws' },
      out: { type: 'string', default: '.tmp/scaling-sim' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      seed: { type: 'string' },
      boot: { type: 'string' },
      service: { type: 'string' },
      batch: { type: 'string' },
      concurrency: { type: 'string' },
      lag: { type: 'string' },
      jitter: { type: 'string' },
      visibility: { type: 'string' },
      ingest: { type: 'string' },
      deliver: { type: 'string' },
      'cold-start': { type: 'string' },
      'cold-factor': { type: 'string' },
    },
    badFlags(argv),
  );
  const mode = v.mode;
  if (mode !== 'aws' && mode !== 'local') throw new ScalingError('INVALID_OPTIONS', '--mode: must be aws or local', { option: '--mode', value: mode });
  const overrides: Record<string, number> = {};
  for (const [flag, field] of Object.entries(NUMERIC_FLAGS)) {
    const raw = v[flag as keyof typeof NUMERIC_FLAGS];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new ScalingError('INVALID_OPTIONS', `--${flag}: must be a number`, { option: `--${flag}`, value: raw });
    overrides[field] = n;
  }
  const help = v.help === true;
  if (!help && v.trace === undefined) throw new ScalingError('INVALID_OPTIONS', '--trace: is required', { option: '--trace' });
  return { help, trace: v.trace, policyFile: v.policy, mode, out: v.out ?? '.tmp/scaling-sim', json: v.json === true, overrides };
}

export function formatSummary(trace: Trace, mode: SimMode, policy: ScalingPolicy, env: SimEnvironment, result: SimResult): string {
  const s = result.summary;
  const f = (n: number, d = 1) => n.toFixed(d);
  return [
    `trace ${trace.name} (${s.requests} requests) · mode ${mode} · period ${policy.periodSeconds} s · target ${f(targetBacklogPerInstance(policy), 2)} msgs/instance · capacity ${policy.minCapacity}-${policy.maxCapacity}`,
    `environment: boot ${env.bootSeconds} s · ${env.perImageSeconds} s/image · batch ${env.batchSize} · ${env.concurrency} slot(s)/instance · lag ${env.metricLagPeriods} period(s) · ingest ${env.ingestSeconds} s · deliver ${env.deliverSeconds} s · cold start ${env.coldStartSeconds} s × ${env.coldStartFactor} · seed ${env.seed}`,
    `served          ${s.served}/${s.requests}${s.drained ? '' : '  (NOT drained before the horizon)'}`,
    `latency         p50 ${f(s.latency.p50)} s · p95 ${f(s.latency.p95)} s · p99 ${f(s.latency.p99)} s · mean ${f(s.latency.mean)} s · max ${f(s.latency.max)} s`,
    `makespan        ${f(s.makespanSeconds)} s`,
    `instance-min    ${f(s.instanceMinutes, 2)}`,
    `peak queue      ${s.peakQueueDepth} visible`,
    `capacity        peak ${s.peakCapacity} · final ${s.finalCapacity} · ${s.scaleOuts} scale-out(s), ${s.scaleIns} scale-in(s) · stopped at ${f(s.endSeconds, 0)} s`,
    ...result.actions.map((a) => `  t=${f(a.t, 0).padStart(6)} s  ${String(a.from).padStart(2)} → ${String(a.to).padEnd(2)} ${a.rule}: ${a.reason}`),
  ].join('\n');
}

export type SimulateCliDeps = CliDeps;

export async function simulateMain(argv: readonly string[], deps: SimulateCliDeps = {}): Promise<number> {
  const io = cliIo(deps, 'scaling-simulate');
  const { stdout, logger } = io;
  try {
    const opts = parseSimulateArgs(argv);
    if (opts.help || opts.trace === undefined) {
      stdout(SIMULATE_USAGE);
      return 0;
    }
    const base = opts.mode === 'aws' ? DEFAULT_POLICY : LOCAL_POLICY;
    const policy = opts.policyFile === undefined ? base : await loadPolicy(opts.policyFile, base);
    const env = validateEnvironment({ ...environmentPreset(opts.mode, policy), ...opts.overrides });
    const trace = await loadTrace(opts.trace);
    const result = simulate({ arrivals: trace.arrivals, policy, env });

    const outDir = resolve(opts.out);
    await mkdir(outDir, { recursive: true });
    const stem = `${trace.name}-${opts.mode}`;
    const svgPath = join(outDir, `${stem}.svg`);
    const jsonPath = join(outDir, `${stem}.json`);
    await writeFile(
      svgPath,
      renderChart({ title: `${trace.name} · ${opts.mode} mode`, timeline: result.timeline, actions: result.actions, summary: result.summary, maxCapacity: policy.maxCapacity }),
    );
    await writeFile(
      jsonPath,
      `${JSON.stringify({ trace: { name: trace.name, description: trace.description }, mode: opts.mode, policy, environment: env, summary: result.summary, actions: result.actions, datapoints: result.datapoints }, null, 2)}\n`,
    );
    logger.info('scaling.simulate.wrote', { svg: svgPath, json: jsonPath });
    stdout(opts.json ? JSON.stringify({ trace: trace.name, mode: opts.mode, summary: result.summary, svg: svgPath }, null, 2) : formatSummary(trace, opts.mode, policy, env, result));
    return 0;
  } catch (err) {
    return failureExitCode(err, 'scaling.simulate', SIMULATE_USAGE, io);
  }
}
