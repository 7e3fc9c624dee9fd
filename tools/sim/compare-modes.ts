/**
 * The AWS modes side by side: every mode × every trace on one shared environment, a table of the
 * numbers that matter (makespan, latency, instances, time back to the minimum, instance-minutes),
 * and the product's targets checked against them, with what dominates each result.
 */

import type { ScalingPolicy } from '../../scaling/core/policy.js';
import { AWS_MODES, type AwsMode, modeSetup, type PolicyOptions, type SimEnvironment } from './environment.js';
import { type SimResult, type SimSummary, simulate } from './simulator.js';
import type { Trace } from './trace.js';

export interface ModeRun {
  readonly trace: Trace;
  readonly mode: AwsMode;
  readonly policy: ScalingPolicy;
  readonly env: SimEnvironment;
  readonly result: SimResult;
}

/** Every AWS mode on every trace, with the same environment overrides and policy options. */
export function compareModes(
  traces: readonly Trace[],
  overrides: Partial<SimEnvironment> = {},
  options: PolicyOptions = {},
): ModeRun[] {
  const runs: ModeRun[] = [];
  for (const trace of traces) {
    for (const mode of AWS_MODES) {
      const { policy, env } = modeSetup(mode, overrides, options);
      runs.push({ trace, mode, policy, env, result: simulate({ ...trace, policy, env }) });
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
  const why: Record<keyof MakespanParts, string> = {
    reaction:
      env.metricLagPeriods > 0
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
  const lag = env.metricLagPeriods > 0 ? ` + ${env.metricLagPeriods} period(s) of metric lag` : '';
  return `scale to zero after scaleToZero.emptyPeriods ${policy.scaleToZero.emptyPeriods} empty ${policy.periodSeconds}-s periods${lag}, counted from the end of the last answer's period`;
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
      ]),
    );
  }
  return lines.join('\n');
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
  backToMin: `back to the minimum within ${TARGETS.backToMinSeconds} s of the last answer`,
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
    check(run, TARGET_NAMES.backToMin, s.backToMinSeconds, TARGETS.backToMinSeconds, 's', scaleInCause(run));
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
      lines.push(`  ${c.met ? 'met   ' : 'MISSED'} ${c.trace} · ${c.mode}: ${value} — ${c.why}`);
    }
  }
  return lines.join('\n');
}
