/**
 * `npm run scaling:simulate`: run a trace through the simulator in one mode, or every AWS mode on
 * several traces (`--compare`); print the summary or the table, write SVG charts and a JSON report.
 */

import { readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { badFlags, type CliDeps, cliIo, failureExitCode, parseFlags } from '../../scaling/core/cli.js';
import { ScalingError } from '../../scaling/core/errors.js';
import { type ScalingPolicy, targetBacklogPerInstance } from '../../scaling/core/policy.js';
import { loadPolicy } from '../../scaling/core/policy-file.js';
import {
  checkAuthority,
  checkTargets,
  compareModes,
  formatAuthority,
  formatCompareTable,
  formatTargets,
  type ModeRun,
  midTrace,
  runSetup,
} from './compare-modes.js';
import { modeSetup, type PolicyOptions, SIM_MODES, type SimEnvironment, type SimMode } from './environment.js';
import type { SimResult } from './simulator.js';
import { renderChart } from './svg.js';
import { loadTrace, type Trace } from './trace.js';

export const SIMULATE_USAGE = `Usage: npm run scaling:simulate -- --trace FILE [options]
       npm run scaling:simulate -- --compare [--trace FILE ...] [options]

Simulates the queue, the instances and the scaler for a trace: arrival times, or closed-loop clients.

  --trace FILE        JSON array / {"arrivals": [...]} / {"closedLoop": {"clients", "requests"}}, or
                      CSV (one arrival per line); with --compare repeatable, default every trace in
                      tools/sim/traces/
  --mode MODE         alarms (default): CloudWatch alarms and target tracking, 60 s periods, metrics
                                        seen 1 period late, instances boot from scratch
                      controller:       reads the queue every 2 s (no metric delay), sets the desired
                                        capacity; instances boot from scratch
                      controller+warm:  the same controller, scale-out starts stopped warm-pool instances
                      as-deployed:      what the stack deploys: controller+warm, sending its heartbeat,
                                        and the group's CloudWatch policies from the stack's own
                                        requests, standing aside while the heartbeat comes
                      controller-dies:  as-deployed, the controller dying at --dies S (default: half-way
                                        through the as-deployed run): the CloudWatch policies take over
                      local:            the local autoscaler, 1 s periods, 2 s process start, no lag
                      (aws: the former name of alarms)
  --compare           every AWS mode on every trace: a table, the targets, one scaling authority
                      checked, one chart per run and compare.json in --out
  --dies S            when the controller dies, seconds (controller-dies only)
  --policy FILE       JSON scaling policy over the mode's preset (not with --compare)
  --max N             maxCapacity of every mode's policy (default: the preset's; 20 with --compare)
  --period S          the controller's period, seconds (controller modes; default 2)
  --out DIR           where to write <trace>-<mode>.svg and .json (default .tmp/scaling-sim)
  --seed N            PRNG seed for service-time jitter (default 1)
  --boot S  --warm-start S  --warm-pool N
                      launch → worker ready; warm-pool instance started → worker ready; stopped
                      instances in the warm pool (default: maxCapacity in controller+warm, else 0)
  --service S  --batch N  --concurrency N  --lag N  --jitter F  --visibility S
                      seconds per image, batch size, worker slots per instance, metric lag in
                      periods, jitter, visibility timeout
  --sampling max|instant
                      a datapoint is the period's maximum (default) or one reading at its end
  --ingest S  --deliver S
                      per-request time outside the queue, counted in latency (default 0): arrival →
                      in the queue (upload, store, enqueue) and processed → answered (delivery)
  --cold-start S  --cold-factor F
                      a launched instance works F times slower during its first S seconds in
                      service (default 0 s, factor 1: no cold start)
  --json              print the summary (or the comparison) as JSON instead of text
  -h, --help          this text
Defaults and their sources: docs/scaling.md › Simulator.`;

const NUMERIC_FLAGS = {
  seed: 'seed',
  boot: 'bootSeconds',
  'warm-start': 'warmStartSeconds',
  'warm-pool': 'warmPoolSize',
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

type NumericOverride = (typeof NUMERIC_FLAGS)[keyof typeof NUMERIC_FLAGS];

export interface SimulateOptions {
  readonly help: boolean;
  readonly compare: boolean;
  /** One with a single run; any number with --compare (none: every shipped trace). */
  readonly traces: readonly string[];
  readonly policyFile: string | undefined;
  readonly mode: SimMode;
  readonly out: string;
  readonly json: boolean;
  readonly overrides: Partial<Pick<SimEnvironment, NumericOverride | 'observation'>>;
  readonly policyOptions: PolicyOptions;
}

const TRACES_DIR = fileURLToPath(new URL('./traces/', import.meta.url));

/** The shipped traces, by file name. */
export function shippedTraces(): string[] {
  return readdirSync(TRACES_DIR)
    .filter((f) => /\.(json|csv)$/i.test(f))
    .sort()
    .map((f) => join(TRACES_DIR, f));
}

const badOption = (option: string, message: string, value?: unknown): ScalingError =>
  new ScalingError('INVALID_OPTIONS', `${option}: ${message}`, { option, ...(value === undefined ? {} : { value }) });

function number(flag: string, raw: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw badOption(`--${flag}`, 'must be a number', raw);
  return n;
}

export function parseSimulateArgs(argv: readonly string[]): SimulateOptions {
  const v = parseFlags(
    argv,
    {
      trace: { type: 'string', multiple: true },
      policy: { type: 'string' },
      mode: { type: 'string' },
      compare: { type: 'boolean', default: false },
      max: { type: 'string' },
      period: { type: 'string' },
      dies: { type: 'string' },
      sampling: { type: 'string' },
      out: { type: 'string', default: '.tmp/scaling-sim' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      ...(Object.fromEntries(Object.keys(NUMERIC_FLAGS).map((flag) => [flag, { type: 'string' }])) as Record<
        keyof typeof NUMERIC_FLAGS,
        { type: 'string' }
      >),
    },
    badFlags(argv),
  );
  const compare = v.compare === true;
  const rawMode = v.mode ?? 'alarms';
  const mode = rawMode === 'aws' ? 'alarms' : rawMode;
  if (!(SIM_MODES as readonly string[]).includes(mode))
    throw badOption('--mode', `must be one of ${SIM_MODES.join(', ')}`, rawMode);
  if (compare && v.mode !== undefined) throw badOption('--mode', 'not with --compare, which runs every AWS mode');
  if (compare && v.policy !== undefined)
    throw badOption(
      '--policy',
      "not with --compare: each mode runs its own preset (use --mode and --policy for one mode's variant)",
    );
  const overrides: Record<string, number | string> = {};
  for (const [flag, field] of Object.entries(NUMERIC_FLAGS)) {
    const raw = v[flag as keyof typeof NUMERIC_FLAGS];
    if (raw !== undefined) overrides[field] = number(flag, raw);
  }
  if (v.sampling !== undefined) {
    if (v.sampling !== 'max' && v.sampling !== 'instant')
      throw badOption('--sampling', 'must be max or instant', v.sampling);
    overrides.observation = v.sampling === 'max' ? 'period-max' : 'instant';
  }
  const maxCapacity = v.max === undefined ? (compare ? 20 : undefined) : number('max', v.max);
  const controllerPeriodSeconds = v.period === undefined ? undefined : number('period', v.period);
  if (controllerPeriodSeconds !== undefined && !compare && !mode.startsWith('controller')) {
    throw badOption('--period', 'applies to the controller modes (alarms evaluate 60 s CloudWatch periods)', v.period);
  }
  const controllerDiesAt = v.dies === undefined ? undefined : number('dies', v.dies);
  if (controllerDiesAt !== undefined && (compare || mode !== 'controller-dies'))
    throw badOption(
      '--dies',
      'applies to --mode controller-dies (--compare kills it half-way through each trace)',
      v.dies,
    );
  const help = v.help === true;
  const traces = v.trace ?? [];
  if (!help && !compare && traces.length !== 1)
    throw badOption('--trace', traces.length === 0 ? 'is required' : 'give one trace (or use --compare)');
  return {
    help,
    compare,
    traces,
    policyFile: v.policy,
    mode: mode as SimMode,
    out: v.out ?? '.tmp/scaling-sim',
    json: v.json === true,
    overrides: overrides as SimulateOptions['overrides'],
    policyOptions: {
      ...(maxCapacity === undefined ? {} : { maxCapacity }),
      ...(controllerPeriodSeconds === undefined ? {} : { controllerPeriodSeconds }),
      ...(controllerDiesAt === undefined ? {} : { controllerDiesAt }),
    },
  };
}

const f = (n: number, d = 1): string => n.toFixed(d);
const orDash = (n: number | null): string => (n === null ? '—' : `${f(n)} s`);

function workloadLine(trace: Trace, requests: number): string {
  if ('arrivals' in trace) return `trace ${trace.name} (${requests} requests)`;
  const c = trace.closedLoop;
  return `trace ${trace.name} (${c.requests} requests from ${c.clients} closed-loop clients, think ${c.thinkSeconds} s)`;
}

export function formatSummary(
  trace: Trace,
  mode: SimMode,
  policy: ScalingPolicy,
  env: SimEnvironment,
  result: SimResult,
): string {
  const s = result.summary;
  const pool = env.warmPoolSize > 0 ? ` · warm pool ${env.warmPoolSize} stopped, start ${env.warmStartSeconds} s` : '';
  return [
    `${workloadLine(trace, s.requests)} · mode ${mode} · period ${policy.periodSeconds} s · target ${f(targetBacklogPerInstance(policy), 2)} msgs/instance · capacity ${policy.minCapacity}-${policy.maxCapacity}`,
    `environment: boot ${env.bootSeconds} s${pool} · ${env.perImageSeconds} s/image · batch ${env.batchSize} · ${env.concurrency} slot(s)/instance · lag ${env.metricLagPeriods} period(s) · ${env.observation} · ${env.drainOnScaleIn ? 'drain' : 'terminate'} on scale-in · ingest ${env.ingestSeconds} s · deliver ${env.deliverSeconds} s · cold start ${env.coldStartSeconds} s × ${env.coldStartFactor} · seed ${env.seed}`,
    `served          ${s.served}/${s.requests}${s.drained ? '' : '  (NOT drained before the horizon)'}`,
    `latency         p50 ${f(s.latency.p50)} s · p95 ${f(s.latency.p95)} s · p99 ${f(s.latency.p99)} s · mean ${f(s.latency.mean)} s · max ${f(s.latency.max)} s`,
    `makespan        ${f(s.makespanSeconds)} s · first scale-out ${orDash(s.firstScaleOutSeconds)} · first in service ${orDash(s.firstInServiceSeconds)}`,
    `instance-min    ${f(s.instanceMinutes, 2)} · ${s.warmStarts} warm start(s), ${s.launches} launch(es)`,
    `peak queue      ${s.peakQueueDepth} visible`,
    `capacity        peak ${s.peakCapacity} · final ${s.finalCapacity} · ${s.scaleOuts} scale-out(s), ${s.scaleIns} scale-in(s) · back to min ${orDash(s.backToMinSeconds)} after the last answer · stopped at ${f(s.endSeconds, 0)} s`,
    ...(result.authority
      ? [
          `authority       the controller ${result.authority.controllerDiedAt === null ? 'ran throughout' : `died at ${f(result.authority.controllerDiedAt)} s`} · held ${result.authority.controllerHeldTicks} tick(s) · ${result.starts.length} start(s), ${s.shortStarts} ended inside their first billed minute`,
        ]
      : []),
    ...result.actions.map(
      (a) =>
        `  t=${f(a.t, 0).padStart(6)} s  ${String(a.from).padStart(2)} → ${String(a.to).padEnd(2)} ${a.by === 'scaler' ? '' : `${a.by}: `}${a.rule}: ${a.reason}`,
    ),
  ].join('\n');
}

/** A mode's name as it stands in file names. */
const stemOf = (traceName: string, mode: SimMode): string => `${traceName}-${mode.replace('+', '-')}`;

async function writeChart(
  outDir: string,
  trace: Trace,
  mode: SimMode,
  policy: ScalingPolicy,
  result: SimResult,
): Promise<string> {
  const svgPath = join(outDir, `${stemOf(trace.name, mode)}.svg`);
  await writeFile(
    svgPath,
    renderChart({
      title: `${trace.name} · ${mode} mode`,
      timeline: result.timeline,
      actions: result.actions,
      summary: result.summary,
      maxCapacity: policy.maxCapacity,
    }),
  );
  return svgPath;
}

const traceJson = (trace: Trace) => ({
  name: trace.name,
  description: trace.description,
  ...('closedLoop' in trace ? { closedLoop: trace.closedLoop } : {}),
});

export type SimulateCliDeps = CliDeps;

export async function simulateMain(argv: readonly string[], deps: SimulateCliDeps = {}): Promise<number> {
  const io = cliIo(deps, 'scaling-simulate');
  const { stdout, logger } = io;
  try {
    const opts = parseSimulateArgs(argv);
    if (opts.help) {
      stdout(SIMULATE_USAGE);
      return 0;
    }
    const outDir = resolve(opts.out);
    await mkdir(outDir, { recursive: true });
    if (opts.compare) {
      const traces = await Promise.all(
        (opts.traces.length > 0 ? opts.traces : shippedTraces()).map((path) => loadTrace(path)),
      );
      const runs = compareModes(traces, opts.overrides, opts.policyOptions);
      const charts = await Promise.all(runs.map((r) => writeChart(outDir, r.trace, r.mode, r.policy, r.result)));
      const targets = checkTargets(runs);
      const authority = checkAuthority(runs);
      const jsonPath = join(outDir, 'compare.json');
      await writeFile(jsonPath, `${JSON.stringify(compareReport(runs, charts, targets, authority), null, 2)}\n`);
      logger.info('scaling.simulate.wrote', { json: jsonPath, svg: charts });
      stdout(
        opts.json
          ? JSON.stringify(compareReport(runs, charts, targets, authority), null, 2)
          : [
              environmentLine(runs),
              '',
              formatCompareTable(runs),
              '',
              'targets (simulated, AWS, at most 20 instances):',
              formatTargets(targets),
              '',
              'one scaling authority (as deployed: the same starts as the controller alone, none cut short; the controller dead half-way: the CloudWatch policies finish the work):',
              formatAuthority(authority),
              '',
              `charts and compare.json in ${outDir}`,
            ].join('\n'),
      );
      return 0;
    }
    const path = opts.traces[0]!;
    const trace = await loadTrace(path);
    const setupOf = async (mode: SimMode, options: PolicyOptions) => {
      const preset = modeSetup(mode, opts.overrides, options);
      return opts.policyFile === undefined
        ? preset
        : modeSetup(mode, opts.overrides, options, await loadPolicy(opts.policyFile, preset.policy));
    };
    // The controller dies half-way through the as-deployed run unless --dies says when.
    const options =
      opts.mode === 'controller-dies' && opts.policyOptions.controllerDiesAt === undefined
        ? {
            ...opts.policyOptions,
            controllerDiesAt: midTrace(trace, runSetup(trace, await setupOf('as-deployed', opts.policyOptions))),
          }
        : opts.policyOptions;
    const setup = await setupOf(opts.mode, options);
    const { policy, env } = setup;
    const result = runSetup(trace, setup);
    const svgPath = await writeChart(outDir, trace, opts.mode, policy, result);
    const jsonPath = join(outDir, `${stemOf(trace.name, opts.mode)}.json`);
    await writeFile(
      jsonPath,
      `${JSON.stringify({ trace: traceJson(trace), mode: opts.mode, policy, environment: env, summary: result.summary, actions: result.actions, datapoints: result.datapoints }, null, 2)}\n`,
    );
    logger.info('scaling.simulate.wrote', { svg: svgPath, json: jsonPath });
    stdout(
      opts.json
        ? JSON.stringify({ trace: trace.name, mode: opts.mode, summary: result.summary, svg: svgPath }, null, 2)
        : formatSummary(trace, opts.mode, policy, env, result),
    );
    return 0;
  } catch (err) {
    return failureExitCode(err, 'scaling.simulate', SIMULATE_USAGE, io);
  }
}

/** The shared environment of a comparison, in one line (the warm pool is controller+warm's). */
function environmentLine(runs: readonly ModeRun[]): string {
  const warm = runs.find((r) => r.env.warmPoolSize > 0)?.env;
  const env = runs[0]?.env;
  const controller = runs.find((r) => r.mode === 'controller')?.policy;
  if (!env) return '';
  return (
    `environment: boot ${env.bootSeconds} s · warm start ${warm?.warmStartSeconds ?? env.warmStartSeconds} s (pool ${warm?.warmPoolSize ?? 0}) · ${env.perImageSeconds} s/image × batch ${env.batchSize} · ` +
    `${env.concurrency} slot(s)/instance · alarms: 60 s periods, lag ${runs.find((r) => r.mode === 'alarms')?.env.metricLagPeriods ?? '—'} · controller period ${controller?.periodSeconds ?? '—'} s · ` +
    `${env.observation} · seed ${env.seed}`
  );
}

function compareReport(
  runs: readonly ModeRun[],
  charts: readonly string[],
  targets: ReturnType<typeof checkTargets>,
  authority: ReturnType<typeof checkAuthority>,
) {
  return {
    runs: runs.map((r, i) => ({
      trace: traceJson(r.trace),
      mode: r.mode,
      policy: r.policy,
      environment: r.env,
      ...(r.controllerDiesAt === undefined ? {} : { controllerDiesAt: r.controllerDiesAt }),
      summary: r.result.summary,
      actions: r.result.actions,
      starts: r.result.starts,
      ...(r.result.authority === undefined ? {} : { authority: r.result.authority }),
      svg: charts[i],
    })),
    targets,
    authority,
  };
}
