/** The comparison as markdown (the main table, then what the simulator was given, then the workers). */
import { type Comparison, errorPercent } from './compare.js';
import type { Spread } from './overhead.js';

/** Seconds, with two decimals below 10 s so that sub-second latencies stay readable. */
const s = (x: number): string => `${x.toFixed(Math.abs(x) < 10 ? 2 : 1)} s`;
const pct = (p: number, m: number): string => {
  const e = errorPercent(p, m);
  return `${e >= 0 ? '+' : ''}${e.toFixed(1)} %`;
};
const ms = (x: number): string => `${(x * 1000).toFixed(0)} ms`;
const opt = (x: number | undefined): string => (x === undefined ? '—' : s(x));

export function formatMarkdown(rows: readonly Comparison[]): string {
  const lines = [
    '| trace | predicted makespan | measured makespan | error % | predicted p95 | measured p95 | error % |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const name = `${r.trace} (×${r.scale}, ${r.answered}/${r.requests})`;
      const p = r.predicted;
      const m = r.measured;
      return `| ${name} | ${s(p.makespanSeconds)} | ${s(m.makespanSeconds)} | ${pct(p.makespanSeconds, m.makespanSeconds)} | ${s(p.p95Seconds)} | ${s(m.p95Seconds)} | ${pct(p.p95Seconds, m.p95Seconds)} |`;
    }),
    '',
    'Simulator inputs, measured in the same run (error % = (predicted − measured) / measured):',
    '',
    '| trace | worker start (each, ×started at once) | per image | per batch | batch ≤ | batches (size min/mean/max) | fit | workers (classifying / started) | cold start | cold batches | tick phase |',
    '|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const c = r.calibration;
      const b = c.basis.batchSizes;
      const boots = c.basis.bootsSeconds.map((x, i) => `${x.toFixed(2)}×${c.basis.bootsAtOnce[i] ?? '?'}`).join(', ');
      return (
        `| ${r.trace} | ${c.bootSeconds.toFixed(2)} s (${boots}) | ` +
        `${(c.perImageSeconds * 1000).toFixed(1)} ms | ${(c.batchOverheadSeconds * 1000).toFixed(0)} ms | ${c.batchSize} | ` +
        `${c.basis.batches} (${b.min}/${b.mean.toFixed(1)}/${b.max}) | ${c.basis.fit} | ${c.basis.workers} / ${c.basis.startedWorkers} | ` +
        `${c.coldStartSeconds.toFixed(2)} s × ${c.coldStartFactor.toFixed(1)} | ${c.basis.coldBatches} | ${c.tickPhaseSeconds.toFixed(2)} s |`
      );
    }),
    '',
    'Time outside the queue and the slot, p50 / p95: the requests that ran without waiting (the sample) and all answered ones; the simulator draws one (ingest, deliver) pair of the sample per request, or, when fewer than half ran without waiting, one ingest of all answered requests per request and the median deliver of all:',
    '',
    '| trace | simulated | ran without waiting | ingest | deliver | ingest–deliver rank corr. | all: ingest | of which before the server (p50) | all: deliver | of which worker path (p50) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const o = r.calibration.overhead;
      const spread = (x: Spread | undefined) => (x === undefined ? '—' : `${ms(x.p50)} / ${ms(x.p95)}`);
      const corr = o.sampleRankCorrelation === undefined ? '—' : o.sampleRankCorrelation.toFixed(2);
      return (
        `| ${r.trace} | ${o.simulated === 'sample' ? `sample of ${o.sample.length}` : `ingest of all ${o.ingest.length}, median deliver`} | ${o.sample.length} of ${o.answered.requests} | ` +
        `${spread(o.sampleSpread?.ingestSeconds)} | ${spread(o.sampleSpread?.deliverSeconds)} | ${corr} | ` +
        `${spread(o.answered.ingestSeconds)} | ${ms(o.beforeServerSeconds)} | ${spread(o.answered.deliverSeconds)} | ${ms(o.workerPathSeconds)} |`
      );
    }),
    '',
    'Slowest requests, k-th slowest latency predicted / measured:',
    '',
    ...rows.map(
      (r) =>
        `- ${r.trace}: ${r.tail.map((t) => `#${t.rank}${t.p95 ? ' (p95)' : ''} ${s(t.predicted)} / ${s(t.measured)}`).join(' · ')}`,
    ),
    '',
    'Workers until the last answer, predicted / measured:',
    '',
    '| trace | peak workers | first worker in service | scale-outs | scale-ins | p50 latency |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const p = r.predicted;
      const m = r.measured;
      return (
        `| ${r.trace} | ${p.peakWorkers} / ${m.peakWorkers} | ${opt(p.firstInServiceSeconds)} / ${opt(m.firstInServiceSeconds)} | ` +
        `${p.scaleOuts} / ${m.scaleOuts} | ${p.scaleIns} / ${m.scaleIns} | ${s(p.p50Seconds)} / ${s(m.p50Seconds)} |`
      );
    }),
  ];
  return lines.join('\n');
}

/** JSON-safe summary (no timelines). */
export function summaryJson(rows: readonly Comparison[]): unknown {
  return rows.map((r) => ({
    trace: r.trace,
    scale: r.scale,
    requests: r.requests,
    answered: r.answered,
    predicted: r.predicted,
    measured: r.measured,
    errorPercent: {
      makespan: errorPercent(r.predicted.makespanSeconds, r.measured.makespanSeconds),
      p95: errorPercent(r.predicted.p95Seconds, r.measured.p95Seconds),
    },
    // The sample's pairs are in `env` when simulated; the measurement file has every request anyway.
    calibration: {
      ...r.calibration,
      overhead: { ...r.calibration.overhead, sample: undefined, sampleSize: r.calibration.overhead.sample.length },
    },
    env: r.env,
    tail: r.tail,
  }));
}
