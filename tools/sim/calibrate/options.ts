/** Command line of `npm run scaling:validate`, parsed and checked once. */
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFlags } from '../../../scaling/core/cli.js';
import { SAMPLE_DIR } from '../../bench/photos.js';
import { ValidateError } from './errors.js';

export const VALIDATE_USAGE = `Usage: npm run scaling:validate -- [options]

Replays arrival traces against the real service (npm start's entry point, local autoscaler on),
then runs the simulator in local mode with the same policy and with the service time, worker
start time, cold start and per-request overhead measured in that run, and prints predicted vs
measured makespan and p95 latency.

  --trace FILE        a trace (repeatable; default: every file in tools/sim/traces/)
  --scale [NAME=]F    multiply the arrival times of trace NAME (or of all) by F
                      (repeatable; default: steady=0.05, i.e. 10 req/s for 90 s; others 1)
  --window S          replay only the arrivals within the first S seconds after scaling (default 100)
  --min N  --max N    WORKERS_MIN / WORKERS_MAX of the service (default 0 and 2)
  --policy FILE       JSON scaling policy over LOCAL_POLICY (passed as SCALING_POLICY, and simulated)
  --timeout S         give up on a trace after S seconds (default 300)
  --photos DIR        photos with ground-truth.csv (default ../shared/datasets/imagenet-sample-250)
  --out DIR           where to write <trace>.json with every measurement (default .tmp/scaling-validate)
  --json              print the comparison as JSON instead of markdown
  -h, --help          this text`;

export interface ValidateOptions {
  readonly help: boolean;
  readonly traces: readonly string[];
  /** Time scale per trace name; `*` applies to traces not named. */
  readonly scales: ReadonlyMap<string, number>;
  readonly windowSeconds: number;
  readonly minWorkers: number;
  readonly maxWorkers: number;
  readonly policyFile: string | undefined;
  readonly timeoutSeconds: number;
  readonly photosDir: string;
  readonly outDir: string;
  readonly json: boolean;
}

const TRACES_DIR = fileURLToPath(new URL('../traces/', import.meta.url));
const DEFAULT_SCALES: ReadonlyMap<string, number> = new Map([['steady', 0.05]]);

const bad = (option: string, reason: string, value: unknown): ValidateError =>
  new ValidateError('INVALID_OPTIONS', `--${option}: ${reason} (got ${JSON.stringify(value)})`, {
    option: `--${option}`,
    value,
  });

function positive(option: string, raw: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n <= 0) throw bad(option, 'must be a number > 0', raw);
  return n;
}

function count(option: string, raw: string, min: number): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < min || n > 256)
    throw bad(option, `must be an integer in ${min}..256`, raw);
  return n;
}

/** Trace name as `loadTrace` gives it for the usual files: the file name without extension. */
export function scaleFor(options: Pick<ValidateOptions, 'scales'>, traceName: string): number {
  return options.scales.get(traceName) ?? options.scales.get('*') ?? DEFAULT_SCALES.get(traceName) ?? 1;
}

export function parseValidateArgs(argv: readonly string[]): ValidateOptions {
  const v = parseFlags(
    argv,
    {
      trace: { type: 'string', multiple: true },
      scale: { type: 'string', multiple: true },
      window: { type: 'string', default: '100' },
      min: { type: 'string', default: '0' },
      max: { type: 'string', default: '2' },
      policy: { type: 'string' },
      timeout: { type: 'string', default: '300' },
      photos: { type: 'string', default: SAMPLE_DIR },
      out: { type: 'string', default: '.tmp/scaling-validate' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    (message, cause) => new ValidateError('INVALID_OPTIONS', message, { argv: [...argv] }, { cause }),
  );
  const scales = new Map<string, number>();
  for (const raw of v.scale ?? []) {
    const eq = raw.lastIndexOf('=');
    const name = eq >= 0 ? raw.slice(0, eq).trim() : '*';
    if (name === '') throw bad('scale', 'must be F or NAME=F', raw);
    scales.set(name, positive('scale', eq >= 0 ? raw.slice(eq + 1) : raw));
  }
  const minWorkers = count('min', v.min, 0);
  const maxWorkers = count('max', v.max, 1);
  if (minWorkers > maxWorkers) throw bad('min', `must be at most --max (${maxWorkers})`, v.min);
  let traces = (v.trace ?? []).map((p) => resolve(p));
  if (traces.length === 0) {
    traces = readdirSync(TRACES_DIR)
      .filter((f) => /\.(json|csv)$/i.test(f))
      .sort()
      .map((f) => join(TRACES_DIR, f));
    if (traces.length === 0) throw bad('trace', `no trace given and none found in ${TRACES_DIR}`, []);
  }
  return {
    help: v.help === true,
    traces,
    scales,
    windowSeconds: positive('window', v.window),
    minWorkers,
    maxWorkers,
    policyFile: v.policy === undefined ? undefined : resolve(v.policy),
    timeoutSeconds: positive('timeout', v.timeout),
    photosDir: resolve(v.photos),
    outDir: resolve(v.out),
    json: v.json === true,
  };
}
