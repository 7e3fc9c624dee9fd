/**
 * Hand-written SVG chart of a simulation: queue depth (visible, in flight; left axis) and
 * instances (capacity, in service; right axis) over time, as step lines. No dependencies.
 */

import type { ScalingAction, SimSummary, TimelinePoint } from './simulator.js';

export interface ChartInput {
  readonly title: string;
  readonly timeline: readonly TimelinePoint[];
  readonly actions: readonly ScalingAction[];
  readonly summary: SimSummary;
  readonly maxCapacity: number;
}

const W = 960;
const H = 440;
const M = { left: 64, right: 64, top: 56, bottom: 72 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;

const COLORS = {
  visible: '#2563eb',
  inFlight: '#93c5fd',
  capacity: '#ea580c',
  inService: '#16a34a',
  grid: '#e5e7eb',
  text: '#111827',
};

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** 1, 2, 5 × 10^k step giving about `target` ticks over [0, max]. */
export function niceStep(max: number, target = 6): number {
  if (max <= 0) return 1;
  const raw = max / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const m = raw / pow;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * pow;
}

const r1 = (n: number): string => (Math.round(n * 10) / 10).toString();

/** Reduces the timeline to at most one point per horizontal pixel, keeping each column's maxima. */
function columns(timeline: readonly TimelinePoint[], end: number): TimelinePoint[] {
  if (timeline.length <= PW) return [...timeline];
  const out: TimelinePoint[] = [];
  let current: TimelinePoint | undefined;
  let col = -1;
  for (const p of timeline) {
    const c = Math.floor((p.t / Math.max(end, 1e-9)) * PW);
    if (c !== col) {
      if (current) out.push(current);
      current = { ...p };
      col = c;
    } else if (current) {
      current = {
        t: current.t,
        visible: Math.max(current.visible, p.visible),
        inFlight: Math.max(current.inFlight, p.inFlight),
        inService: Math.max(current.inService, p.inService),
        capacity: Math.max(current.capacity, p.capacity),
      };
    }
  }
  if (current) out.push(current);
  return out;
}

function stepPath(
  points: readonly TimelinePoint[],
  x: (t: number) => number,
  y: (p: TimelinePoint) => number,
  end: number,
): string {
  const first = points[0];
  if (!first) return '';
  let d = `M${r1(x(first.t))},${r1(y(first))}`;
  for (let i = 1; i < points.length; i++) {
    const p = points[i];
    if (!p) continue;
    d += `H${r1(x(p.t))}V${r1(y(p))}`;
  }
  return `${d}H${r1(x(end))}`;
}

export function renderChart(input: ChartInput): string {
  const end = Math.max(input.summary.endSeconds, input.timeline[input.timeline.length - 1]?.t ?? 0, 1);
  const pts = columns(input.timeline, end);
  const maxQueue = Math.max(1, ...pts.map((p) => Math.max(p.visible, p.inFlight)));
  const maxInst = Math.max(1, input.maxCapacity, ...pts.map((p) => p.capacity));
  const qStep = niceStep(maxQueue, 5);
  const qTop = Math.ceil(maxQueue / qStep) * qStep;
  const iStep = Math.max(1, Math.ceil(niceStep(maxInst, 5)));
  const iTop = Math.ceil(maxInst / iStep) * iStep;
  const minutes = end > 600;
  const tStep = niceStep(minutes ? end / 60 : end, 8) * (minutes ? 60 : 1);

  const x = (t: number): number => M.left + (t / end) * PW;
  const yq = (v: number): number => M.top + PH - (v / qTop) * PH;
  const yi = (v: number): number => M.top + PH - (v / iTop) * PH;

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${M.left}" y="24" font-size="16" font-weight="600" fill="${COLORS.text}">${esc(input.title)}</text>`,
  );
  const s = input.summary;
  const sub =
    `p50 ${s.latency.p50.toFixed(1)} s · p95 ${s.latency.p95.toFixed(1)} s · p99 ${s.latency.p99.toFixed(1)} s · ` +
    `makespan ${s.makespanSeconds.toFixed(0)} s · ${s.instanceMinutes.toFixed(1)} instance-min · peak queue ${s.peakQueueDepth}`;
  parts.push(`<text x="${M.left}" y="42" fill="#4b5563">${esc(sub)}</text>`);

  // Grid and axes
  for (let v = 0; v <= qTop + 1e-9; v += qStep) {
    parts.push(
      `<line x1="${M.left}" x2="${M.left + PW}" y1="${r1(yq(v))}" y2="${r1(yq(v))}" stroke="${COLORS.grid}"/>`,
      `<text x="${M.left - 8}" y="${r1(yq(v) + 4)}" text-anchor="end" fill="${COLORS.visible}">${r1(v)}</text>`,
    );
  }
  for (let v = 0; v <= iTop + 1e-9; v += iStep) {
    parts.push(`<text x="${M.left + PW + 8}" y="${r1(yi(v) + 4)}" fill="${COLORS.capacity}">${v}</text>`);
  }
  for (let t = 0; t <= end + 1e-9; t += tStep) {
    parts.push(
      `<line x1="${r1(x(t))}" x2="${r1(x(t))}" y1="${M.top + PH}" y2="${M.top + PH + 5}" stroke="#6b7280"/>`,
      `<text x="${r1(x(t))}" y="${M.top + PH + 18}" text-anchor="middle" fill="#374151">${r1(minutes ? t / 60 : t)}</text>`,
    );
  }
  parts.push(
    `<rect x="${M.left}" y="${M.top}" width="${PW}" height="${PH}" fill="none" stroke="#9ca3af"/>`,
    `<text x="${M.left + PW / 2}" y="${M.top + PH + 36}" text-anchor="middle" fill="#374151">time (${minutes ? 'min' : 's'})</text>`,
    `<text transform="translate(18 ${M.top + PH / 2}) rotate(-90)" text-anchor="middle" fill="${COLORS.visible}">messages</text>`,
    `<text transform="translate(${W - 16} ${M.top + PH / 2}) rotate(90)" text-anchor="middle" fill="${COLORS.capacity}">instances</text>`,
  );

  // Scaling actions as faint vertical markers
  for (const a of input.actions) {
    parts.push(
      `<line x1="${r1(x(a.t))}" x2="${r1(x(a.t))}" y1="${M.top}" y2="${M.top + PH}" stroke="${COLORS.capacity}" stroke-opacity="0.25" stroke-dasharray="2,3"><title>${esc(
        `t=${a.t}s ${a.from}→${a.to} (${a.rule}): ${a.reason}`,
      )}</title></line>`,
    );
  }

  // Series
  const series: [string, string, (p: TimelinePoint) => number, string][] = [
    ['in flight', COLORS.inFlight, (p) => yq(p.inFlight), ''],
    ['visible (queue depth)', COLORS.visible, (p) => yq(p.visible), ''],
    ['capacity (desired)', COLORS.capacity, (p) => yi(p.capacity), ''],
    ['in service', COLORS.inService, (p) => yi(p.inService), ' stroke-dasharray="6,3"'],
  ];
  for (const [, color, y, extra] of series) {
    parts.push(`<path d="${stepPath(pts, x, y, end)}" fill="none" stroke="${color}" stroke-width="2"${extra}/>`);
  }

  // Legend
  series.forEach(([label, color, , extra], i) => {
    const lx = M.left + i * 200;
    const ly = H - 16;
    parts.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"${extra}/>`,
      `<text x="${lx + 30}" y="${ly}" fill="${COLORS.text}">${esc(label)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
