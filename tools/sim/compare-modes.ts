/**
 * The AWS modes side by side: every mode × every trace on one shared environment, a table of the
 * numbers that matter (makespan, latency, instances, time back to the minimum, instance-minutes,
 * starts and the starts that ended inside their first billed minute), the product's targets checked
 * against them with what dominates each result, and one scaling authority checked: as deployed,
 * the same starts as the controller alone and none cut short; the controller dead half-way, the
 * CloudWatch policies finish the work.
 */

import { fallbackPolicy, type ScalingPolicy } from '../../scaling/core/policy.js';
import {
  AWS_MODES,
  type AwsMode,
  type ModeSetup,
  modeSetup,
  type PolicyOptions,
  type SimEnvironment,
} from './environment.js';
import { type InstanceStart, type SimResult, type SimSummary, simulate } from './simulator.js';
import type { Trace } from './trace.js';

export interface ModeRun {
  readonly trace: Trace;
  readonly mode: AwsMode;
  readonly policy: ScalingPolicy;
  readonly env: SimEnvironment;
  readonly result: SimResult;
  /** `controller-dies`: when it died. */
  readonly controllerDiesAt?: number;
}

/** Runs a mode's setup on a workload. */
export function runSetup(trace: Trace, setup: ModeSetup): SimResult {
  const { policy, env, authority } = setup;
  return simulate({ ...trace, policy, env, ...(authority === undefined ? {} : { authority }) });
}

/** The first arrival of a trace (closed-loop clients: their start). */
export function firstArrival(trace: Trace): number {
  // Arrivals are sorted ascending (trace.ts); a spread of a million would overflow the stack.
  return 'arrivals' in trace ? (trace.arrivals[0] ?? 0) : (trace.closedLoop.startSeconds ?? 0);
}

/** "Mid-trace" for `controller-dies`: half-way from the first arrival to the last answer of the `as-deployed` run. */
export function midTrace(trace: Trace, asDeployed: SimResult): number {
  return firstArrival(trace) + asDeployed.summary.makespanSeconds / 2;
}

/** Every AWS mode on every trace, with the same environment overrides and policy options. */
export function compareModes(
  traces: readonly Trace[],
  overrides: Partial<SimEnvironment> = {},
  options: PolicyOptions = {},
): ModeRun[] {
  const runs: ModeRun[] = [];
  for (const trace of traces) {
    let deployed: SimResult | undefined;
    for (const mode of AWS_MODES) {
      const controllerDiesAt =
        mode === 'controller-dies'
          ? midTrace(trace, deployed ?? runSetup(trace, modeSetup('as-deployed', overrides, options)))
          : undefined;
      const setup = modeSetup(
        mode,
        overrides,
        controllerDiesAt === undefined ? options : { ...options, controllerDiesAt },
      );
      const result = runSetup(trace, setup);
      if (mode === 'as-deployed') deployed = result;
      runs.push({
        trace,
        mode,
        policy: setup.policy,
        env: setup.env,
        result,
        ...(controllerDiesAt === undefined ? {} : { controllerDiesAt }),
      });
    }
  }
  return runs;
}

/** Where the time of a run from zero went: reaction (first arrival → first scale-out), start (→ first instance in service), work (→ last answer). */
export interface MakespanParts {
  readonly reaction: number;
  readonly start: number;
  readonly work: number;
}

export function makespanParts(s: SimSummary): MakespanParts | null {
  if (s.firstScaleOutSeconds === null || s.firstInServiceSeconds === null) return null;
  return {
    reaction: s.firstScaleOutSeconds,
    start: s.firstInServiceSeconds - s.firstScaleOutSeconds,
    work: s.makespanSeconds - s.firstInServiceSeconds,
  };
}

const f1 = (n: number): string => n.toFixed(1);
const orDash = (n: number | null, digits = 1): string => (n === null ? '—' : n.toFixed(digits));

/** The parameter behind the largest part of a run's makespan, in words. */
export function makespanCause(run: ModeRun): string {
  const parts = makespanParts(run.result.summary);
  if (parts === null) return 'capacity was already there: no scale-out';
  const { policy, env } = run;
  const cloudwatchFirst = run.result.actions[0]?.by === 'cloudwatch';
  const why: Record<keyof MakespanParts, string> = {
    reaction: cloudwatchFirst
      ? 'the CloudWatch policies: 60 s metric periods, seen a period late, once no controller heartbeat came'
      : env.metricLagPeriods > 0
        ? `the scaler's view of the queue: ${policy.periodSeconds} s metric periods, seen ${env.metricLagPeriods} period(s) late`
        : `the controller period (${policy.periodSeconds} s)`,
    start:
      run.result.summary.warmStarts > 0
        ? `the warm start (warmStartSeconds ${env.warmStartSeconds} s)`
        : `the boot (bootSeconds ${env.bootSeconds} s)`,
    work: `the work: ${run.result.summary.requests} images × ${env.perImageSeconds} s on ${run.result.summary.peakCapacity} instance(s) × ${env.concurrency} slot(s)`,
  };
  const largest = (Object.keys(parts) as (keyof MakespanParts)[]).reduce((a, b) => (parts[b] > parts[a] ? b : a));
  return `reaction ${f1(parts.reaction)} s + start ${f1(parts.start)} s + work ${f1(parts.work)} s: dominated by ${why[largest]}`;
}

/** Why capacity took as long as it did to come back to the minimum after the last answer. */
export function scaleInCause(run: ModeRun): string {
  const { policy, env } = run;
  const last = run.result.actions.filter((a) => a.to < a.from).at(-1);
  if (last?.by === 'cloudwatch') {
    const empty = fallbackPolicy(policy).scaleToZero.emptyPeriods;
    return `the CloudWatch scale-to-zero alarm: ${empty} empty one-minute periods without a controller heartbeat, seen a period late (the controller died at ${f1(run.controllerDiesAt ?? 0)} s)`;
  }
  const lag = env.metricLagPeriods > 0 ? ` + ${env.metricLagPeriods} period(s) of metric lag` : '';
  const held =
    policy.minimumRunSeconds > 0
      ? `, and not before the last start is minimumRunSeconds ${policy.minimumRunSeconds} s old (billed that long anyway)`
      : '';
  return `scale to zero after scaleToZero.emptyPeriods ${policy.scaleToZero.emptyPeriods} empty ${policy.periodSeconds}-s periods${lag}, counted from the end of the last answer's period${held}`;
}

export const TABLE_HEADER = [
  'trace',
  'mode',
  'served',
  'makespan s',
  'p50 s',
  'p95 s',
  'p99 s',
  'peak instances',
  'first scale-out s',
  'first in service s',
  'back to min s',
  'instance-min',
  'starts warm / cold',
  'ended in 1st min',
  'set by ctl / CW',
] as const;

/** The runs as a markdown table, one row per trace × mode. */
export function formatCompareTable(runs: readonly ModeRun[]): string {
  const row = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  const lines = [row(TABLE_HEADER), row(TABLE_HEADER.map((_, i) => (i < 2 ? '---' : '---:')))];
  for (const { trace, mode, result } of runs) {
    const s = result.summary;
    lines.push(
      row([
        trace.name,
        mode,
        `${s.served}/${s.requests}${s.drained ? '' : ' (not drained)'}`,
        f1(s.makespanSeconds),
        s.latency.p50.toFixed(2),
        s.latency.p95.toFixed(2),
        s.latency.p99.toFixed(2),
        String(s.peakCapacity),
        orDash(s.firstScaleOutSeconds),
        orDash(s.firstInServiceSeconds),
        orDash(s.backToMinSeconds),
        s.instanceMinutes.toFixed(2),
        `${s.warmStarts} / ${s.launches}`,
        String(s.shortStarts),
        setBy(result),
      ]),
    );
  }
  return lines.join('\n');
}

/** Capacity changes by the controller (or the run's only scaler) and by the CloudWatch policies. */
function setBy(result: SimResult): string {
  if (result.authority === undefined) return '—';
  const cloudwatch = result.actions.filter((a) => a.by === 'cloudwatch').length;
  return `${result.actions.length - cloudwatch} / ${cloudwatch}`;
}

export interface TargetCheck {
  readonly target: string;
  readonly trace: string;
  readonly mode: AwsMode;
  readonly value: number | null;
  readonly limit: number;
  readonly unit: 's' | 'instances';
  readonly met: boolean;
  readonly why: string;
}

/** The product's targets (issue 12), each checked on the traces it names when they were run. */
export const TARGETS = {
  burstSeconds: 60,
  classicSeconds: 120,
  backToMinSeconds: 30,
  maxInstances: 20,
} as const;

export const TARGET_NAMES = {
  burst: `burst of 100 from zero answered within ${TARGETS.burstSeconds} s with controller + warm pool`,
  classic: `1000-image classic workload answered within ${TARGETS.classicSeconds} s`,
  backToMin: `back to the minimum within ${TARGETS.backToMinSeconds} s of the last answer, or once the last start's first billed minute is over`,
  maxInstances: `at most ${TARGETS.maxInstances} instances`,
} as const;

export function checkTargets(runs: readonly ModeRun[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const check = (
    run: ModeRun,
    target: string,
    value: number | null,
    limit: number,
    unit: TargetCheck['unit'],
    why: string,
  ): void => {
    checks.push({
      target,
      trace: run.trace.name,
      mode: run.mode,
      value,
      limit,
      unit,
      met: value !== null && value <= limit,
      why,
    });
  };
  for (const run of runs) {
    const s = run.result.summary;
    const answered = s.served === s.requests ? s.makespanSeconds : null;
    if (run.trace.name === 'burst-100' && run.mode === 'controller+warm')
      check(run, TARGET_NAMES.burst, answered, TARGETS.burstSeconds, 's', makespanCause(run));
    if (run.trace.name === 'classic-1000')
      check(run, TARGET_NAMES.classic, answered, TARGETS.classicSeconds, 's', makespanCause(run));
    // An instance kept to the end of its first billed minute costs nothing more: EC2 bills that minute anyway.
    const paidFor =
      s.lastStartSeconds === null ? 0 : s.lastStartSeconds + run.env.minimumBilledSeconds - s.makespanSeconds;
    check(
      run,
      TARGET_NAMES.backToMin,
      s.backToMinSeconds,
      Math.max(TARGETS.backToMinSeconds, paidFor),
      's',
      scaleInCause(run),
    );
    check(
      run,
      TARGET_NAMES.maxInstances,
      s.peakCapacity,
      TARGETS.maxInstances,
      'instances',
      `peak of maxCapacity ${run.policy.maxCapacity}`,
    );
  }
  return checks;
}

/** The checks grouped by target: one line per run, met or MISSED, with what dominates it. */
export function formatTargets(checks: readonly TargetCheck[]): string {
  const lines: string[] = [];
  for (const target of Object.values(TARGET_NAMES)) {
    const group = checks.filter((c) => c.target === target);
    if (group.length === 0) continue;
    lines.push(target);
    for (const c of group) {
      const value = c.value === null ? 'never' : c.unit === 's' ? `${f1(c.value)} s` : `${c.value}`;
      const limit = c.unit === 's' && c.target === TARGET_NAMES.backToMin ? ` (limit ${f1(c.limit)} s)` : '';
      lines.push(`  ${c.met ? 'met   ' : 'MISSED'} ${c.trace} · ${c.mode}: ${value}${limit} — ${c.why}`);
    }
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// One scaling authority
// ---------------------------------------------------------------------------------------------

export interface AuthorityCheck {
  readonly trace: string;
  readonly mode: 'as-deployed' | 'controller-dies';
  readonly met: boolean;
  /** What was checked and what the run did, in one sentence. */
  readonly what: string;
}

/** `3 warm at 2.0 s, 1 cold at 40.0 s`: starts grouped by time and kind. */
function startsText(starts: readonly InstanceStart[]): string {
  if (starts.length === 0) return 'none';
  const groups: { t: number; warm: boolean; n: number }[] = [];
  for (const x of starts) {
    const last = groups.at(-1);
    if (last && last.t === x.t && last.warm === x.warm) last.n++;
    else groups.push({ t: x.t, warm: x.warm, n: 1 });
  }
  return groups.map((g) => `${g.n} ${g.warm ? 'warm' : 'cold'} at ${f1(g.t)} s`).join(', ');
}

const sameStarts = (a: readonly InstanceStart[], b: readonly InstanceStart[]): boolean =>
  a.length === b.length && a.every((x, i) => x.t === b[i]?.t && x.warm === b[i]?.warm);

/**
 * Per trace: as deployed, the very starts of the controller alone (`controller+warm`, the same
 * environment) and none ended inside its first billed minute; with the controller dead half-way,
 * every request answered and the group back at its minimum by the CloudWatch policies alone, with
 * no start cut short either.
 */
export function checkAuthority(runs: readonly ModeRun[]): AuthorityCheck[] {
  const checks: AuthorityCheck[] = [];
  for (const trace of [...new Set(runs.map((r) => r.trace.name))]) {
    const of = (mode: AwsMode) => runs.find((r) => r.trace.name === trace && r.mode === mode);
    const alone = of('controller+warm');
    const deployed = of('as-deployed');
    const dies = of('controller-dies');
    if (alone && deployed) {
      const d = deployed.result;
      const byCloudWatch = d.actions.filter((a) => a.by === 'cloudwatch').length;
      const same = sameStarts(alone.result.starts, d.starts);
      checks.push({
        trace,
        mode: 'as-deployed',
        met:
          same &&
          d.summary.shortStarts === 0 &&
          byCloudWatch === 0 &&
          d.summary.drained &&
          d.authority?.controllerHeldTicks === 0,
        what:
          `starts ${startsText(d.starts)} — ${same ? 'the same as' : 'NOT the same as'} the controller alone (${startsText(alone.result.starts)}); ` +
          `${d.summary.shortStarts} ended inside its first billed minute; the CloudWatch policies set the capacity ${byCloudWatch} time(s); the controller held ${d.authority?.controllerHeldTicks ?? 0} tick(s)`,
      });
    }
    if (dies) {
      const r = dies.result;
      const s = r.summary;
      const first = r.actions.find((a) => a.by === 'cloudwatch');
      const finished = s.served === s.requests && s.drained && s.finalCapacity === dies.policy.minCapacity;
      checks.push({
        trace,
        mode: 'controller-dies',
        met: finished && s.shortStarts === 0 && first !== undefined,
        what:
          `the controller died at ${f1(dies.controllerDiesAt ?? 0)} s; ${s.served}/${s.requests} answered; ` +
          (first
            ? `the CloudWatch policies took over at ${f1(first.t)} s (${first.rule}: ${first.from} → ${first.to})`
            : 'the CloudWatch policies never acted') +
          `; back at ${s.finalCapacity} ${orDash(s.backToMinSeconds)} s after the last answer; ${s.shortStarts} start(s) ended inside their first billed minute`,
      });
    }
  }
  return checks;
}

export function formatAuthority(checks: readonly AuthorityCheck[]): string {
  return checks.map((c) => `  ${c.met ? 'met   ' : 'MISSED'} ${c.trace} · ${c.mode}: ${c.what}`).join('\n');
}
