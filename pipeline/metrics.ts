/**
 * The service's numbers in Prometheus' text format (prom-client). Each process keeps its own
 * registry: the web tier counts images by outcome and model, errors by code, every stage's time
 * (from the timings each answer carries, worker stages included), and reads the queue depth, the
 * workers and the scaling decisions at scrape time; a worker counts what it classified and its
 * inference batch sizes. `GET /metrics` on the web tier asks each local worker process for its
 * registry over IPC and merges them (`AggregatorRegistry.aggregate`): counters and histograms add
 * up across workers.
 */
import {
  AggregatorRegistry,
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client';
import type { Timings } from './contract/messages.js';

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** Stage timings as the answers report them, in milliseconds. */
const STAGES = [
  'upload',
  's3Put',
  'enqueue',
  'queueWait',
  's3Get',
  'decode',
  'infer',
  'persist',
  'total',
] as const satisfies readonly (keyof Timings)[];
/** From a few ms (a stage) to a couple of minutes (a request that waited through a burst). */
const MS_BUCKETS = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000];

/** The web tier's metrics. */
export class WebMetrics {
  readonly registry = new Registry();
  readonly images: Counter<'outcome' | 'model'>;
  readonly errors: Counter<'code'>;
  readonly stages: Histogram<'stage'>;

  constructor(collect: {
    queue(): Promise<{ visible: number; inFlight: number }>;
    workers(): { desired: number; running: number };
    decisions(): readonly { t: number; rule: string; action: string }[];
  }) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry, prefix: 'eir_web_' });
    this.images = new Counter({
      name: 'eir_images_total',
      help: 'Images submitted, by outcome (classified, failed, pending: answered later, refused: not accepted) and model',
      labelNames: ['outcome', 'model'],
      registers: [registry],
    });
    this.errors = new Counter({
      name: 'eir_http_errors_total',
      help: 'HTTP error answers by error code',
      labelNames: ['code'],
      registers: [registry],
    });
    this.stages = new Histogram({
      name: 'eir_stage_duration_ms',
      help: 'Milliseconds per pipeline stage of answered images (infer: the whole batch that held the image)',
      labelNames: ['stage'],
      buckets: MS_BUCKETS,
      registers: [registry],
    });
    new Gauge({
      name: 'eir_queue_messages',
      help: 'Request queue depth: visible (waiting) and in flight (taken by a worker)',
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        const depth = await collect.queue();
        this.set({ state: 'visible' }, depth.visible);
        this.set({ state: 'in_flight' }, depth.inFlight);
      },
    });
    new Gauge({
      name: 'eir_workers',
      help: 'App-tier workers: desired and running',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const workers = collect.workers();
        this.set({ state: 'desired' }, workers.desired);
        this.set({ state: 'running' }, workers.running);
      },
    });
    // The controller keeps a window of its recent decisions; each is counted once, by its time.
    let countedUpTo = -Infinity;
    const decisions = new Counter({
      name: 'eir_scaling_decisions_total',
      help: 'Scaling decisions that changed the desired count, by rule and action',
      labelNames: ['rule', 'action'],
      registers: [registry],
    });
    this.countDecisions = () => {
      for (const d of collect.decisions()) {
        if (d.t <= countedUpTo) continue;
        decisions.inc({ rule: d.rule, action: d.action });
        countedUpTo = d.t;
      }
    };
  }

  /** Folds decisions made since the last call into the counter (called at scrape time). */
  readonly countDecisions: () => void;

  /** An answered image: its outcome, and each stage's time. */
  answered(outcome: 'classified' | 'failed' | 'pending' | 'refused', model: string, timings?: Timings): void {
    this.images.inc({ outcome, model });
    if (!timings) return;
    for (const stage of STAGES) {
      const ms = timings[stage];
      if (typeof ms === 'number' && Number.isFinite(ms)) this.stages.observe({ stage }, ms);
    }
  }

  /** This process's metrics merged with the workers' (as `getMetricsAsJSON` gave them). */
  async render(workers: readonly MetricsJson[]): Promise<{ contentType: string; body: string }> {
    this.countDecisions();
    const merged = AggregatorRegistry.aggregate([await this.registry.getMetricsAsJSON(), ...workers]);
    return { contentType: merged.contentType, body: await merged.metrics() };
  }
}

/** A worker's metrics: what it classified, and its inference batches. */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly images: Counter<'outcome' | 'model'>;
  readonly batchSize: Histogram;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'eir_worker_' });
    this.images = new Counter({
      name: 'eir_worker_images_total',
      help: 'Images a worker finished, by outcome (classified, failed, retried) and model',
      labelNames: ['outcome', 'model'],
      registers: [this.registry],
    });
    this.batchSize = new Histogram({
      name: 'eir_batch_size',
      help: 'Images per inference batch',
      buckets: [1, 2, 3, 4, 6, 8, 12, 16, 32],
      registers: [this.registry],
    });
  }
}
