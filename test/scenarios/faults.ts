/**
 * Fault injection against the real service: workers killed with SIGKILL or stopped with SIGTERM in
 * the middle of a load, the endpoint frozen (and, where it keeps its data, killed). Every accepted
 * image must be answered, to its own client, exactly once. Registered by `reliability.test.ts`
 * (embedded endpoint) and `external-endpoint.test.ts` (an endpoint reached through the AWS variables).
 */
import test from 'ava';
import type { Service } from '../../service/service.js';
import { type GroundTruth, readGroundTruth } from '../helpers/model-fixtures.js';
import { poolOf, postClassic, shortLabel, waitFor } from '../helpers/service.js';

export interface FaultTarget {
  readonly service: Service;
  /** The endpoint's process id now (it may change when the endpoint is restarted). */
  endpointPid(): number | undefined;
}

export interface FaultOptions {
  /** The endpoint keeps its state through a SIGKILL and the service starts it again. */
  readonly endpointSurvivesKill: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function faultScenarios(mode: string, options: FaultOptions, start: () => Promise<FaultTarget>): void {
  let target: FaultTarget;
  let photos: GroundTruth[];

  test.before(async () => {
    photos = await readGroundTruth();
    target = await start();
  });

  test.after.always(async () => {
    await target?.service.stop();
  });

  /**
   * A classic upload from a client that honours load shedding: a `503 OVERLOADED` is sent again
   * after its Retry-After, as the answer asks. (Nothing refused was accepted, so nothing refused
   * can be lost; on a busy machine the first answers of a burst can be slow enough for the service
   * to refuse part of it, and the faults below are about what was accepted.)
   */
  async function postHonouringRetryAfter(url: string, path: string, name: string, refusals: { count: number }) {
    for (let attempt = 0; ; attempt++) {
      const answer = await postClassic(url, path, name);
      if (answer.status !== 503 || attempt === 20) return answer;
      const { error } = JSON.parse(answer.body) as { error: { code: string; retryAfterSeconds?: number } };
      if (error.code !== 'OVERLOADED') return answer;
      refusals.count++;
      await sleep((error.retryAfterSeconds ?? 1) * 1000);
    }
  }

  /** Uploads `count` photos at once under unique names; runs `disturb` once `afterAnswers` answers came back. */
  async function loadWith(count: number, afterAnswers: number, disturb: () => Promise<void> | void) {
    const { service } = target;
    const refusals = { count: 0 };
    const sample = Array.from({ length: count }, (_, i) => photos[i % photos.length]!);
    const names = sample.map((_, i) => `img-${i}-${Math.random().toString(36).slice(2, 8)}`);
    let answered = 0;
    let disturbed: Promise<void> | undefined;
    const latencies: number[] = [];
    const answers = await Promise.all(
      sample.map(async (photo, i) => {
        const started = performance.now();
        const answer = await postHonouringRetryAfter(service.web.url, photo.path, `${names[i]}.jpg`, refusals);
        latencies.push(performance.now() - started);
        if (++answered === afterAnswers) disturbed = Promise.resolve(disturb());
        return answer;
      }),
    );
    await disturbed;
    latencies.sort((a, b) => a - b);
    const at = (q: number) =>
      (latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)]! / 1000).toFixed(1);
    const ok = answers.filter((a) => a.status === 200);
    const own = answers.filter((a, i) => a.body.startsWith(`${names[i]},`));
    const correct = answers.filter((a, i) => a.body === `${names[i]},${shortLabel(sample[i]!.label)}`);
    const failures = JSON.stringify(answers.filter((a) => a.status !== 200).slice(0, 3));
    return {
      ok: ok.length,
      own: own.length,
      correct: correct.length,
      failures,
      refused: refusals.count,
      latency: `p50 ${at(0.5)} s, p99 ${at(0.99)} s, max ${at(1)} s`,
    };
  }

  test.serial(`${mode}: 200 uploads with no fault (the latency the faults below are compared with)`, async (t) => {
    const result = await loadWith(200, 0, () => undefined);
    t.is(result.ok, 200, result.failures);
    t.is(result.own, 200);
    t.log(
      `sent 200, answered ${result.ok}, own ${result.own}, refused and sent again ${result.refused}, latency ${result.latency}`,
    );
  });

  test.serial(
    `${mode}: kill -9 of a worker in the middle of 200 uploads: all 200 answered, each to its own client`,
    async (t) => {
      const { service } = target;
      const unmatchedBefore = service.submitter.unmatchedAnswers;
      const killed: number[] = [];
      const result = await loadWith(200, 40, () => {
        const pid = poolOf(service).pids[0]!;
        killed.push(pid);
        process.kill(pid, 'SIGKILL');
      });
      t.is(killed.length, 1);
      t.is(result.ok, 200, result.failures);
      t.is(result.own, 200);
      // Ownership is the point here (names are unique); accuracy is checked over the whole sample in e2e.
      t.true(result.correct / 200 >= 0.6, `${result.correct}/200 correct`);
      t.log(
        `sent 200, answered ${result.ok}, own ${result.own}, correct ${result.correct}, latency ${result.latency}, late duplicate answers dropped by the web tier: ${service.submitter.unmatchedAnswers - unmatchedBefore}`,
      );
      // The pool replaced the killed worker.
      await waitFor(() => poolOf(service).running === 2, 60_000);
      t.false(poolOf(service).pids.includes(killed[0]!));
    },
  );

  test.serial(`${mode}: SIGTERM to a worker during a load: it finishes its messages, nothing is lost`, async (t) => {
    const { service } = target;
    const result = await loadWith(80, 10, () => {
      process.kill(poolOf(service).pids[0]!, 'SIGTERM');
    });
    t.is(result.ok, 80, result.failures);
    t.is(result.own, 80);
    await waitFor(() => poolOf(service).running === 2, 60_000);
  });

  test.serial(
    `${mode}: the endpoint frozen for 10 s during a load: requests wait it out, nothing is lost`,
    async (t) => {
      const pid = target.endpointPid()!;
      t.truthy(pid);
      const result = await loadWith(60, 10, async () => {
        process.kill(pid, 'SIGSTOP');
        await sleep(10_000);
        process.kill(pid, 'SIGCONT');
      });
      t.is(result.ok, 60, result.failures);
      t.is(result.own, 60);
      t.log(`sent 60, answered ${result.ok}, own ${result.own}, latency ${result.latency}`);
    },
  );

  if (!options.endpointSurvivesKill) return;

  test.serial(
    `${mode}: the endpoint killed with SIGKILL during a load: it is started again on its data, nothing is lost`,
    async (t) => {
      const pid = target.endpointPid()!;
      t.truthy(pid);
      const result = await loadWith(60, 10, () => {
        process.kill(pid, 'SIGKILL');
      });
      t.is(result.ok, 60, result.failures);
      t.is(result.own, 60);
      t.not(target.endpointPid(), pid);
      t.log(`sent 60, answered ${result.ok}, own ${result.own}, latency ${result.latency}`);
    },
  );
}
