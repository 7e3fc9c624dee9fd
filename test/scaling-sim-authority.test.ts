/**
 * One scaling authority in the simulator (deterministic, virtual time): the `as-deployed` mode runs
 * the controller beside the very CloudWatch policies the stack deploys, and on every shipped trace
 * starts exactly what the controller alone starts, none cut short; `controller-dies` leaves the
 * work to the policies, which finish it. Around that: the metric math against CloudWatch's own
 * examples, step policies, the policies alone against the `alarms` mode, a controller that
 * (re)starts while the policies are in charge, and the fight this replaces, reproduced without
 * the heartbeat.
 */
import test from 'ava';
import { resolveDeployConfig, stackPolicy } from '../deploy/config.js';
import { type ScalingRequests, scalingRequests } from '../scaling/aws/aws-requests.js';
import { fallbackPolicy } from '../scaling/core/policy.js';
import { stepCapacity } from '../tools/sim/cloudwatch.js';
import { checkAuthority, compareModes, firstArrival, midTrace, runSetup } from '../tools/sim/compare-modes.js';
import { evaluateExpression, type Series } from '../tools/sim/metric-math.js';
import { shippedTraces } from '../tools/sim/simulate-cli.js';
import {
  type AuthorityInput,
  type ModeSetup,
  modeSetup,
  type SimResult,
  stackAuthority,
  stackTarget,
} from '../tools/sim/simulator.js';
import { loadTrace, parseJsonTrace, type Trace } from '../tools/sim/trace.js';

const traces: Trace[] = await Promise.all(shippedTraces().map((path) => loadTrace(path)));
const byName = (name: string): Trace => traces.find((t) => t.name === name)!;

/** A setup with its authority changed (SCALER=off, a controller that restarts, one without heartbeat...). */
function withAuthority(setup: ModeSetup, change: Partial<AuthorityInput>): ModeSetup {
  return { ...setup, authority: { ...setup.authority!, ...change } };
}

const cloudwatchActions = (r: SimResult) => r.actions.filter((a) => a.by === 'cloudwatch');

// ----- what it runs ------------------------------------------------------------------------------

test('as-deployed runs what the stack deploys: scalingRequests for its names and its stackPolicy, the controller beside them', async (t) => {
  const setup = modeSetup('as-deployed', {}, { maxCapacity: 20 });
  const config = resolveDeployConfig({ env: {} });
  const deployed = scalingRequests(
    { asg: config.names.appTierGroup, queueName: config.names.requestQueue },
    await stackPolicy(config),
  );
  const simulated = setup.authority!.fallback.requests;
  const plain = (r: ScalingRequests) => ({
    targetTracking: r.targetTracking,
    steps: r.steps.map((s) => ({ id: s.id, policy: s.policy, alarm: s.alarm('arn') })),
  });
  t.deepEqual(plain(simulated), plain(deployed));
  t.deepEqual(stackTarget(), { asg: 'image-recognition-app', queueName: 'image-recognition-requests' });
  // The controller is the controller+warm one, on the same environment (the stack's warm pool).
  const alone = modeSetup('controller+warm', {}, { maxCapacity: 20 });
  t.deepEqual(setup.policy, alone.policy);
  t.deepEqual(setup.env, alone.env);
  t.deepEqual(setup.authority!.fallback.policy, fallbackPolicy(setup.policy));
  t.like(setup.authority, { lagPeriods: 1, controller: true });
});

// ----- the proof -----------------------------------------------------------------------------------

test('as deployed, on every shipped trace: the same starts as the controller alone, none inside its first billed minute, the policies never act', (t) => {
  t.true(traces.length >= 4);
  const runs = compareModes(traces, {}, { maxCapacity: 20 });
  const checks = checkAuthority(runs);
  for (const trace of traces) {
    const deployed = runs.find((r) => r.trace.name === trace.name && r.mode === 'as-deployed')!.result;
    const alone = runs.find((r) => r.trace.name === trace.name && r.mode === 'controller+warm')!.result;
    t.deepEqual(deployed.starts, alone.starts, trace.name);
    t.deepEqual(
      deployed.actions.map((a) => [a.t, a.from, a.to, a.by]),
      alone.actions.map((a) => [a.t, a.from, a.to, 'controller']),
      trace.name,
    );
    t.is(deployed.summary.shortStarts, 0, trace.name);
    t.is(alone.summary.shortStarts, 0, `${trace.name}: the controller keeps an instance its first minute`);
    t.deepEqual(cloudwatchActions(deployed), [], trace.name);
    t.deepEqual(deployed.authority?.alarms, [], `${trace.name}: no alarm ever in ALARM`);
    t.is(deployed.authority?.controllerHeldTicks, 0, trace.name);
    for (const mode of ['as-deployed', 'controller-dies'] as const) {
      const check = checks.find((c) => c.trace === trace.name && c.mode === mode)!;
      t.true(check.met, `${trace.name} · ${mode}: ${check.what}`);
    }
  }
  // The waves need several instances at once: the proof is not only about one.
  t.is(Math.max(...runs.filter((r) => r.mode === 'as-deployed').map((r) => r.result.summary.peakCapacity)), 4);
});

test('the controller dies half-way: the CloudWatch policies take over once no heartbeat has come, and finish the work', (t) => {
  const waves = byName('waves');
  const deployed = runSetup(waves, modeSetup('as-deployed', {}, { maxCapacity: 20 }));
  const diesAt = midTrace(waves, deployed);
  t.is(diesAt, firstArrival(waves) + deployed.summary.makespanSeconds / 2);
  const dies = runSetup(waves, modeSetup('controller-dies', {}, { maxCapacity: 20, controllerDiesAt: diesAt }));
  t.is(dies.summary.served, 18_000);
  t.true(dies.summary.drained);
  t.is(dies.summary.finalCapacity, 0);
  // Dead at 325 s, the group already back at zero: the third wave (600 s) is the policies' alone.
  // Its minute [600, 660) is seen at 720 s: 9000 waiting, nothing in service, no heartbeat → ceil(9000 / 2857) = 4.
  t.true(dies.actions.filter((a) => a.by === 'controller').every((a) => a.t < diesAt));
  t.deepEqual(
    cloudwatchActions(dies).map((a) => [a.t, a.from, a.to, a.rule]),
    [
      [720, 0, 4, 'scale-from-zero'],
      [1140, 4, 0, 'scale-to-zero'],
    ],
  );
  t.is(dies.summary.shortStarts, 0);

  // Dead before it ever acted (a burst at t = 0): scale from zero by the policies, two minutes in.
  const burst = byName('burst-100');
  const early = runSetup(burst, modeSetup('controller-dies', {}, { maxCapacity: 20, controllerDiesAt: 1 }));
  t.deepEqual(
    early.actions.map((a) => [a.t, a.to, a.by, a.rule]),
    [
      [120, 1, 'cloudwatch', 'scale-from-zero'],
      // In service at 145 s, done at once; the minutes [180, 480) empty, the fifth seen at 540 s.
      [540, 0, 'cloudwatch', 'scale-to-zero'],
    ],
  );
  t.is(early.summary.served, 100);
});

test('with no controller at all (SCALER=off) the policies scale from zero as the alarms mode models them, and to zero a minute later', (t) => {
  for (const name of ['burst-100', 'steady']) {
    const trace = byName(name);
    const base = modeSetup('as-deployed', {}, { maxCapacity: 20 });
    const off = runSetup(trace, withAuthority(base, { controller: false }));
    // The alarms mode (decide on the datapoints seen a period late) on the same service and policy.
    const alarms = runSetup(trace, modeSetup('alarms', { warmPoolSize: 20 }, {}, base.authority!.fallback.policy));
    const steps = (r: SimResult) => r.actions.map((a) => [a.t, a.from, a.to, a.rule]);
    const [fromZero, toZero] = steps(off);
    t.deepEqual(fromZero, steps(alarms)[0], name);
    // The alarms mode counts the empty run's time at its own tick; the alarm needs its fifth empty
    // minute itself, which it sees a minute after that minute ends: one period later.
    t.deepEqual(toZero, [(steps(alarms)[1]![0] as number) + 60, 1, 0, 'scale-to-zero'], name);
    t.is(off.actions.length, 2, name);
    t.true(off.actions.every((a) => a.by === 'cloudwatch'));
  }
});

test('a controller that (re)starts while the policies are in charge holds until they cannot act, then takes over; nothing is cut short', (t) => {
  // The policies alone start an instance for a burst at 0 (at 120 s) and, the queue empty for five
  // minutes, stop it (at 540 s): the scale-to-zero alarm stays in ALARM, repeating its action every
  // minute. The controller starts at 560 s; a new burst comes at 570 s.
  const workload = { name: 'restart', description: '', arrivals: [...Array(100).fill(0), ...Array(100).fill(570)] };
  const setup = withAuthority(modeSetup('as-deployed', {}, { maxCapacity: 20 }), { controllerStartsAt: 560 });
  const r = runSetup(workload, setup);
  t.deepEqual(
    r.actions.map((a) => [a.t, a.from, a.to, a.by, a.rule]),
    [
      [120, 0, 1, 'cloudwatch', 'scale-from-zero'],
      [540, 1, 0, 'cloudwatch', 'scale-to-zero'],
      // Its heartbeats from 560 s close the policies' gate for [540, 600) on; it acts once the last
      // three whole minutes hold them: [540, 720).
      [720, 0, 1, 'controller', 'scale-from-zero'],
      [780, 1, 0, 'controller', 'scale-to-zero'],
    ],
  );
  t.true(r.authority!.controllerHeldTicks > 0);
  t.is(r.summary.shortStarts, 0);
  t.is(r.summary.served, 200);
  // The scale-to-zero alarm was in ALARM at 540 and 600 s (window [240, 540) without a heartbeat),
  // and never again once a minute with a heartbeat entered its window.
  const inAlarm = r.authority!.alarms.filter((a) => a.names.some((n) => n.endsWith('scale-to-zero'))).map((a) => a.t);
  t.deepEqual(inAlarm, [540, 600]);
});

test('without the heartbeat (the controller and the policies as they were) the same run fights: a start cut inside its first minute', (t) => {
  const workload = { name: 'restart', description: '', arrivals: [...Array(100).fill(0), ...Array(100).fill(570)] };
  const setup = withAuthority(modeSetup('as-deployed', {}, { maxCapacity: 20 }), {
    controllerStartsAt: 560,
    heartbeat: false,
  });
  const r = runSetup(workload, setup);
  // The controller starts an instance at 572 s; the scale-to-zero alarm, still in ALARM on the
  // minutes before the burst, sets the capacity back to 0 at 600 s.
  const fight = r.actions.filter((a) => a.t > 560).map((a) => [a.t, a.from, a.to, a.by]);
  t.deepEqual(fight.slice(0, 2), [
    [572, 0, 1, 'controller'],
    [600, 1, 0, 'cloudwatch'],
  ]);
  t.true(r.summary.shortStarts >= 1, `${r.summary.shortStarts} start(s) cut short`);
});

// ----- the CloudWatch model's parts -----------------------------------------------------------------

test("metric math: CloudWatch's own examples of comparisons and IF, and its rules for missing values", (t) => {
  const _ = undefined;
  const series = new Map<string, Series>([
    ['metric1', [1, 1, 0, 0, _]],
    ['metric2', [30, _, 0, 0, 30]],
    ['metric3', [0, 0, 20, _, 20]],
  ]);
  // "Using IF expressions" (CloudWatch user guide, Metric math syntax and functions).
  t.deepEqual(evaluateExpression('IF(metric1, metric2, metric3)', series, 5), [30, 0, 20, _, _]);
  t.deepEqual(evaluateExpression('IF(metric1, 5, metric3)', series, 5), [5, 5, 20, _, _]);
  t.deepEqual(evaluateExpression('IF(metric1, metric2, 5)', series, 5), [30, 0, 5, 5, _]);
  // "Comparison and logical operators": metric1 [30, 20, 0, 0], metric2 [20, -, 20, -].
  const cmp = new Map<string, Series>([
    ['metric1', [30, 20, 0, 0]],
    ['metric2', [20, _, 20, _]],
  ]);
  t.deepEqual(evaluateExpression('metric1 < metric2', cmp, 4), [0, 0, 1, 0]);
  t.deepEqual(evaluateExpression('metric1 >= 30', cmp, 4), [1, 0, 0, 0]);
  // Arithmetic: a missing value is 0 beside a value; nothing where neither has one; division by zero drops.
  const a = new Map<string, Series>([
    ['m1', [4, _, 6, _]],
    ['m2', [2, 3, 0, _]],
  ]);
  t.deepEqual(evaluateExpression('m1 + m2', a, 4), [6, 3, 6, _]);
  t.deepEqual(evaluateExpression('m1 / m2', a, 4), [2, 0, _, _]);
  t.deepEqual(evaluateExpression('FILL(m1, 0) > 0', a, 4), [1, 0, 1, 0]);
  // The gate of every scaling policy: the idle value in a minute with a heartbeat.
  const gate = new Map<string, Series>([
    ['hb', [3, _, _, 2]],
    ['m1', [50, 50, _, 0]],
    ['m2', [0, 0, _, 1]],
  ]);
  t.deepEqual(evaluateExpression('IF(FILL(hb, 0) > 0, 0, IF(m2 == 0, m1, 0))', gate, 4), [0, 50, _, 0]);
  for (const bad of ['MAX(m1)', 'm1 AND m2', 'm1 ^ 2', 'nope + 1', '2 + 3', 'IF(m1)'])
    t.throws(() => evaluateExpression(bad, a, 4), { message: /not modelled/ }, bad);
});

test('step policies: the step the value falls in, lower bound inclusive above the threshold, upper bound inclusive below', (t) => {
  const requests = stackAuthority(modeSetup('as-deployed', {}, { maxCapacity: 20 }).policy).fallback.requests;
  const fromZero = requests.steps.find((s) => s.id === 'ScaleFromZero')!;
  const toZero = requests.steps.find((s) => s.id === 'ScaleToZero')!;
  const op = (id: string) => requests.steps.find((s) => s.id === id)!.alarm('arn').ComparisonOperator;
  // Threshold 1, target 2857.14 waiting per instance: 1..2857 → 1, 2858..5714 → 2, ...
  t.is(stepCapacity(fromZero.policy, op('ScaleFromZero'), 1, 1), 1);
  t.is(stepCapacity(fromZero.policy, op('ScaleFromZero'), 1, 2857), 1);
  t.is(stepCapacity(fromZero.policy, op('ScaleFromZero'), 1, 2858), 2);
  t.is(stepCapacity(fromZero.policy, op('ScaleFromZero'), 1, 9000), 4);
  t.is(stepCapacity(fromZero.policy, op('ScaleFromZero'), 1, 1e9), 20);
  t.is(stepCapacity(toZero.policy, op('ScaleToZero'), 0, 0), 0);
});

test('traces: bursts expand to arrivals, and a trace may say it is simulated only', (t) => {
  const trace = parseJsonTrace(
    JSON.stringify({
      name: 'w',
      replay: false,
      bursts: [
        { at: 5, count: 2 },
        { at: 0, count: 1 },
      ],
    }),
    'w',
  );
  t.deepEqual(trace, { name: 'w', description: '', replay: false, arrivals: [0, 5, 5] });
  for (const bad of [
    { bursts: [] },
    { bursts: [{ at: -1, count: 1 }] },
    { bursts: [{ at: 0, count: 1.5 }] },
    { bursts: [{ at: 0, count: 1 }], arrivals: [0] },
    { arrivals: [0], replay: 'no' },
  ])
    t.throws(() => parseJsonTrace(JSON.stringify(bad), 'bad'), { message: /Trace bad/ }, JSON.stringify(bad));
  t.is(byName('waves').replay, false);
  t.is(byName('burst-100').replay, undefined);
});
