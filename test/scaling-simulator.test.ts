import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { Config } from '../lib/config.js';
import { silentLogger } from '../lib/log.js';
import { percentile } from '../lib/stats.js';
import { ScalingError } from '../scaling/core/errors.js';
import { DEFAULT_POLICY, LOCAL_POLICY, resolvePolicy, type ScalingPolicy } from '../scaling/core/policy.js';
import type { ServiceStatus } from '../scaling/index.js';
import { calibrate, environmentFrom } from '../tools/sim/calibrate/calibrate.js';
import {
  type AgedBatch,
  attributeBatches,
  type Batch,
  batchesOf,
  fitColdStart,
  windowExplainsBetter,
} from '../tools/sim/calibrate/cold-start.js';
import { latencyTail } from '../tools/sim/calibrate/compare.js';
import { ValidateError } from '../tools/sim/calibrate/errors.js';
import type { Measurement } from '../tools/sim/calibrate/measure.js';
import { estimateOverhead, rankCorrelation, ranWithoutWaiting, splitRequest } from '../tools/sim/calibrate/overhead.js';
import type { RequestOutcome } from '../tools/sim/calibrate/replay.js';
import { parseStatus } from '../tools/sim/calibrate/status.js';
import type { StoredResult } from '../tools/sim/calibrate/stored.js';
import { mulberry32 } from '../tools/sim/rng.js';
import { parseSimulateArgs, simulateMain } from '../tools/sim/simulate-cli.js';
import {
  coldServiceSeconds,
  environmentPreset,
  modeSetup,
  type PolicyOptions,
  requestOverheads,
  SIM_MODES,
  type SimEnvironment,
  type SimMode,
  simulate,
} from '../tools/sim/simulator.js';
import { loadTrace, parseCsvTrace, parseJsonTrace } from '../tools/sim/trace.js';

const TRACES = new URL('../tools/sim/traces/', import.meta.url);
/** A shipped trace of fixed arrival times. */
async function arrivalsTrace(file: string) {
  const trace = await loadTrace(new URL(file, TRACES).pathname);
  if (!('arrivals' in trace)) throw new Error(`${file} is not a trace of arrival times`);
  return trace;
}
const burst = await arrivalsTrace('burst-100.csv');
const steady = await arrivalsTrace('steady.json');

/** A mode's options: the controller of `controller-dies` needs a time to die. */
const optionsOf = (mode: SimMode): PolicyOptions => (mode === 'controller-dies' ? { controllerDiesAt: 10 } : {});

/**
 * The AWS environment before the modes (90 s boot, the policy's own 3 s per image, one at a time,
 * 60 s visibility, busy instances terminated): the numbers these alarm tests were written against.
 */
const LEGACY_AWS: Partial<SimEnvironment> = {
  bootSeconds: 90,
  perImageSeconds: 3,
  batchSize: 1,
  concurrency: 1,
  visibilityTimeoutSeconds: 60,
  drainOnScaleIn: false,
};

type Mode = 'alarms' | 'local';
const presetPolicy = (mode: Mode): ScalingPolicy => (mode === 'alarms' ? DEFAULT_POLICY : LOCAL_POLICY);
const presetEnv = (mode: Mode, policy: ScalingPolicy): SimEnvironment => ({
  ...environmentPreset(mode, policy),
  ...(mode === 'alarms' ? LEGACY_AWS : {}),
});

function run(
  arrivals: readonly number[],
  mode: Mode,
  policy: ScalingPolicy = presetPolicy(mode),
  env: Partial<SimEnvironment> = {},
) {
  return simulate({ arrivals, policy, env: { ...presetEnv(mode, policy), ...env } });
}

test('the shipped traces parse: 100 arrivals at t=0, and 900 arrivals 2 s apart', (t) => {
  t.is(burst.arrivals.length, 100);
  t.true(burst.arrivals.every((a) => a === 0));
  t.is(steady.arrivals.length, 900);
  t.is(steady.arrivals[899], 1798);
  t.true(steady.arrivals.every((a, i) => a === i * 2));
});

for (const mode of ['alarms', 'local'] as const) {
  for (const trace of [burst, steady]) {
    test(`${trace.name}/${mode}: every request is served exactly once, with a plausible latency`, (t) => {
      const r = run(trace.arrivals, mode);
      t.is(r.summary.served, trace.arrivals.length);
      t.true(r.summary.drained);
      const env = presetEnv(mode, presetPolicy(mode));
      const minService = env.perImageSeconds * (1 - env.jitter);
      t.true(
        r.latencies.every((l) => Number.isFinite(l) && l >= minService - 1e-9),
        'no request finishes faster than its own service time',
      );
    });

    test(`${trace.name}/${mode}: latency percentiles are ordered p50 ≤ p95 ≤ p99 ≤ max`, (t) => {
      const { latency } = run(trace.arrivals, mode).summary;
      t.true(latency.p50 > 0);
      t.true(latency.p50 <= latency.p95);
      t.true(latency.p95 <= latency.p99);
      t.true(latency.p99 <= latency.max);
    });

    test(`${trace.name}/${mode}: capacity returns to minCapacity once the queue has been idle`, (t) => {
      const r = run(trace.arrivals, mode);
      const policy = presetPolicy(mode);
      t.is(r.summary.finalCapacity, policy.minCapacity);
      const last = r.actions[r.actions.length - 1];
      t.is(last?.rule, 'scale-to-zero');
      t.is(last?.to, policy.minCapacity);
      // It waited for N whole empty periods after the last completion (plus the metric lag).
      const lastCompletion = trace.arrivals[0]! + r.summary.makespanSeconds;
      t.true(
        (last?.t ?? 0) - lastCompletion >=
          policy.scaleToZero.emptyPeriods * policy.periodSeconds - policy.periodSeconds,
      );
    });
  }
}

test('the burst of 100 scales out to maxCapacity (alarms and local)', (t) => {
  const aws = run(burst.arrivals, 'alarms');
  t.is(aws.summary.peakCapacity, DEFAULT_POLICY.maxCapacity);
  t.is(aws.actions[0]?.rule, 'scale-from-zero');
  t.is(aws.actions[0]?.to, 10); // ceil(100 / 10)
  const local = run(burst.arrivals, 'local');
  t.is(local.summary.peakCapacity, LOCAL_POLICY.maxCapacity);
  t.is(local.summary.peakQueueDepth, 100);
});

test('a small burst does not scale to max: capacity follows ceil(visible / target)', (t) => {
  const r = run(new Array<number>(25).fill(0), 'alarms');
  t.is(r.summary.peakCapacity, 3);
});

test('instance-minutes match a hand-computed tiny case', (t) => {
  // One request at t=0; 1-s periods, no lag; boot 10 s, 5 s per image, no jitter; scale to zero after 3 empty periods.
  // t=1: datapoint [0,1) shows 1 visible, nothing in service → scale from zero, launch 1 instance.
  // t=11: in service, takes the message; t=16: done (latency 16 s).
  // [16,17), [17,18), [18,19) are empty → t=19: scale to zero. Billed 1 → 19 = 18 s = 0.3 instance-minutes.
  const policy = resolvePolicy(
    {
      maxCapacity: 1,
      scaleToZero: { enabled: true, emptyPeriods: 3 },
      warmupSeconds: 0,
      scaleOutCooldownSeconds: 0,
      scaleInCooldownSeconds: 0,
    },
    LOCAL_POLICY,
  );
  const r = run([0], 'local', policy, { bootSeconds: 10, perImageSeconds: 5, jitter: 0 });
  t.is(r.summary.instanceMinutes, 0.3);
  t.deepEqual(r.latencies, [16]);
  t.is(r.summary.makespanSeconds, 16);
  t.is(r.summary.endSeconds, 19);
  t.deepEqual(
    r.actions.map((a) => [a.t, a.from, a.to, a.rule]),
    [
      [1, 0, 1, 'scale-from-zero'],
      [19, 1, 0, 'scale-to-zero'],
    ],
  );
});

const round9 = (xs: readonly number[]) => xs.map((x) => Number(x.toFixed(9)));

test('cold start: a new instance works coldStartFactor times slower during its first coldStartSeconds', (t) => {
  // The hand-computed case above: launched at 1, in service at 11, 5 s per image. Two requests at 0,
  // one slot: warm, done at 16 and 21. Cold 4 s × 5: the first batch does 4 / 5 = 0.8 s of work in
  // the window and the remaining 4.2 s after it, done at 11 + 4 + 4.2 = 19.2; the second starts at age
  // 8.2, warm, done at 24.2. Both 3.2 s later = the work lost in the window, 4 × (1 − 1 / 5).
  const policy = resolvePolicy(
    {
      maxCapacity: 1,
      scaleToZero: { enabled: true, emptyPeriods: 3 },
      warmupSeconds: 0,
      scaleOutCooldownSeconds: 0,
      scaleInCooldownSeconds: 0,
    },
    LOCAL_POLICY,
  );
  const base = { bootSeconds: 10, perImageSeconds: 5, jitter: 0 };
  t.deepEqual(run([0, 0], 'local', policy, base).latencies, [16, 21]);
  t.deepEqual(
    round9(run([0, 0], 'local', policy, { ...base, coldStartSeconds: 4, coldStartFactor: 5 }).latencies),
    [19.2, 24.2],
  );
  // A window longer than the batch: the whole batch at 1/5 speed (25 s), the next one still inside it (25 s).
  t.deepEqual(run([0, 0], 'local', policy, { ...base, coldStartSeconds: 100, coldStartFactor: 5 }).latencies, [36, 61]);
});

test('cold start: factor 1 or a 0-s window changes nothing, and warm minimum instances have none', (t) => {
  const plain = run(steady.arrivals, 'local');
  t.deepEqual(run(steady.arrivals, 'local', LOCAL_POLICY, { coldStartSeconds: 30, coldStartFactor: 1 }), plain);
  t.deepEqual(run(steady.arrivals, 'local', LOCAL_POLICY, { coldStartSeconds: 0, coldStartFactor: 5 }), plain);
  t.notDeepEqual(
    run(steady.arrivals, 'local', LOCAL_POLICY, { coldStartSeconds: 30, coldStartFactor: 5 }).latencies,
    plain.latencies,
  );
  const warmMin = resolvePolicy(
    { minCapacity: 1, maxCapacity: 1, scaleFromZero: { enabled: true, threshold: 1, evaluationPeriods: 1 } },
    LOCAL_POLICY,
  );
  t.deepEqual(
    run([0, 0, 0], 'local', warmMin, { perImageSeconds: 5, jitter: 0, coldStartSeconds: 100, coldStartFactor: 5 })
      .latencies,
    [5, 10, 15],
  );
  for (const mode of SIM_MODES) {
    t.like(modeSetup(mode, {}, optionsOf(mode)).env, { coldStartSeconds: 0, coldStartFactor: 1 });
  }
});

test('coldServiceSeconds: slow inside the window, full speed after it', (t) => {
  const env = { coldStartSeconds: 0.5, coldStartFactor: 5 };
  t.is(coldServiceSeconds(0.08, 0, env), 0.4); // all inside
  t.is(Number(coldServiceSeconds(1, 0, env).toFixed(9)), 1.4); // 0.5 s for 0.1 s of work, then 0.9 s
  t.is(Number(coldServiceSeconds(1, 0.3, env).toFixed(9)), 1.16); // 0.2 s for 0.04 s, then 0.96 s
  t.is(coldServiceSeconds(1, 0.6, env), 1); // after the window
  t.is(coldServiceSeconds(1, Number.POSITIVE_INFINITY, env), 1); // a warm instance
  for (const [field, value] of [
    ['coldStartSeconds', -1],
    ['coldStartFactor', 0.5],
  ] as const) {
    const err = t.throws(() => run([0], 'local', LOCAL_POLICY, { [field]: value }), { instanceOf: ScalingError });
    t.is(err.context.field, field);
  }
});

function storedImage(id: string, batch: number, inferMs: number, completedAt: number, worker = 'h:1'): StoredResult {
  return { id, batch, worker, timings: { infer: inferMs }, completedAt };
}

test('validate: batches are rebuilt from the stored results per worker, identical single-image batches kept apart', (t) => {
  const origin = 1000;
  const batches = batchesOf(
    [
      storedImage('a', 1, 8, 1001.5),
      storedImage('b', 1, 8, 1003.25), // same size and inference time, another batch
      storedImage('c', 2, 20, 1002.012), // persisted after its batch-mate: the batch ended at the earlier one
      storedImage('d', 2, 20, 1002.01),
      storedImage('e', 3, 1, 1009), // no inference time: not a batch
      storedImage('f', 2, 20, 1002.011, 'h:2'), // same size and time as c + d, but another worker's batch
      storedImage('g', 2, 20, 1002.02, 'h:2'),
    ].map((r) => (r.id === 'e' ? { ...r, timings: {} } : r)),
    origin,
  );
  t.deepEqual(
    batches.map((b) => [b.worker, b.n, Number(b.start.toFixed(6)), Number(b.end.toFixed(6)), b.ids]),
    [
      ['h:1', 1, 1.492, 1.5, ['a']],
      ['h:1', 2, 1.99, 2.01, ['d', 'c']],
      ['h:2', 2, 1.991, 2.011, ['f', 'g']],
      ['h:1', 1, 3.242, 3.25, ['b']],
    ],
  );
});

test('validate: a batch is aged on the worker that ran it; workers take the ready times in the order they start classifying', (t) => {
  const batch = (worker: string, start: number, end: number): Batch => ({
    worker,
    n: 1,
    inferSeconds: end - start,
    start,
    end,
    ids: [`${worker}@${start}`],
  });
  // Ready at 0 and 2 (given in any order). h:9 classifies first, so it is the one ready at 0; h:3 is
  // ready at 2. At 2.5 both are free: the batch is h:9's because its result says so (the old guess,
  // the worker idle longest, would have given it to h:3).
  const a = attributeBatches([batch('h:3', 2.55, 2.8), batch('h:9', 0.5, 0.7), batch('h:9', 2.5, 2.6)], [2, 0]);
  t.deepEqual(
    a.batches.map((b) => [b.worker, Number(b.ageSeconds.toFixed(9)), b.workerReadyAt, b.previousEnd]),
    [
      ['h:9', 0.5, 0, Number.NEGATIVE_INFINITY],
      ['h:9', 2.5, 0, 0.7],
      ['h:3', Number((0.55).toFixed(9)), 2, Number.NEGATIVE_INFINITY],
    ],
  );
  t.like(a, { workers: 2, started: 2, overlapping: 0 });
  // A worker in service before the origin is warm (age +∞); a batch overlapping its worker's previous one is counted.
  const warm = attributeBatches([batch('h:1', 0.1, 0.3), batch('h:1', 0.2, 0.4)], [Number.NEGATIVE_INFINITY, 5]);
  t.deepEqual(
    warm.batches.map((b) => b.ageSeconds),
    [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY],
  );
  t.like(warm, { workers: 1, started: 2, overlapping: 1 });
  // More workers than were started cannot be aged.
  const err = t.throws(() => attributeBatches([batch('h:1', 0.1, 0.3), batch('h:2', 0.1, 0.3)], [0]), {
    instanceOf: ValidateError,
  });
  t.is(err.code, 'CALIBRATION');
  t.deepEqual(err.context.workers, ['h:1', 'h:2']);
});

test('validate: the cold-start fit recovers the window and the slowdown the batches were made with', (t) => {
  // Warm: 10 ms + 5 ms × n. Cold: 1 s × 4. One batch every 0.25 s of age for 10 s, sizes 1-8.
  const env = { coldStartSeconds: 1, coldStartFactor: 4 };
  const make = (cold: boolean): AgedBatch[] =>
    Array.from({ length: 40 }, (_, i) => {
      const n = (i % 8) + 1;
      const age = i * 0.25;
      const inferSeconds = cold ? coldServiceSeconds(0.01 + 0.005 * n, age, env) : 0.01 + 0.005 * n;
      return {
        worker: 'h:1',
        n,
        inferSeconds,
        start: age,
        end: age + inferSeconds,
        ids: [String(i)],
        ageSeconds: age,
        workerReadyAt: 0,
        previousEnd: age - 0.25,
      };
    });
  const fit = fitColdStart(make(true));
  // The last cold batch (n = 4 at age 0.75: 30 ms × 4) ends at 0.87; any window in [0.87, 1] fits exactly.
  t.true(fit.seconds >= 0.87 && fit.seconds <= 1, `window ${fit.seconds}`);
  t.is(Number(fit.factor.toFixed(4)), 4);
  t.is(fit.coldBatches, 4);
  t.is(Number(fit.warm.overheadSeconds.toFixed(9)), 0.01);
  t.is(Number(fit.warm.perImageSeconds.toFixed(9)), 0.005);
  const none = fitColdStart(make(false));
  t.like(none, { seconds: 0, factor: 1, coldBatches: 0 });
});

test('validate: jitter alone is not a cold start, and a cold start is still found through jitter', (t) => {
  // Warm: 10 ms + 5 ms × n, each batch ×U(0.8, 1.2) — early batches that happen to be slow must not
  // read as a cold start. Then the same with a real 1 s × 4 window.
  const env = { coldStartSeconds: 1, coldStartFactor: 4 };
  const make = (cold: boolean, seed: number): AgedBatch[] => {
    const rand = mulberry32(seed);
    return Array.from({ length: 200 }, (_, i) => {
      const n = (i % 8) + 1;
      const age = i * 0.05;
      const work = (0.01 + 0.005 * n) * (0.8 + 0.4 * rand());
      const inferSeconds = cold ? coldServiceSeconds(work, age, env) : work;
      return {
        worker: 'h:1',
        n,
        inferSeconds,
        start: age,
        end: age + inferSeconds,
        ids: [String(i)],
        ageSeconds: age,
        workerReadyAt: 0,
        previousEnd: age - 0.05,
      };
    });
  };
  for (const seed of [1, 2, 3, 4, 5]) {
    t.like(fitColdStart(make(false, seed)), { seconds: 0, factor: 1, coldBatches: 0 }, `warm only, seed ${seed}`);
    const fit = fitColdStart(make(true, seed));
    t.true(fit.seconds > 0.8 && fit.seconds <= 1.1, `seed ${seed}: window ${fit.seconds}`);
    t.true(fit.factor > 3 && fit.factor < 5, `seed ${seed}: factor ${fit.factor}`);
  }
  // The criterion itself: two parameters must pay for themselves, more so with few batches.
  t.false(windowExplainsBetter(200, 1, 0.99));
  t.true(windowExplainsBetter(200, 1, 0.9));
  t.false(windowExplainsBetter(10, 1, 0.7));
  t.false(windowExplainsBetter(10, 0, 0));
});

test('validate: the latency tail pairs the k-th slowest and marks the p95 rank', (t) => {
  const measured = Array.from({ length: 100 }, (_, i) => i / 100);
  const predicted = measured.map((x) => x / 2);
  const tail = latencyTail(measured, predicted);
  t.deepEqual(
    tail.map((p) => p.rank),
    [1, 6, 10, 20, 30, 40],
  );
  t.like(tail[1], { p95: true, measured: 0.94, predicted: 0.47 });
  t.is(
    percentile(
      [...measured].sort((a, b) => a - b),
      95,
    ),
    0.94,
  );
});

test('time outside the queue: ingest delays reaching the queue, deliver delays the answer; both count in latency', (t) => {
  // Two warm instances, two requests at t=0, 5 s per image. Ingest 0.5 s: in the queue at 0.5, done at 5.5;
  // deliver 0.25 s: answered at 5.75. Without them: latency 5.
  const policy = resolvePolicy(
    { minCapacity: 2, maxCapacity: 2, scaleFromZero: { enabled: true, threshold: 1, evaluationPeriods: 1 } },
    LOCAL_POLICY,
  );
  const plain = run([0, 0], 'local', policy, { perImageSeconds: 5, jitter: 0 });
  const timed = run([0, 0], 'local', policy, {
    perImageSeconds: 5,
    jitter: 0,
    ingestSeconds: 0.5,
    deliverSeconds: 0.25,
  });
  t.deepEqual(plain.latencies, [5, 5]);
  t.deepEqual(timed.latencies, [5.75, 5.75]);
  t.is(timed.summary.makespanSeconds, 5.75);
});

test('per-request overhead: latency is ingest + queue wait + processing + deliver for every request, and presets add none', (t) => {
  // One warm instance, 5 s per image, three requests at t=0: queued behind each other. Each latency
  // must carry exactly ingest + deliver on top of the same queue wait and processing.
  const policy = resolvePolicy(
    { minCapacity: 1, maxCapacity: 1, scaleFromZero: { enabled: true, threshold: 1, evaluationPeriods: 1 } },
    LOCAL_POLICY,
  );
  const plain = run([0, 0, 0], 'local', policy, { perImageSeconds: 5, jitter: 0 });
  const timed = run([0, 0, 0], 'local', policy, {
    perImageSeconds: 5,
    jitter: 0,
    ingestSeconds: 0.3,
    deliverSeconds: 0.2,
  });
  t.deepEqual(plain.latencies, [5, 10, 15]);
  t.deepEqual(
    timed.latencies.map((l) => Number(l.toFixed(9))),
    [5.5, 10.5, 15.5],
  );
  t.is(Number(timed.summary.latency.p95.toFixed(9)), 15.5);
  t.is(Number(timed.summary.makespanSeconds.toFixed(9)), 15.5);
  for (const mode of SIM_MODES) {
    const { env } = modeSetup(mode, {}, optionsOf(mode));
    t.is(env.ingestSeconds, 0);
    t.is(env.deliverSeconds, 0);
  }
});

test('ingest delays what the scaler sees: from zero, a request still being ingested at a period end is not yet visible', (t) => {
  // 1-s periods, no lag, scale from zero at 1 visible. Ingest 1.5 s: visible at 1.5, so the datapoint
  // [0,1) is empty and the launch happens at t=2 instead of t=1.
  const policy = resolvePolicy(
    { maxCapacity: 1, warmupSeconds: 0, scaleOutCooldownSeconds: 0, scaleInCooldownSeconds: 0 },
    LOCAL_POLICY,
  );
  const now = run([0], 'local', policy, { bootSeconds: 1, perImageSeconds: 1, jitter: 0 });
  const later = run([0], 'local', policy, { bootSeconds: 1, perImageSeconds: 1, jitter: 0, ingestSeconds: 1.5 });
  t.like(now.actions[0], { t: 1, rule: 'scale-from-zero' });
  t.like(later.actions[0], { t: 2, rule: 'scale-from-zero' });
  t.deepEqual(later.latencies, [4]); // launched at 2, in service at 3, done at 4
});

test('negative overhead values are typed errors naming the field', (t) => {
  for (const field of ['ingestSeconds', 'deliverSeconds'] as const) {
    const err = t.throws(() => run([0], 'local', LOCAL_POLICY, { [field]: -0.1 }), { instanceOf: ScalingError });
    t.is(err.context.field, field);
  }
});

test('a measured overhead sample: each request draws one whole (ingest, deliver) pair, on top of the constants', (t) => {
  // Enough warm instances that nothing waits: latency = ingest + 1 s of processing + deliver. The
  // pairs are (0, 0) and (1, 2): a request has 1 s or 4 s, never 2 s or 3 s (independent draws would).
  const policy = resolvePolicy(
    { minCapacity: 10, maxCapacity: 10, scaleFromZero: { enabled: true, threshold: 1, evaluationPeriods: 1 } },
    LOCAL_POLICY,
  );
  const arrivals = Array.from({ length: 200 }, (_, i) => i * 10);
  const overheadSamples = [
    { ingestSeconds: 0, deliverSeconds: 0 },
    { ingestSeconds: 1, deliverSeconds: 2 },
  ];
  const drawn = run(arrivals, 'local', policy, { perImageSeconds: 1, jitter: 0, overheadSamples });
  const counts = new Map<number, number>();
  for (const l of drawn.latencies) counts.set(l, (counts.get(l) ?? 0) + 1);
  t.deepEqual(
    [...counts.keys()].sort((a, b) => a - b),
    [1, 4],
  );
  t.true(counts.get(1)! > 60 && counts.get(4)! > 60, `both pairs drawn: ${JSON.stringify([...counts])}`);
  // The constants add to every draw.
  const plus = run(arrivals, 'local', policy, {
    perImageSeconds: 1,
    jitter: 0,
    overheadSamples,
    ingestSeconds: 0.5,
    deliverSeconds: 0.25,
  });
  t.deepEqual(
    plus.latencies,
    drawn.latencies.map((l) => l + 0.75),
  );
  // Deterministic: the same seed draws the same pairs; another seed, others.
  t.deepEqual(
    run(arrivals, 'local', policy, { perImageSeconds: 1, jitter: 0, overheadSamples }).latencies,
    drawn.latencies,
  );
  t.notDeepEqual(
    run(arrivals, 'local', policy, { perImageSeconds: 1, jitter: 0, overheadSamples, seed: 2 }).latencies,
    drawn.latencies,
  );
});

test('a measured overhead sample sets the latency tail that its median alone would miss', (t) => {
  // 10 req/s on the local preset with a fast worker: nothing queues after the cold start. One
  // request in ten is delivered 1 s late in the sample: the p95 must show it, the median (the old
  // constant) cannot.
  const arrivals = Array.from({ length: 900 }, (_, i) => i * 0.1);
  const overheadSamples = Array.from({ length: 100 }, (_, i) => ({
    ingestSeconds: 0.01,
    deliverSeconds: i % 10 === 0 ? 1 : 0.02,
  }));
  const env = { perImageSeconds: 0.01 };
  const drawn = run(arrivals, 'local', LOCAL_POLICY, { ...env, overheadSamples });
  const median = run(arrivals, 'local', LOCAL_POLICY, { ...env, ingestSeconds: 0.01, deliverSeconds: 0.02 });
  t.true(drawn.summary.latency.p95 > 1, `p95 ${drawn.summary.latency.p95}`);
  t.true(median.summary.latency.p95 < 0.1, `p95 ${median.summary.latency.p95}`);
  const slow = drawn.latencies.filter((l) => l > 1).length;
  t.true(slow > 60 && slow < 120, `${slow} of 900 delivered late`);
});

test('with drawn overheads the makespan ends at the last answer, which need not follow the last completion', (t) => {
  // Pairs (0, 30) and (20, 0), one request a second, nothing waits: the last completions are late
  // ingests answered at once, the last answer an earlier request delivered 30 s after its completion.
  const policy = resolvePolicy(
    { minCapacity: 10, maxCapacity: 10, scaleFromZero: { enabled: true, threshold: 1, evaluationPeriods: 1 } },
    LOCAL_POLICY,
  );
  const arrivals = Array.from({ length: 200 }, (_, i) => i);
  const env: Partial<SimEnvironment> = {
    perImageSeconds: 1,
    jitter: 0,
    overheadSamples: [
      { ingestSeconds: 0, deliverSeconds: 30 },
      { ingestSeconds: 20, deliverSeconds: 0 },
    ],
  };
  const r = run(arrivals, 'local', policy, env);
  const overheads = requestOverheads(arrivals.length, { ...environmentPreset('local', policy), ...env });
  const answers = arrivals.map((a, i) => a + r.latencies[i]!);
  const completions = answers.map((x, i) => x - overheads[i]!.deliverSeconds);
  const lastCompleted = completions.indexOf(Math.max(...completions));
  t.true(answers[lastCompleted]! < Math.max(...answers), 'the case tells the last answer from the last completion');
  t.is(r.summary.makespanSeconds, Math.max(...answers));
});

test('overhead draws have their own stream: a sample of zeros changes nothing, and presets have no sample', (t) => {
  const plain = run(steady.arrivals, 'local');
  const zeros = run(steady.arrivals, 'local', LOCAL_POLICY, {
    overheadSamples: [
      { ingestSeconds: 0, deliverSeconds: 0 },
      { ingestSeconds: 0, deliverSeconds: 0 },
    ],
  });
  t.deepEqual(zeros, plain); // same jitter, same service times
  for (const mode of SIM_MODES) t.is(modeSetup(mode, {}, optionsOf(mode)).env.overheadSamples, undefined);
  const env = environmentPreset('local', LOCAL_POLICY);
  t.deepEqual(requestOverheads(2, { ...env, ingestSeconds: 0.1, deliverSeconds: 0.2 }), [
    { ingestSeconds: 0.1, deliverSeconds: 0.2 },
    { ingestSeconds: 0.1, deliverSeconds: 0.2 },
  ]);
});

test('an invalid overhead sample is a typed error naming the entry', (t) => {
  const empty = t.throws(() => run([0], 'local', LOCAL_POLICY, { overheadSamples: [] }), { instanceOf: ScalingError });
  t.is(empty.context.field, 'overheadSamples');
  const negative = t.throws(
    () =>
      run([0], 'local', LOCAL_POLICY, {
        overheadSamples: [
          { ingestSeconds: 0, deliverSeconds: 0 },
          { ingestSeconds: 0.1, deliverSeconds: -0.01 },
        ],
      }),
    { instanceOf: ScalingError },
  );
  t.is(negative.code, 'INVALID_SIMULATION');
  t.is(negative.context.field, 'overheadSamples[1].deliverSeconds');
});

function answered(timings: Record<string, number>, sent: number, done: number): RequestOutcome {
  return { index: 0, arrival: 0, sent, done, status: 200, id: 'x', timings, polled: false, error: undefined };
}

test('validate: a request splits into ingest (client wait + web stages) and deliver (rest of total), enqueue counted once', (t) => {
  // Client: sent 0, answered 2.0 s. Web tier total 1.7 s: 0.3 s before the server read the first byte.
  // upload 0.1 + s3Put 0.2 + enqueue 0.05 → ingest 0.3 + 0.35 = 0.65 s. queueWait (from the start of
  // enqueue) 0.8, infer 0.1 → deliver = 1.7 − 0.1 − 0.2 − 0.8 − 0.1 = 0.5 s. 0.65 + (0.8 − 0.05) + 0.1 + 0.5 = 2.0.
  const r = answered(
    { upload: 100, s3Put: 200, enqueue: 50, queueWait: 800, s3Get: 20, decode: 30, infer: 100, total: 1700 },
    0,
    2,
  );
  const split = splitRequest(r);
  t.truthy(split);
  t.is(Number(split?.ingest.toFixed(9)), 0.65);
  t.is(Number(split?.deliver.toFixed(9)), 0.5);
  t.is(Number(split?.beforeServer.toFixed(9)), 0.3);
  t.is(splitRequest({ ...r, polled: true }), undefined);
  t.is(splitRequest(answered({ upload: 100 }, 0, 1)), undefined);
  const est = estimateOverhead(
    't',
    [
      r,
      answered({ upload: 10, s3Put: 10, enqueue: 10, queueWait: 20, infer: 10, total: 100 }, 0, 0.11),
      answered({}, 0, 1),
    ],
    new Map(),
  );
  t.is(est.answered.requests, 2);
  t.is(Number(est.answered.ingestSeconds.p50.toFixed(9)), 0.04); // nearest-rank median of [0.04, 0.65]
  t.deepEqual(est.calm, []); // no batch known for 'x': not shown to have run without waiting
  const err = t.throws(() => estimateOverhead('t', [answered({}, 0, 1)], new Map()), { instanceOf: ValidateError });
  t.is(err.code, 'CALIBRATION');
});

test('validate: a request ran without waiting when its worker was in service and idle as its message was queued', (t) => {
  const batch = { workerReadyAt: 1, previousEnd: 2 };
  t.false(ranWithoutWaiting(0.5, batch)); // queued before its worker was in service: waited for the start
  t.false(ranWithoutWaiting(1.5, batch)); // its worker was still on its previous batch
  t.true(ranWithoutWaiting(2.5, batch));
  t.true(ranWithoutWaiting(0.5, { workerReadyAt: Number.NEGATIVE_INFINITY, previousEnd: Number.NEGATIVE_INFINITY }));
});

test('validate: rank correlation of ingest and deliver', (t) => {
  const pairs = (xs: readonly [number, number][]) => xs.map(([i, d]) => ({ ingestSeconds: i, deliverSeconds: d }));
  t.is(
    rankCorrelation(
      pairs([
        [1, 10],
        [2, 30],
        [3, 20],
        [4, 40],
      ]),
    ),
    0.8,
  );
  t.is(
    rankCorrelation(
      pairs([
        [1, 3],
        [2, 2],
        [3, 1],
      ]),
    ),
    -1,
  );
  t.is(
    rankCorrelation(
      pairs([
        [1, 5],
        [2, 5],
        [3, 5],
      ]),
    ),
    undefined,
  ); // a constant part
  t.is(
    rankCorrelation(
      pairs([
        [1, 1],
        [2, 2],
      ]),
    ),
    undefined,
  );
});

/**
 * A run of one worker (launched at 0.5 s, ready at 1 s) with one request per arrival: each waits
 * `queueWait` s in the queue (enqueue included), takes `infer` s and `deliver` s after it; its
 * ingest is 0.02 s (client wait 0.002 s, upload, S3 put and enqueue) and its batch is its own.
 */
function oneWorkerRun(requests: readonly { sent: number; queueWait: number; deliver: number }[]): Measurement {
  const origin = 1000;
  const infer = 0.01;
  const ms = (s: number) => Math.round(s * 1e6) / 1e3;
  const outcomes = requests.map((r, index): RequestOutcome => {
    const timings = {
      upload: 5,
      s3Put: 8,
      enqueue: 5,
      queueWait: ms(r.queueWait),
      infer: ms(infer),
      total: ms(0.013 + r.queueWait + infer + r.deliver),
    };
    return {
      index,
      arrival: r.sent,
      sent: r.sent,
      done: r.sent + 0.002 + timings.total / 1000,
      status: 200,
      id: `r${index}`,
      timings,
      polled: false,
      error: undefined,
    };
  });
  const stored = requests.map((r, index): StoredResult => {
    const inferEnd = r.sent + 0.002 + 0.013 + r.queueWait + infer;
    return { id: `r${index}`, batch: 1, worker: 'h:1', timings: { infer: ms(infer) }, completedAt: origin + inferEnd };
  });
  return {
    name: 'synthetic',
    arrivals: requests.map((r) => r.sent),
    requests: outcomes,
    originEpoch: origin,
    timeline: [],
    decisions: [
      {
        at: '',
        t: origin + 0.5,
        inputs: {
          visible: 1,
          inFlight: 0,
          running: 0,
          desired: 0,
          lastScaleOut: null,
          lastScaleIn: null,
          idleSince: null,
          backlogSince: origin,
        },
        from: 0,
        to: 1,
        action: 'scale-out',
        rule: 'scale-from-zero',
        reason: '',
        resize: { state: 'done', attempts: 1, ms: 500 },
      },
    ],
    stored,
    policy: { minCapacity: 0, maxCapacity: 1, periodSeconds: 1, targetBacklogPerInstance: 10 },
    config: { worker: { maxBatch: 8 } } as Config,
  };
}

test('validate: the simulator draws from the requests that ran without waiting, or takes the medians when most waited', (t) => {
  // Three requests before the worker is ready (they wait for it, and their deliver holds the cold
  // worker's slowness), then four spaced ones that find it idle.
  const waiting = [0, 0.1, 0.2].map((sent) => ({ sent, queueWait: 1 - sent, deliver: 0.5 }));
  const calm = [2, 3, 4, 5].map((sent, i) => ({ sent, queueWait: 0.001, deliver: 0.02 + i * 0.01 }));
  const c = calibrate(oneWorkerRun([...waiting, ...calm]));
  t.is(c.overhead.simulated, 'sample');
  t.is(c.overhead.answered.requests, 7);
  t.deepEqual(
    c.overhead.sample.map((p) => [Number(p.ingestSeconds.toFixed(6)), Number(p.deliverSeconds.toFixed(6))]),
    [
      [0.02, 0.02],
      [0.02, 0.03],
      [0.02, 0.04],
      [0.02, 0.05],
    ],
  );
  t.is(Number(c.overhead.sampleSpread?.deliverSeconds.p95.toFixed(6)), 0.05);
  const env = environmentFrom(environmentPreset('local', LOCAL_POLICY), c, 60);
  t.like(env, { ingestSeconds: 0, deliverSeconds: 0, overheadSamples: c.overhead.sample });

  // Mostly waiting: each request's ingest drawn from all answered ones (the first to reach the queue
  // starts the scale-out), and the median deliver of all, as a constant.
  const loaded = calibrate(oneWorkerRun([...waiting, ...calm.slice(0, 2)]));
  t.is(loaded.overhead.simulated, 'ingest');
  t.is(loaded.overhead.sample.length, 2);
  t.is(loaded.overhead.ingest.length, 5);
  const drawn = environmentFrom(environmentPreset('local', LOCAL_POLICY), loaded, 60);
  t.deepEqual(
    drawn.overheadSamples,
    loaded.overhead.ingest.map((ingestSeconds) => ({ ingestSeconds, deliverSeconds: 0 })),
  );
  t.is(Number(drawn.deliverSeconds.toFixed(6)), 0.5);
  t.is(drawn.ingestSeconds, 0);
  // The autoscaler's grid: its first decision came 0.5 s after the origin, 1-s periods.
  t.is(loaded.tickPhaseSeconds, 0.5);
  t.is(drawn.tickPhaseSeconds, 0.5);
});

test("the scaler's periods may end off the origin's grid (a controller starts before the trace): ticks at phase + k × period", (t) => {
  const policy = resolvePolicy(
    { maxCapacity: 1, warmupSeconds: 0, scaleOutCooldownSeconds: 0, scaleInCooldownSeconds: 0 },
    LOCAL_POLICY,
  );
  const env = (tickPhaseSeconds: number): SimEnvironment => ({
    ...environmentPreset('local', policy),
    bootSeconds: 1,
    perImageSeconds: 0.5,
    jitter: 0,
    tickPhaseSeconds,
  });
  // One request at 0.2 s: with the grid on the origin it is first seen at 1 s; with a phase of 0.3 s, at 0.3 s.
  t.is(simulate({ arrivals: [0.2], policy, env: env(0) }).actions[0]?.t, 1);
  t.is(simulate({ arrivals: [0.2], policy, env: env(0.3) }).actions[0]?.t, 0.3);
  t.is(simulate({ arrivals: [0.2], policy, env: env(0.3) }).summary.makespanSeconds, 0.3 - 0.2 + 1 + 0.5);
  t.throws(() => simulate({ arrivals: [0], policy, env: env(1) }), { message: /tickPhaseSeconds/ });
  t.throws(() => simulate({ arrivals: [0], policy, env: env(-0.1) }), { message: /tickPhaseSeconds/ });
});

test('the CLI takes --ingest, --deliver, --cold-start and --cold-factor', (t) => {
  const o = parseSimulateArgs([
    '--trace',
    'x.csv',
    '--ingest',
    '0.2',
    '--deliver',
    '0.05',
    '--cold-start',
    '1.5',
    '--cold-factor',
    '3',
  ]);
  t.deepEqual(o.overrides, { ingestSeconds: 0.2, deliverSeconds: 0.05, coldStartSeconds: 1.5, coldStartFactor: 3 });
  t.throws(() => parseSimulateArgs(['--trace', 'x.csv', '--ingest', 'soon']), { instanceOf: ScalingError });
});

test('instance-minutes with a warm minimum: two instances billed from 0 to the end', (t) => {
  // minCapacity 2, already in service at t=0; two requests at t=0 finish at t=5 on both instances;
  // the run stops at the first period boundary after that (t=6): 2 × 6 s = 0.2 instance-minutes.
  const policy = resolvePolicy(
    { minCapacity: 2, maxCapacity: 2, scaleFromZero: { enabled: true, threshold: 1, evaluationPeriods: 1 } },
    LOCAL_POLICY,
  );
  const r = run([0, 0], 'local', policy, { perImageSeconds: 5, jitter: 0 });
  t.deepEqual(r.latencies, [5, 5]);
  t.is(r.summary.endSeconds, 6);
  t.is(r.summary.instanceMinutes, 0.2);
  t.is(r.actions.length, 0);
});

test('the metric lag delays scale from zero by whole periods', (t) => {
  const policy = DEFAULT_POLICY;
  const noLag = run(burst.arrivals, 'alarms', policy, { metricLagPeriods: 0 });
  const lag2 = run(burst.arrivals, 'alarms', policy, { metricLagPeriods: 2 });
  t.is(noLag.actions[0]?.t, 60);
  t.is(lag2.actions[0]?.t, 180);
  t.true(lag2.summary.latency.p50 > noLag.summary.latency.p50);
});

test('a busy instance terminated by a stale scale-in gives its message back after the visibility timeout', (t) => {
  // Metrics seen 1 period late. Two instances idle during [7,8); two requests arrive at 8.5 and both
  // instances take one. At t=9 the scaler sees the idle datapoint [7,8) and scales in to 1: the newest
  // (busy) instance is terminated, its message reappears at 9 + 7 = 16 and the survivor (free since
  // 13.5) finishes it at 21.
  const policy = resolvePolicy(
    {
      maxCapacity: 2,
      backlog: { override: 1 },
      warmupSeconds: 0,
      scaleOutCooldownSeconds: 0,
      scaleInCooldownSeconds: 0,
      scaleToZero: { enabled: true, emptyPeriods: 20 },
    },
    LOCAL_POLICY,
  );
  const r = run([0, 0, 8.5, 8.5], 'local', policy, {
    bootSeconds: 0,
    perImageSeconds: 5,
    jitter: 0,
    visibilityTimeoutSeconds: 7,
    metricLagPeriods: 1,
  });
  t.deepEqual(
    r.actions.slice(0, 2).map((a) => [a.t, a.from, a.to, a.rule]),
    [
      [2, 0, 2, 'scale-from-zero'],
      [9, 2, 1, 'target-tracking'],
    ],
  );
  t.is(r.summary.served, 4);
  t.deepEqual(r.latencies, [7, 7, 5, 12.5]); // launched at 2 → done at 7; 8.5 → 13.5; 8.5 → 21
  // Idle from 21; 20 empty periods, seen one period late → the last instance goes at 41.
  t.like(r.actions[2], { t: 41, from: 1, to: 0, rule: 'scale-to-zero' });
  t.is(r.actions.length, 3);
  // Billing: instance 0 from 2 to 41 (39 s) + instance 1 from 2 to 9 (7 s) = 46 s.
  t.is(r.summary.instanceMinutes, 46 / 60);
});

test('same seed, same result; another seed, other service times', (t) => {
  const a = run(steady.arrivals, 'local');
  const b = run(steady.arrivals, 'local');
  t.deepEqual(a.summary, b.summary);
  t.deepEqual(a.latencies, b.latencies);
  const c = run(steady.arrivals, 'local', LOCAL_POLICY, { seed: 2 });
  t.notDeepEqual(a.latencies, c.latencies);
});

test('validate: the status reads back as the ServiceStatus the service declares, with or without the autoscaler', (t) => {
  const inputs = {
    visible: 3,
    inFlight: 0,
    running: 0,
    desired: 0,
    lastScaleOut: null,
    lastScaleIn: null,
    idleSince: null,
    backlogSince: 1000,
  };
  const decision = {
    at: '2026-01-01T00:00:00.000Z',
    t: 1000,
    inputs,
    from: 0,
    to: 1,
    action: 'scale-out',
    rule: 'scale-from-zero',
    reason: 'r',
  } as const;
  const scaled: ServiceStatus = {
    queue: { visible: 3, inFlight: 1, sampledAt: '2026-01-01T00:00:01.000Z' },
    workers: { desired: 1, running: 0 },
    policy: { minCapacity: 0, maxCapacity: 2, periodSeconds: 1, targetBacklogPerInstance: 10 },
    decisions: [
      { ...decision, resize: { state: 'pending', attempts: 1 } },
      { ...decision, resize: { state: 'done', attempts: 1, ms: 2500 } },
      {
        ...decision,
        resize: { state: 'failed', attempts: 2, ms: 30, error: { name: 'Error', message: 'spawn failed' } },
      },
      { ...decision, resize: { state: 'superseded', attempts: 1, ms: 40, error: { message: 'retired' } } },
    ],
    runtime: { node: 'v24.0.0', workers: ['v24.0.0'] },
  };
  t.deepEqual(parseStatus(JSON.parse(JSON.stringify(scaled))), scaled);
  const fixed: ServiceStatus = {
    queue: { visible: 0, inFlight: 0 },
    workers: { desired: 2, running: 2 },
    decisions: [],
    runtime: { node: 'v24.0.0', workers: [] },
  };
  t.deepEqual(parseStatus(JSON.parse(JSON.stringify(fixed))), fixed);
  const { runtime: _runtime, ...noRuntime } = fixed;
  t.is(t.throws(() => parseStatus(noRuntime), { instanceOf: ValidateError }).code, 'SERVICE');
  const badRule = { ...scaled, decisions: [{ ...decision, rule: 'guess', resize: { state: 'pending', attempts: 1 } }] };
  t.regex(t.throws(() => parseStatus(badRule), { instanceOf: ValidateError }).message, /decisions\[0\]\.rule/);
});

test('percentile is nearest-rank', (t) => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  t.is(percentile(xs, 50), 50);
  t.is(percentile(xs, 95), 95);
  t.is(percentile(xs, 99), 99);
  t.is(percentile([7], 99), 7);
  t.is(percentile([1, 2, 3], 50), 2);
  t.is(percentile([10, 20, 30], 40), 20); // rank ceil(1.2) = 2
});

test('trace parsing: JSON forms, CSV with header and comments, and typed errors', (t) => {
  t.deepEqual(parseJsonTrace('[3, 1, 2]', 'x'), { name: 'x', description: '', arrivals: [1, 2, 3] });
  t.deepEqual(parseJsonTrace('{"name":"n","arrivals":[0.5]}', 'x'), { name: 'n', description: '', arrivals: [0.5] });
  t.deepEqual(parseCsvTrace('# c\narrival_seconds\n1\n\n0,extra\n', 'x').arrivals, [0, 1]);
  const bad = t.throws(() => parseJsonTrace('[1, -2]', 'x'), { instanceOf: ScalingError });
  t.is(bad.code, 'INVALID_TRACE');
  t.is(bad.context.index, 1);
  t.is(t.throws(() => parseCsvTrace('1\nabc\n', 'x'), { instanceOf: ScalingError }).code, 'INVALID_TRACE');
  t.is(t.throws(() => parseJsonTrace('[]', 'x'), { instanceOf: ScalingError }).code, 'INVALID_TRACE');
});

test('invalid environment values are typed errors naming the field', (t) => {
  const err = t.throws(() => run([0], 'local', LOCAL_POLICY, { batchSize: 11 }), { instanceOf: ScalingError });
  t.is(err.code, 'INVALID_SIMULATION');
  t.is(err.context.field, 'batchSize');
});

test('the CLI prints the summary and writes an SVG chart and a JSON report', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'scaling-sim-'));
  const out: string[] = [];
  const code = await simulateMain(
    ['--trace', new URL('burst-100.csv', TRACES).pathname, '--out', dir, '--mode', 'local'],
    {
      stdout: (s) => out.push(s),
      logger: silentLogger,
    },
  );
  t.is(code, 0);
  const text = out.join('\n');
  t.regex(text, /latency\s+p50 [\d.]+ s · p95 [\d.]+ s · p99 [\d.]+ s/);
  t.regex(text, /makespan\s+[\d.]+ s/);
  t.regex(text, /instance-min\s+[\d.]+/);
  t.regex(text, /peak queue\s+100 visible/);
  const svg = await readFile(join(dir, 'burst-100-local.svg'), 'utf8');
  t.true(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  t.true(svg.trimEnd().endsWith('</svg>'));
  t.regex(svg, /<path d="M[\d.,HVM]+"/);
  const report = JSON.parse(await readFile(join(dir, 'burst-100-local.json'), 'utf8')) as {
    summary: { served: number };
  };
  t.is(report.summary.served, 100);
});

test('the CLI validates its options and the policy file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'scaling-sim-'));
  const policyFile = join(dir, 'policy.json');
  await writeFile(policyFile, JSON.stringify({ scaleToZero: { emptyPeriod: 3 } }));
  const errors: string[] = [];
  const deps = { stdout: () => {}, stderr: (s: string) => errors.push(s), logger: silentLogger };
  t.is(await simulateMain(['--mode', 'alarms'], deps), 2);
  t.is(await simulateMain(['--trace', 'x.csv', '--mode', 'cloud'], deps), 2);
  t.is(
    await simulateMain(
      ['--trace', new URL('steady.json', TRACES).pathname, '--policy', policyFile, '--out', dir],
      deps,
    ),
    1,
  );
  t.true(errors.some((e) => e.includes('scaleToZero.emptyPeriod')));
});
