/**
 * Descriptive statistics for samples of numbers (latencies, throughputs, ...). No I/O, no units:
 * callers decide what the numbers mean.
 *
 * Percentiles default to the nearest-rank method — the p-th percentile is a value that was actually
 * observed, the smallest one with at least p% of the sample at or below it (p50 of [1, 2, 3, 4] is
 * 2, p99 of 100 samples is the 99th smallest). `linear` interpolates between closest ranks instead
 * (the "R-7" definition of NumPy's and Excel's default): p50 of [1, 2, 3, 4] is 2.5.
 */

export type PercentileMethod = 'nearest-rank' | 'linear';

export interface PercentileOptions {
  /** Default `nearest-rank`. */
  readonly method?: PercentileMethod;
  /** The values are already sorted ascending: skip the copy and sort. */
  readonly sorted?: boolean;
}

/** Sample summary. `mean` is the arithmetic mean; the percentiles follow `PercentileOptions`. */
export interface Distribution {
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p95: number;
  readonly p99: number;
}

/** A sorted copy (ascending, numerically); throws on NaN, which has no place in an order. */
export function sortedCopy(values: Iterable<number>): number[] {
  const copy = Array.from(values);
  for (const value of copy) {
    if (Number.isNaN(value)) throw new RangeError('cannot order a sample that contains NaN');
  }
  return copy.sort((a, b) => a - b);
}

function checkP(p: number): void {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be in 0..100, got ${p}`);
}

function fromSorted(sorted: readonly number[], p: number, method: PercentileMethod): number {
  const n = sorted.length;
  if (method === 'linear') {
    const rank = (p / 100) * (n - 1);
    const lo = Math.floor(rank);
    const hi = Math.ceil(rank);
    return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
  }
  // Nearest rank: the ceil(p/100 * n)-th smallest value (1-based), the minimum for p = 0.
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sorted[Math.min(rank, n) - 1]!;
}

/** The p-th percentile (0 <= p <= 100) of a non-empty sample. */
export function percentile(values: readonly number[], p: number, options: PercentileOptions = {}): number {
  return percentiles(values, [p], options)[0]!;
}

/** Several percentiles of one sample, in the order asked, sorting only once. */
export function percentiles(
  values: readonly number[],
  ps: readonly number[],
  options: PercentileOptions = {},
): number[] {
  if (values.length === 0) throw new RangeError('percentile of an empty sample');
  ps.forEach(checkP);
  const sorted = options.sorted ? values : sortedCopy(values);
  return ps.map((p) => fromSorted(sorted, p, options.method ?? 'nearest-rank'));
}

/** count, min, max, mean, p50/p90/p95/p99 — or undefined for an empty sample. */
export function describe(values: readonly number[], options: PercentileOptions = {}): Distribution | undefined {
  if (values.length === 0) return undefined;
  const sorted = options.sorted ? values : sortedCopy(values);
  const [p50, p90, p95, p99] = percentiles(sorted, [50, 90, 95, 99], { ...options, sorted: true }) as [
    number,
    number,
    number,
    number,
  ];
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    count: sorted.length,
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    mean: sum / sorted.length,
    p50,
    p90,
    p95,
    p99,
  };
}
