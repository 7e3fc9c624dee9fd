/** The comparison as markdown (the main table, then what the simulator was given, then the workers). */
import { errorPercent, type Comparison } from './compare.js';

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
    '| trace | worker start (each, ×started at once) | per image | per batch | batch ≤ | batches (size min/mean/max) | fit | cold start | cold batches (ambiguous) | ingest p50 → sim (p95) | of which before the server | deliver p50 → sim (p95) | of which worker path | overhead basis |',
    '|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const c = r.calibration;
      const b = c.basis.batchSizes;
      const boots = c.basis.bootsSeconds.map((x, i) => `${x.toFixed(2)}×${c.basis.bootsAtOnce[i] ?? '?'}`).join(', ');
      return (
        `| ${r.trace} | ${c.bootSeconds.toFixed(2)} s (${boots}) | ` +
        `${(c.perImageSeconds * 1000).toFixed(1)} ms | ${(c.batchOverheadSeconds * 1000).toFixed(0)} ms | ${c.batchSize} | ` +
        `${c.basis.batches} (${b.min}/${b.mean.toFixed(1)}/${b.max}) | ${c.basis.fit} | ` +
        `${c.coldStartSeconds.toFixed(2)} s × ${c.coldStartFactor.toFixed(1)} | ${c.basis.coldBatches} (${c.basis.ambiguousBatches}) | ` +
        `${ms(c.ingestSeconds.p50)} (${ms(c.ingestSeconds.p95)}) | ${ms(c.beforeServerSeconds)} | ` +
        `${ms(c.deliverSeconds.p50)} (${ms(c.deliverSeconds.p95)}) | ${ms(c.workerPathSeconds)} | ${c.basis.overheadRequests} requests |`
      );
    }),
    '',
    'Slowest requests, k-th slowest latency predicted / measured:',
    '',
    ...rows.map((r) => `- ${r.trace}: ${r.tail.map((t) => `#${t.rank}${t.p95 ? ' (p95)' : ''} ${s(t.predicted)} / ${s(t.measured)}`).join(' · ')}`),
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
    calibration: r.calibration,
    env: r.env,
    tail: r.tail,
  }));
}
