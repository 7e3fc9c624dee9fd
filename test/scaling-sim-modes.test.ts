import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { silentLogger } from '../lib/log.js';
import { ScalingError } from '../scaling/core/errors.js';
import {
  CONTROLLER_POLICY,
  DEFAULT_POLICY,
  resolvePolicy,
  type ScalingPolicy,
  targetBacklogPerInstance,
} from '../scaling/core/policy.js';
import { checkTargets, compareModes } from '../tools/sim/compare-modes.js';
import { parseSimulateArgs, simulateMain } from '../tools/sim/simulate-cli.js';
import {
  AWS_MODES,
  environmentPreset,
  modeSetup,
  type SimEnvironment,
  type SimMode,
  type SimResult,
  simulate,
} from '../tools/sim/simulator.js';
import { loadTrace, parseJsonTrace, type Workload } from '../tools/sim/trace.js';

const TRACES = new URL('../tools/sim/traces/', import.meta.url);
const traces = {
  burst: await loadTrace(new URL('burst-100.csv', TRACES).pathname),
  classic: await loadTrace(new URL('classic-1000.json', TRACES).pathname),
  steady: await loadTrace(new URL('steady.json', TRACES).pathname),
  waves: await loadTrace(new URL('waves.json', TRACES).pathname),
};

/** When the controller of `controller-dies` dies here, unless a test says otherwise. */
const DIES_AT = 10;

/** A trace (or any workload) in a mode's preset, with environment overrides and, optionally, another policy. */
function runMode(
  workload: Workload,
  mode: SimMode,
  env: Partial<SimEnvironment> = {},
  policy?: ScalingPolicy,
): SimResult {
  const setup = modeSetup(mode, env, mode === 'controller-dies' ? { controllerDiesAt: DIES_AT } : {}, policy);
  return simulate({
    ...workload,
    policy: setup.policy,
    env: setup.env,
    ...(setup.authority === undefined ? {} : { authority: setup.authority }),
  });
}

const r1 = (n: number): number => Number(n.toFixed(1));

test('alarms mode, with the environment it had before the modes, reproduces the numbers it gave for the burst and the steady trace', (t) => {
  // 90 s boot, the policy's 3 s per image, one at a time, DEFAULT_POLICY (target 10, max 10).
  const legacy: Partial<SimEnvironment> = {
    bootSeconds: 90,
    perImageSeconds: 3,
    batchSize: 1,
    concurrency: 1,
    visibilityTimeoutSeconds: 60,
    drainOnScaleIn: false,
  };
  const burst = runMode(traces.burst, 'alarms', legacy, DEFAULT_POLICY).summary;
  t.deepEqual(
    [burst.makespanSeconds, burst.latency.p50, burst.latency.p95, burst.latency.p99].map(r1),
    [241.2, 225.6, 239.8, 240.4],
  );
  t.like(burst, { instanceMinutes: 52, peakCapacity: 10, endSeconds: 600, served: 100 });
  t.deepEqual(
    runMode(traces.burst, 'alarms', legacy, DEFAULT_POLICY).actions.map((a) => [a.t, a.from, a.to, a.rule]),
    [
      [120, 0, 10, 'scale-from-zero'],
      [360, 10, 3, 'target-tracking'],
      [600, 3, 0, 'scale-to-zero'],
    ],
  );
  const steady = runMode(traces.steady, 'alarms', legacy, DEFAULT_POLICY).summary;
  t.deepEqual(
    [steady.makespanSeconds, steady.latency.p50, steady.latency.p95, steady.latency.p99].map(r1),
    [1801.3, 3.1, 166.7, 203.3],
  );
  t.like(steady, { instanceMinutes: 100, endSeconds: 2160 });
  // The same alarms, with drain on scale-in as the AWS modes now have it: the burst never scales in a busy instance.
  t.deepEqual(runMode(traces.burst, 'alarms', { ...legacy, drainOnScaleIn: true }, DEFAULT_POLICY).summary, burst);
});

test('the controller reacts within one of its periods, with no metric delay; the alarms only after a 60 s period seen a period late', (t) => {
  for (const period of [1, 2, 5]) {
    const { policy } = modeSetup('controller', {}, { controllerPeriodSeconds: period });
    t.is(policy.periodSeconds, period);
    for (const at of [0, 0.3, 1.7, 4.99, 12.5]) {
      const r = runMode({ arrivals: [at] }, 'controller', {}, policy);
      const firstPeriodEnd = Math.floor(at / period + 1) * period;
      t.is(r.actions[0]?.t, firstPeriodEnd, `period ${period} s, arrival at ${at} s`);
      t.like(r.actions[0], { from: 0, to: 1, rule: 'scale-from-zero' });
      t.true(r.summary.firstScaleOutSeconds! <= period);
    }
  }
  const alarms = runMode({ arrivals: [0.3] }, 'alarms');
  t.is(alarms.actions[0]?.t, 120); // datapoint [0, 60) seen at 120
  t.is(environmentPreset('controller', CONTROLLER_POLICY).metricLagPeriods, 0);
  t.is(environmentPreset('alarms', DEFAULT_POLICY).metricLagPeriods, 1);
  t.throws(() => modeSetup('alarms', {}, { controllerPeriodSeconds: 2 }), { instanceOf: ScalingError });
});

test('a warm-pool instance is in service warmStartSeconds after the scale-out, a launched one bootSeconds after; the pool takes instances back', (t) => {
  const cold = runMode(traces.burst, 'controller');
  const warm = runMode(traces.burst, 'controller+warm');
  const { env } = modeSetup('controller+warm');
  t.true(env.warmStartSeconds < env.bootSeconds);
  t.is(cold.summary.firstInServiceSeconds! - cold.summary.firstScaleOutSeconds!, env.bootSeconds);
  t.is(warm.summary.firstInServiceSeconds! - warm.summary.firstScaleOutSeconds!, env.warmStartSeconds);
  t.like(warm.summary, { warmStarts: 1, launches: 0 });
  t.like(cold.summary, { warmStarts: 0, launches: 1 });
  t.is(r1(cold.summary.makespanSeconds - warm.summary.makespanSeconds), env.bootSeconds - env.warmStartSeconds);

  // A pool of 2 when 4 are wanted: 2 warm starts, 2 launches; after the scale-in both come back, and
  // a second burst a minute later starts 2 warm again.
  const four = resolvePolicy({ backlog: { override: 25 } }, modeSetup('controller+warm').policy);
  const twice = runMode(
    { arrivals: [...new Array<number>(100).fill(0), ...new Array<number>(100).fill(120)] },
    'controller+warm',
    { warmPoolSize: 2 },
    four,
  );
  t.like(twice.summary, { warmStarts: 4, launches: 4, peakCapacity: 4, served: 200 });
  const starts = twice.actions.filter((a) => a.to > a.from).map((a) => [a.t, a.from, a.to]);
  t.deepEqual(starts, [
    [2, 0, 4],
    [122, 0, 4],
  ]);
});

for (const mode of ['controller', 'controller+warm', 'as-deployed'] as const) {
  test(`${mode}: back at the minimum within a few periods of the last answer (or once the last start has run its first billed minute), never below the instances holding messages`, (t) => {
    const { policy } = modeSetup(mode);
    const few = (policy.scaleToZero.emptyPeriods + 1) * policy.periodSeconds;
    for (const trace of Object.values(traces)) {
      for (const seed of [1, 2, 3]) {
        const r = runMode(trace, mode, { seed, jitter: 0.5 });
        const why = `${trace.name}, seed ${seed}`;
        // minimumRunSeconds: not before the last start is a minute old.
        const minute = r.summary.lastStartSeconds! + policy.minimumRunSeconds - r.summary.makespanSeconds;
        t.true(r.summary.drained, why);
        t.is(r.summary.served, r.summary.requests, why);
        t.is(r.summary.finalCapacity, policy.minCapacity, why);
        t.true(
          r.summary.backToMinSeconds !== null &&
            r.summary.backToMinSeconds <= Math.max(few, minute + policy.periodSeconds),
          `${why}: back to min after ${r.summary.backToMinSeconds} s`,
        );
        t.is(r.summary.shortStarts, 0, why);
        t.true(
          r.summary.backToMinSeconds! >= policy.scaleToZero.emptyPeriods * policy.periodSeconds - policy.periodSeconds,
          why,
        );
        for (const a of r.actions.filter((x) => x.to < x.from))
          t.true(a.to >= a.busy, `${why}: scale-in at ${a.t} s to ${a.to} with ${a.busy} busy`);
        t.is(r.summary.redeliveries, 0, why);
      }
    }
  });
}

test('a busy instance chosen for scale-in drains (finishes what it holds, billed until then); without draining its message comes back late', (t) => {
  // messagesPerInstance 2 while each instance works one image at a time: three busy instances count
  // as ceil(3 / 2) = 2 busy, so target tracking scales in to 2 while all three hold a message.
  const policy = resolvePolicy(
    {
      maxCapacity: 3,
      backlog: { override: 1, messagesPerInstance: 2 },
      warmupSeconds: 0,
      minimumRunSeconds: 0,
      scaleInCooldownSeconds: 0,
    },
    CONTROLLER_POLICY,
  );
  const env: Partial<SimEnvironment> = {
    bootSeconds: 1,
    perImageSeconds: 10,
    batchSize: 1,
    concurrency: 1,
    jitter: 0,
    visibilityTimeoutSeconds: 10,
    minimumBilledSeconds: 0,
  };
  const drained = runMode({ arrivals: [0, 0, 0] }, 'controller', { ...env, drainOnScaleIn: true }, policy);
  const cut = runMode({ arrivals: [0, 0, 0] }, 'controller', { ...env, drainOnScaleIn: false }, policy);
  // Launched at 2, in service at 3, done at 13. The period [2, 4) still saw 3 visible; the scale-in
  // at 6, after the empty period [4, 6), finds three busy instances.
  t.like(drained.actions[1], { t: 6, from: 3, to: 2, busy: 3, rule: 'target-tracking' });
  t.deepEqual(drained.latencies, [13, 13, 13]);
  t.is(drained.summary.redeliveries, 0);
  t.deepEqual(
    drained.actions.map((a) => [a.t, a.from, a.to, a.busy]),
    [
      [2, 0, 3, 0],
      [6, 3, 2, 3],
      [16, 2, 1, 0],
      [20, 1, 0, 0],
    ],
  );
  // Billed: all three 2 → 13 (the drained one until its image is done), then one until 16, one until 20.
  t.is(r1(drained.summary.instanceMinutes * 60), 3 * 11 + 3 + 7);
  // Terminated at 6: its message is visible again at 16 and done at 26 on a survivor.
  t.is(cut.summary.redeliveries, 1);
  t.deepEqual(
    [...cut.latencies].sort((a, b) => a - b),
    [13, 13, 26],
  );
});

test('closed-loop clients never have more than one request outstanding each, and send the next one when (and only when) they have the answer', (t) => {
  const clients = 7;
  const workload = { closedLoop: { clients, requests: 60, thinkSeconds: 0.5, startSeconds: 3 } };
  for (const mode of AWS_MODES) {
    for (const seed of [1, 2, 3]) {
      const overheadSamples = [
        { ingestSeconds: 0.05, deliverSeconds: 0.02 },
        { ingestSeconds: 0.4, deliverSeconds: 1.3 },
      ];
      const r = runMode(workload, mode, { seed, jitter: 0.5, overheadSamples });
      const why = `${mode}, seed ${seed}`;
      t.is(r.summary.served, 60, why);
      t.truthy(r.clients, why);
      const byClient = new Map<number, { sent: number; answered: number }[]>();
      r.arrivals.forEach((sent, id) => {
        const c = r.clients![id]!;
        t.true(c >= 0 && c < clients, why);
        byClient.set(c, [...(byClient.get(c) ?? []), { sent, answered: sent + r.latencies[id]! }]);
      });
      t.is(byClient.size, clients, `${why}: every client sends`);
      for (const [c, requests] of byClient) {
        t.is(requests[0]!.sent, 3, `${why}: client ${c} starts at startSeconds`);
        for (let i = 1; i < requests.length; i++) {
          // The next request leaves exactly thinkSeconds after the previous answer: one outstanding at most.
          t.is(r1(requests[i]!.sent), r1(requests[i - 1]!.answered + 0.5), `${why}: client ${c}, request ${i}`);
        }
      }
      // At no time more than `clients` requests outstanding in all.
      const edges = r.arrivals.flatMap(
        (sent, id) =>
          [
            [sent, +1],
            [sent + r.latencies[id]!, -1],
          ] as const,
      );
      edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      let outstanding = 0;
      for (const [, d] of edges) {
        outstanding += d;
        t.true(outstanding <= clients, why);
      }
    }
  }
});

test('the classic trace is the workload generator: 100 closed-loop clients, 1000 images, and a closed loop is a typed trace', (t) => {
  t.deepEqual('closedLoop' in traces.classic && traces.classic.closedLoop, {
    clients: 100,
    requests: 1000,
    thinkSeconds: 0,
    startSeconds: 0,
  });
  const r = runMode(traces.classic, 'controller+warm');
  t.is(r.summary.served, 1000);
  t.is(r.summary.peakQueueDepth, 100); // never more than one request per client
  const parsed = parseJsonTrace('{"name":"c","closedLoop":{"clients":2,"requests":5}}', 'x');
  t.deepEqual(parsed, {
    name: 'c',
    description: '',
    closedLoop: { clients: 2, requests: 5, thinkSeconds: 0, startSeconds: 0 },
  });
  for (const [bad, field] of [
    ['{"closedLoop":{"clients":0,"requests":5}}', 'closedLoop.clients'],
    ['{"closedLoop":{"clients":2,"requests":1.5}}', 'closedLoop.requests'],
    ['{"closedLoop":{"clients":2,"requests":5,"thinkSeconds":-1}}', 'closedLoop.thinkSeconds'],
    ['{"closedLoop":{"clients":2,"requests":5,"think":1}}', 'closedLoop.think'],
  ] as const) {
    const err = t.throws(() => parseJsonTrace(bad, 'x'), { instanceOf: ScalingError });
    t.is(err.code, 'INVALID_TRACE');
    t.is(err.context.field, field);
  }
  t.is(
    t.throws(() => parseJsonTrace('{"arrivals":[1],"closedLoop":{"clients":1,"requests":1}}', 'x'), {
      instanceOf: ScalingError,
    }).code,
    'INVALID_TRACE',
  );
});

test('each AWS mode is tuned to the environment simulated: the backlog estimate follows the service time and the slots', (t) => {
  for (const mode of AWS_MODES) {
    const { policy, env, authority } = modeSetup(
      mode,
      { perImageSeconds: 3, concurrency: 1, batchSize: 1 },
      mode === 'controller-dies' ? { controllerDiesAt: DIES_AT } : {},
    );
    t.like(policy.backlog, { secondsPerMessage: 3, messagesPerInstance: 1 });
    t.is(targetBacklogPerInstance(policy), 10);
    t.is(env.warmPoolSize, ['alarms', 'controller'].includes(mode) ? 0 : policy.maxCapacity);
    // The stack's CloudWatch policies follow the controller's target too.
    if (authority) t.is(targetBacklogPerInstance(authority.fallback.policy), 10, mode);
  }
  t.throws(() => modeSetup('controller-dies'), { instanceOf: ScalingError, message: /time the controller dies/ });
  t.throws(() => modeSetup('as-deployed', {}, { controllerDiesAt: 5 }), { instanceOf: ScalingError });
  t.is(modeSetup('alarms').policy.periodSeconds, 60);
  t.is(modeSetup('controller').policy.periodSeconds, CONTROLLER_POLICY.periodSeconds);
  t.is(modeSetup('controller', {}, { maxCapacity: 7 }).env.warmPoolSize, 0);
  t.is(modeSetup('controller+warm', {}, { maxCapacity: 7 }).env.warmPoolSize, 7);
  t.is(modeSetup('controller+warm', { warmPoolSize: 3 }).env.warmPoolSize, 3);
});

test('every start of an instance is billed at least a minute (EC2), then per second; the controller keeps it that minute', (t) => {
  // One request: started at 2, in service 25 s later, done at once, back in the pool 6-8 s later — billed 1 minute.
  const quick = resolvePolicy({ minimumRunSeconds: 0 }, modeSetup('controller+warm').policy);
  const one = runMode({ arrivals: [0] }, 'controller+warm', {}, quick);
  t.true(one.summary.endSeconds < 60);
  t.is(one.summary.instanceMinutes, 1);
  t.is(one.summary.shortStarts, 1, 'it ran 33 s of its billed minute');
  const perSecond = runMode({ arrivals: [0] }, 'controller+warm', { minimumBilledSeconds: 0 }, quick);
  t.true(perSecond.summary.instanceMinutes < 0.6, `${perSecond.summary.instanceMinutes}`);
  // The controller's own policy keeps it until the minute is over (minimumRunSeconds 60): the same
  // bill, and none of the minute lost.
  const kept = runMode({ arrivals: [0] }, 'controller+warm');
  t.is(kept.summary.instanceMinutes, 1);
  t.is(kept.summary.shortStarts, 0);
  t.like(kept.actions[1], { t: 62, from: 1, to: 0, rule: 'scale-to-zero' });
  // Past the minute, per second: launched at 2, in service at 102, answered at 102.021; the periods
  // [104, 110) are empty, so it is terminated at 110 — 108 s.
  t.is(runMode({ arrivals: [0] }, 'controller', { bootSeconds: 100, jitter: 0 }).summary.instanceMinutes, 108 / 60);
});

test('a controller that reads the queue once per period (no maximum over it) misses short requests and flaps on the steady trace', (t) => {
  // 0.5 requests/s of 21-ms images: a reading at the period end never sees one, so every period looks
  // empty, the group goes to zero between requests and each one waits for a start.
  // (Without the first-minute hold, which would hide part of the flapping: the sampling alone.)
  const quick = resolvePolicy({ minimumRunSeconds: 0 }, modeSetup('controller+warm').policy);
  const max = runMode(traces.steady, 'controller+warm', {}, quick);
  const instant = runMode(traces.steady, 'controller+warm', { observation: 'instant' }, quick);
  t.is(max.summary.scaleOuts, 1);
  t.true(instant.summary.scaleOuts > 20, `${instant.summary.scaleOuts} scale-outs`);
  t.true(
    instant.summary.latency.p50 > 10 * max.summary.latency.p95 + 1,
    `p50 ${instant.summary.latency.p50} s against p95 ${max.summary.latency.p95} s`,
  );
  // Each of those starts is billed its minute.
  t.true(instant.summary.instanceMinutes >= instant.summary.warmStarts + instant.summary.launches);
});

test('compare: every AWS mode on every shipped trace, a chart each, compare.json, and the targets with their causes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'scaling-sim-compare-'));
  const out: string[] = [];
  t.is(await simulateMain(['--compare', '--out', dir], { stdout: (s) => out.push(s), logger: silentLogger }), 0);
  const text = out.join('\n');
  const rows = text.split('\n').filter((l) => /^\| (burst-100|classic-1000|steady|waves) \|/.test(l));
  t.is(rows.length, 20);
  const svgs = (await readdir(dir)).filter((f) => f.endsWith('.svg')).sort();
  t.deepEqual(
    svgs,
    ['burst-100', 'classic-1000', 'steady', 'waves']
      .flatMap((trace) =>
        ['alarms', 'controller-warm', 'controller', 'as-deployed', 'controller-dies'].map((m) => `${trace}-${m}.svg`),
      )
      .sort(),
  );
  const report = JSON.parse(await readFile(join(dir, 'compare.json'), 'utf8')) as {
    runs: { mode: string; summary: { served: number; requests: number } }[];
    targets: unknown[];
  };
  t.is(report.runs.length, 20);
  // The churn figures, per mode: starts and the starts ended inside their first billed minute.
  t.regex(text, /\| starts warm \/ cold \| ended in 1st min \| set by ctl \/ CW \|/);
  t.regex(text, /^\| waves \| as-deployed \| 18000\/18000 \|.*\| 9 \/ 0 \| 0 \| 6 \/ 0 \|$/m);
  t.regex(text, /^one scaling authority/m);
  const authority = text.slice(text.indexOf('one scaling authority'));
  t.is((authority.match(/^ {2}met {4}\S+ · (as-deployed|controller-dies):/gm) ?? []).length, 8);
  t.notRegex(authority, /MISSED/);
  t.true(report.runs.every((r) => r.summary.served === r.summary.requests));
  t.regex(
    text,
    /met {4}burst-100 · controller\+warm: [\d.]+ s — reaction [\d.]+ s \+ start [\d.]+ s \+ work [\d.]+ s: dominated by the warm start/,
  );

  // The same runs through the library: what is met with the cited defaults, and what is not.
  const checks = checkTargets(compareModes(Object.values(traces), {}, { maxCapacity: 20 }));
  const outcome = (target: RegExp, trace: string, mode: string) =>
    checks.find((c) => target.test(c.target) && c.trace === trace && c.mode === mode)?.met;
  t.true(outcome(/^burst of 100/, 'burst-100', 'controller+warm'));
  t.false(outcome(/^1000-image/, 'classic-1000', 'alarms'));
  t.true(outcome(/^1000-image/, 'classic-1000', 'controller'));
  for (const trace of ['burst-100', 'classic-1000', 'steady', 'waves']) {
    t.false(outcome(/^back to the minimum/, trace, 'alarms'));
    t.true(outcome(/^back to the minimum/, trace, 'controller'));
    t.true(outcome(/^back to the minimum/, trace, 'controller+warm'));
    t.true(outcome(/^back to the minimum/, trace, 'as-deployed'));
    // The CloudWatch policies alone take their five empty minutes.
    t.false(outcome(/^back to the minimum/, trace, 'controller-dies'));
  }
});

test('the CLI: modes by name (aws is alarms), --compare without --mode or --policy, --period for the controller only', (t) => {
  t.is(parseSimulateArgs(['--trace', 'x.csv']).mode, 'alarms');
  t.is(parseSimulateArgs(['--trace', 'x.csv', '--mode', 'aws']).mode, 'alarms');
  t.is(
    parseSimulateArgs(['--trace', 'x.csv', '--mode', 'controller+warm', '--period', '5']).policyOptions
      .controllerPeriodSeconds,
    5,
  );
  t.deepEqual(parseSimulateArgs(['--compare']).policyOptions, { maxCapacity: 20 });
  t.deepEqual(
    parseSimulateArgs(['--trace', 'x.csv', '--warm-start', '20', '--warm-pool', '4', '--sampling', 'instant'])
      .overrides,
    {
      warmStartSeconds: 20,
      warmPoolSize: 4,
      observation: 'instant',
    },
  );
  for (const argv of [
    ['--compare', '--mode', 'controller'],
    ['--compare', '--policy', 'p.json'],
    ['--trace', 'x.csv', '--period', '2'],
    ['--trace', 'x.csv', '--mode', 'cloud'],
    ['--trace', 'x.csv', '--trace', 'y.csv'],
    ['--trace', 'x.csv', '--sampling', 'sometimes'],
  ]) {
    t.is(t.throws(() => parseSimulateArgs(argv), { instanceOf: ScalingError }).code, 'INVALID_OPTIONS', argv.join(' '));
  }
});
