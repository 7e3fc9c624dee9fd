import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { MAX_STEP_ADJUSTMENTS, scaleFromZeroSteps, validatePolicyForAws } from '../scaling/aws/aws-requests.js';
import { decide, NO_SIGNALS, type Observation, trackSignals } from '../scaling/core/decide.js';
import { PolicyValidationError, ScalingError } from '../scaling/core/errors.js';
import {
  CONTROLLER_POLICY,
  DEFAULT_POLICY,
  fallbackPolicy,
  LOCAL_POLICY,
  resolvePolicy,
  type ScalingPolicy,
  targetBacklogPerInstance,
  validatePolicy,
} from '../scaling/core/policy.js';
import { loadPolicy } from '../scaling/core/policy-file.js';

// ----- Target formula --------------------------------------------------------------------------

test('target backlog per instance = acceptable latency / seconds per message × messages per instance', (t) => {
  t.is(targetBacklogPerInstance(DEFAULT_POLICY), 10); // 30 / 3 × 1
  t.is(
    targetBacklogPerInstance(
      resolvePolicy({ backlog: { acceptableLatencySeconds: 20, secondsPerMessage: 0.5, messagesPerInstance: 4 } }),
    ),
    160,
  );
  t.is(targetBacklogPerInstance(resolvePolicy({ backlog: { override: 7 } })), 7);
});

// ----- Validation ------------------------------------------------------------------------------

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof PolicyValidationError) return err.field;
    throw err;
  }
  return undefined;
}

test('validatePolicy accepts the defaults and names the first bad field otherwise', (t) => {
  t.deepEqual(validatePolicy(JSON.parse(JSON.stringify(DEFAULT_POLICY))), DEFAULT_POLICY);
  t.is(
    fieldOf(() => resolvePolicy({ minCapacity: -1 })),
    'minCapacity',
  );
  t.is(
    fieldOf(() => resolvePolicy({ minCapacity: 1.5 })),
    'minCapacity',
  );
  t.is(
    fieldOf(() => resolvePolicy({ minCapacity: 5, maxCapacity: 3 })),
    'maxCapacity',
  );
  t.is(
    fieldOf(() => resolvePolicy({ maxCapacity: 0 })),
    'maxCapacity',
  );
  t.is(
    fieldOf(() => resolvePolicy({ periodSeconds: 0 })),
    'periodSeconds',
  );
  t.is(
    fieldOf(() => resolvePolicy({ backlog: { secondsPerMessage: 0 } })),
    'backlog.secondsPerMessage',
  );
  t.is(
    fieldOf(() => resolvePolicy({ backlog: { acceptableLatencySeconds: 'soon' } })),
    'backlog.acceptableLatencySeconds',
  );
  t.is(
    fieldOf(() => resolvePolicy({ backlog: { messagesPerInstance: 0 } })),
    'backlog.messagesPerInstance',
  );
  t.is(
    fieldOf(() => resolvePolicy({ backlog: { override: -2 } })),
    'backlog.override',
  );
  t.is(
    fieldOf(() => resolvePolicy({ scaleFromZero: { threshold: 0.5 } })),
    'scaleFromZero.threshold',
  );
  t.is(
    fieldOf(() => resolvePolicy({ scaleFromZero: { evaluationPeriods: 0 } })),
    'scaleFromZero.evaluationPeriods',
  );
  t.is(
    fieldOf(() => resolvePolicy({ scaleToZero: { enabled: 'yes' } })),
    'scaleToZero.enabled',
  );
  t.is(
    fieldOf(() => resolvePolicy({ scaleToZero: { emptyPeriod: 3 } })),
    'scaleToZero.emptyPeriod',
  );
  t.is(
    fieldOf(() => resolvePolicy({ warmupSecs: 3 })),
    'warmupSecs',
  );
  t.is(
    fieldOf(() => resolvePolicy({ scaleInCooldownSeconds: -1 })),
    'scaleInCooldownSeconds',
  );
  t.is(
    fieldOf(() => resolvePolicy({ minimumRunSeconds: -60 })),
    'minimumRunSeconds',
  );
  t.is(
    fieldOf(() => resolvePolicy({ scaleFromZero: { enabled: false } })),
    'scaleFromZero.enabled',
  );
  t.is(
    fieldOf(() => resolvePolicy({ minCapacity: 1, scaleFromZero: { enabled: false } })),
    undefined,
  );
  t.is(
    fieldOf(() => validatePolicy({ ...DEFAULT_POLICY, backlog: undefined })),
    'backlog',
  );
});

test('validation errors are ScalingErrors with code INVALID_POLICY and the field in the context', (t) => {
  const err = t.throws(() => resolvePolicy({ maxCapacity: -3 }), { instanceOf: ScalingError });
  t.is(err.code, 'INVALID_POLICY');
  t.like(err.context, { field: 'maxCapacity', value: -3 });
  t.regex(err.message, /maxCapacity must be an integer >= 1 \(got -3\)/);
});

test('AWS-only constraints: whole-minute periods and the one-day alarm window', (t) => {
  t.notThrows(() => validatePolicyForAws(DEFAULT_POLICY));
  t.is(
    fieldOf(() => validatePolicyForAws(LOCAL_POLICY)),
    'periodSeconds',
  );
  t.is(
    fieldOf(() => validatePolicyForAws(resolvePolicy({ scaleToZero: { emptyPeriods: 1441 } }))),
    'scaleToZero.emptyPeriods',
  );
});

test('loadPolicy merges a partial JSON file over the defaults and reports file errors', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'scaling-policy-'));
  const good = join(dir, 'good.json');
  await writeFile(good, JSON.stringify({ maxCapacity: 20, scaleToZero: { emptyPeriods: 10 } }));
  const policy = await loadPolicy(good);
  t.is(policy.maxCapacity, 20);
  t.is(policy.scaleToZero.emptyPeriods, 10);
  t.true(policy.scaleToZero.enabled, 'nested defaults kept');
  t.is(policy.minCapacity, DEFAULT_POLICY.minCapacity);

  const local = await loadPolicy(good, LOCAL_POLICY);
  t.is(local.periodSeconds, 1);

  const broken = join(dir, 'broken.json');
  await writeFile(broken, '{ maxCapacity: 20 ');
  const e1 = await t.throwsAsync(loadPolicy(broken), { instanceOf: ScalingError });
  t.is(e1.code, 'POLICY_FILE');

  const bad = join(dir, 'bad.json');
  await writeFile(bad, JSON.stringify({ backlog: { secondsPerMessage: -1 } }));
  const e2 = await t.throwsAsync(loadPolicy(bad), { instanceOf: ScalingError });
  t.is(e2.code, 'INVALID_POLICY');
  t.like(e2.context, { field: 'backlog.secondsPerMessage', file: bad });

  const e3 = await t.throwsAsync(loadPolicy(join(dir, 'missing.json')), { instanceOf: ScalingError });
  t.is(e3.code, 'POLICY_FILE');
});

// ----- decide ----------------------------------------------------------------------------------

const P = DEFAULT_POLICY; // target 10, capacity 0-10, 60 s periods, warm-up 120 s, cooldowns 60/300 s
const obs = (o: Partial<Observation>): Observation => ({
  now: 10_000,
  visible: 0,
  inFlight: 0,
  running: 0,
  desired: 0,
  lastScaleOut: null,
  lastScaleIn: null,
  idleSince: null,
  backlogSince: null,
  ...o,
});

test('scale from zero: visible work and nothing in service → ceil(visible / target), clamped', (t) => {
  t.like(decide(P, obs({ visible: 25, backlogSince: 9_940 })), {
    desired: 3,
    action: 'scale-out',
    rule: 'scale-from-zero',
  });
  t.like(decide(P, obs({ visible: 1, backlogSince: 9_940 })), { desired: 1, rule: 'scale-from-zero' });
  t.like(decide(P, obs({ visible: 500, backlogSince: 9_940 })), { desired: 10 });
  // Not yet a whole evaluation period of backlog.
  t.like(decide(P, obs({ visible: 25, backlogSince: 9_970 })), { desired: 0, action: 'none' });
  // Already launched and booting: wait, do not launch more.
  t.like(decide(P, obs({ visible: 25, desired: 3, backlogSince: 9_000 })), {
    desired: 3,
    action: 'none',
    rule: 'scale-from-zero',
  });
  // More work arrived while booting: raise the exact capacity.
  t.like(decide(P, obs({ visible: 55, desired: 3, backlogSince: 9_000 })), { desired: 6, action: 'scale-out' });
  const twoPeriods = resolvePolicy({ scaleFromZero: { evaluationPeriods: 2 } });
  t.like(decide(twoPeriods, obs({ visible: 5, backlogSince: 9_940 })), { action: 'none' });
  t.like(decide(twoPeriods, obs({ visible: 5, backlogSince: 9_880 })), { desired: 1, action: 'scale-out' });
});

test('scale to zero only after N whole empty periods', (t) => {
  const base = { running: 2, desired: 2, lastScaleOut: 0 };
  t.like(decide(P, obs({ ...base, idleSince: 10_000 - 5 * 60 })), {
    desired: 0,
    action: 'scale-in',
    rule: 'scale-to-zero',
  });
  t.like(decide(P, obs({ ...base, idleSince: 10_000 - 4 * 60 })), { rule: 'target-tracking', desired: 1 });
  const noToZero = resolvePolicy({ minCapacity: 1, scaleToZero: { enabled: false } });
  t.like(decide(noToZero, obs({ ...base, idleSince: 0 })), { desired: 1, rule: 'target-tracking' });
  const warmMin = resolvePolicy({ minCapacity: 2 });
  t.like(decide(warmMin, obs({ ...base, idleSince: 0 })), { desired: 2, action: 'none' });
});

test('target tracking: scale out to ceil(visible / target), limited by the scale-out cooldown', (t) => {
  t.like(decide(P, obs({ visible: 45, running: 2, desired: 2 })), {
    desired: 5,
    action: 'scale-out',
    rule: 'target-tracking',
  });
  t.like(decide(P, obs({ visible: 45, running: 2, desired: 2, lastScaleOut: 9_970 })), { desired: 2, action: 'none' });
  t.like(decide(P, obs({ visible: 45, running: 2, desired: 2, lastScaleOut: 9_940 })), { desired: 5 });
  t.like(decide(P, obs({ visible: 20, running: 2, desired: 2 })), { desired: 2, action: 'none', rule: 'none' });
});

test('target tracking: scale in is held while booting, warming up, in cooldown, and above busy instances', (t) => {
  const quiet = { visible: 0, inFlight: 0, running: 4, desired: 4 };
  t.like(decide(P, obs(quiet)), { desired: 1, action: 'scale-in' });
  t.like(decide(P, obs({ ...quiet, running: 3 })), { desired: 4, action: 'none' }); // one still booting
  t.like(decide(P, obs({ ...quiet, lastScaleOut: 9_900 })), { desired: 4, action: 'none' }); // warm-up 120 s
  t.like(decide(P, obs({ ...quiet, lastScaleIn: 9_800 })), { desired: 4, action: 'none' }); // cooldown 300 s
  t.like(decide(P, obs({ ...quiet, lastScaleIn: 9_600 })), { desired: 1 });
  t.like(decide(P, obs({ ...quiet, inFlight: 3 })), { desired: 3, action: 'scale-in' }); // 3 busy
  t.like(decide(P, obs({ ...quiet, inFlight: 4 })), { desired: 4, action: 'none' });
  const batched = resolvePolicy({ backlog: { messagesPerInstance: 2 } });
  t.like(decide(batched, obs({ ...quiet, inFlight: 4 })), { desired: 2 }); // 4 messages fill 2 instances
});

test('minimumRunSeconds: no scale-in of either kind within it of the last scale-out (the first billed minute)', (t) => {
  const C = resolvePolicy({ minimumRunSeconds: 60 }, DEFAULT_POLICY);
  const idle = { running: 2, desired: 2, idleSince: 10_000 - 5 * 60 };
  // Empty for the whole window, but the last scale-out is 30 s old: held, and said so.
  const held = decide(C, obs({ ...idle, lastScaleOut: 9_970 }));
  t.like(held, { desired: 2, action: 'none', rule: 'scale-to-zero' });
  t.regex(held.reason, /minimumRunSeconds 60/);
  t.like(decide(C, obs({ ...idle, lastScaleOut: 9_940 })), { desired: 0, rule: 'scale-to-zero' });
  // Target tracking's scale-in likewise (past the warm-up of 120 s, which is longer: a 10-s warm-up here).
  const quick = resolvePolicy({ minimumRunSeconds: 60, warmupSeconds: 10 }, DEFAULT_POLICY);
  const quiet = { visible: 0, inFlight: 0, running: 4, desired: 4 };
  t.like(decide(quick, obs({ ...quiet, lastScaleOut: 9_950 })), {
    desired: 4,
    action: 'none',
    rule: 'target-tracking',
  });
  t.like(decide(quick, obs({ ...quiet, lastScaleOut: 9_930 })), { desired: 1, action: 'scale-in' });
  // Scale-out is never held by it.
  t.like(decide(C, obs({ visible: 45, running: 2, desired: 2, lastScaleOut: 9_930 })), { desired: 5 });
  t.is(DEFAULT_POLICY.minimumRunSeconds, 0);
  t.is(CONTROLLER_POLICY.minimumRunSeconds, 60);
});

test("fallbackPolicy: CloudWatch's windows and periods, the controller's bounds and backlog target", (t) => {
  const controller = { ...CONTROLLER_POLICY, minCapacity: 1, maxCapacity: 7 };
  const fallback = fallbackPolicy(controller);
  t.is(targetBacklogPerInstance(fallback), targetBacklogPerInstance(controller));
  t.like(fallback, {
    minCapacity: 1,
    maxCapacity: 7,
    periodSeconds: 60,
    scaleToZero: DEFAULT_POLICY.scaleToZero,
    warmupSeconds: DEFAULT_POLICY.warmupSeconds,
    minimumRunSeconds: 0,
  });
  t.notThrows(() => validatePolicyForAws(fallback));
});

test('capacity bounds come first', (t) => {
  const p = resolvePolicy({ minCapacity: 2, maxCapacity: 4 });
  t.like(decide(p, obs({ desired: 0 })), { desired: 2, rule: 'capacity-bounds' });
  t.like(decide(p, obs({ desired: 9, running: 9 })), { desired: 4, rule: 'capacity-bounds' });
});

test('with nothing in service and nothing waiting, target tracking has no data and holds', (t) => {
  t.like(decide(P, obs({})), { desired: 0, action: 'none' });
});

test('trackSignals mirrors the two alarms: idle runs and backlog-while-empty runs', (t) => {
  const dp = (start: number, visible: number, inFlight: number, running: number) => ({
    start,
    end: start + 60,
    visible,
    inFlight,
    running,
  });
  let s = trackSignals(NO_SIGNALS, dp(0, 5, 0, 0), P);
  t.deepEqual(s, { idleSince: null, backlogSince: 0 });
  s = trackSignals(s, dp(60, 9, 0, 0), P);
  t.deepEqual(s, { idleSince: null, backlogSince: 0 });
  s = trackSignals(s, dp(120, 9, 1, 1), P);
  t.deepEqual(s, { idleSince: null, backlogSince: null });
  s = trackSignals(s, dp(180, 0, 0, 1), P);
  t.deepEqual(s, { idleSince: 180, backlogSince: null });
  s = trackSignals(s, dp(240, 0, 0, 1), P);
  t.deepEqual(s, { idleSince: 180, backlogSince: null });
  s = trackSignals(s, dp(300, 0, 1, 1), P);
  t.deepEqual(s, { idleSince: null, backlogSince: null });
});

// ----- The AWS step policy agrees with decide ---------------------------------------------------

function stepCapacity(policy: ScalingPolicy, visible: number): number | undefined {
  const breach = visible - policy.scaleFromZero.threshold;
  if (breach < 0) return undefined;
  const step = scaleFromZeroSteps(policy).find(
    (s) => (s.MetricIntervalLowerBound ?? -Infinity) <= breach && breach < (s.MetricIntervalUpperBound ?? Infinity),
  );
  return step?.ScalingAdjustment;
}

for (const [label, partial] of [
  ['defaults (target 10, max 10)', {}],
  [
    'fractional target 2.5, threshold 3, max 7',
    {
      maxCapacity: 7,
      backlog: { override: 2.5 },
      scaleFromZero: { enabled: true, threshold: 3, evaluationPeriods: 1 },
    },
  ],
  ['target below 1 (0.4), max 6', { maxCapacity: 6, backlog: { override: 0.4 } }],
  ['minCapacity 2, target 4, max 9', { minCapacity: 2, maxCapacity: 9, backlog: { override: 4 } }],
] as const) {
  test(`scale-from-zero steps give exactly decide's capacity for every visible count: ${label}`, (t) => {
    const policy = resolvePolicy(partial);
    const steps = scaleFromZeroSteps(policy);
    t.true(steps.length <= MAX_STEP_ADJUSTMENTS);
    t.is(steps[0]?.MetricIntervalLowerBound, 0);
    t.is(steps[steps.length - 1]?.MetricIntervalUpperBound, undefined);
    for (let v = Math.ceil(policy.scaleFromZero.threshold); v <= 300; v++) {
      const expected = decide(policy, obs({ visible: v, backlogSince: 0, desired: policy.minCapacity })).desired;
      t.is(stepCapacity(policy, v), expected, `visible ${v}`);
    }
  });
}

test('with more than 20 capacities the steps are merged and never under-provision', (t) => {
  const policy = resolvePolicy({ maxCapacity: 50, backlog: { override: 3 } });
  const steps = scaleFromZeroSteps(policy);
  t.is(steps.length, 17); // 50 capacities merged 3 by 3
  for (let v = 1; v <= 400; v++) {
    const exact = decide(policy, obs({ visible: v, backlogSince: 0 })).desired;
    const got = stepCapacity(policy, v) ?? 0;
    t.true(got >= exact && got <= Math.min(50, exact + 2), `visible ${v}: ${got} vs ${exact}`);
  }
});

test('the example policy files load and match the documented defaults', async (t) => {
  const { description: _a, ...aws } = await loadPolicy(
    new URL('../scaling/policy.example.json', import.meta.url).pathname,
  );
  t.deepEqual(aws, DEFAULT_POLICY);
  const { description: _b, ...local } = await loadPolicy(
    new URL('../scaling/policy.local.example.json', import.meta.url).pathname,
    DEFAULT_POLICY,
  );
  t.deepEqual(local, LOCAL_POLICY);
});
