/** Every trace in turn: measure on the real service, then simulate with what was measured. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../../lib/log.js';
import {
  LOCAL_POLICY,
  type ScalingPolicy,
  targetBacklogPerInstance,
  validatePolicy,
} from '../../../scaling/core/policy.js';
import { loadPolicy } from '../../../scaling/core/policy-file.js';
import { readPhotos } from '../../bench/photos.js';
import { loadTrace } from '../trace.js';
import { type Comparison, compare } from './compare.js';
import { ValidateError } from './errors.js';
import { measureTrace } from './measure.js';
import { scaleFor, type ValidateOptions } from './options.js';
import { summaryJson } from './report.js';

export interface ValidationRun {
  readonly rows: readonly Comparison[];
  readonly failures: readonly { readonly trace: string; readonly error: unknown }[];
}

/** The policy `npm start` gives the local autoscaler for these bounds (service/service.ts). */
export async function servicePolicy(
  options: Pick<ValidateOptions, 'minWorkers' | 'maxWorkers' | 'policyFile'>,
): Promise<ScalingPolicy> {
  const base: ScalingPolicy = { ...LOCAL_POLICY, minCapacity: options.minWorkers, maxCapacity: options.maxWorkers };
  return options.policyFile ? loadPolicy(options.policyFile, base) : validatePolicy(base);
}

/** Arrivals × scale, keeping those within `windowSeconds` of the first. */
export function scaledArrivals(arrivals: readonly number[], scale: number, windowSeconds: number): number[] {
  const scaled = arrivals.map((a) => a * scale);
  const first = Math.min(...scaled);
  return scaled.filter((a) => a - first < windowSeconds);
}

export async function runValidation(options: ValidateOptions, log: Logger): Promise<ValidationRun> {
  const policy = await servicePolicy(options);
  const target = targetBacklogPerInstance(policy);
  const photos = await readPhotos(options.photosDir);
  if (photos.length === 0)
    throw new ValidateError('INVALID_OPTIONS', `no photos listed in ${options.photosDir}/ground-truth.csv`, {
      option: '--photos',
    });
  await mkdir(options.outDir, { recursive: true });
  const rows: Comparison[] = [];
  const failures: { trace: string; error: unknown }[] = [];
  for (const path of options.traces) {
    let name = path;
    try {
      const trace = await loadTrace(path);
      name = trace.name;
      if (!('arrivals' in trace)) {
        log.warn('trace skipped: closed-loop clients are simulated only, the replay sends fixed arrival times', {
          trace: trace.name,
        });
        continue;
      }
      if (trace.replay === false) {
        log.warn('trace skipped: it says it is simulated only (too many requests to replay on one machine)', {
          trace: trace.name,
          requests: trace.arrivals.length,
        });
        continue;
      }
      const scale = scaleFor(options, trace.name);
      const arrivals = scaledArrivals(trace.arrivals, scale, options.windowSeconds);
      const measurement = await measureTrace({
        name: trace.name,
        arrivals,
        photos,
        minWorkers: options.minWorkers,
        maxWorkers: options.maxWorkers,
        policyFile: options.policyFile,
        timeoutMs: options.timeoutSeconds * 1000,
        log,
      });
      const file = join(options.outDir, `${trace.name}.json`);
      const { config: _config, ...measured } = measurement;
      let comparison: Comparison | undefined;
      try {
        comparison = compare(measurement, scale, policy, target);
        rows.push(comparison);
      } finally {
        // The raw measurement is kept even when it cannot be compared.
        await writeFile(
          file,
          `${JSON.stringify({ measurement: measured, comparison: comparison ? summaryJson([comparison]) : null, simulatedActions: comparison?.simulation.actions ?? null }, null, 2)}\n`,
        );
      }
      log.info('trace compared', {
        trace: trace.name,
        file,
        predicted: comparison.predicted,
        measured: comparison.measured,
      });
      if (comparison.answered < comparison.requests) {
        const unanswered = measurement.requests.filter((r) => r.done === undefined);
        failures.push({
          trace: trace.name,
          error: new ValidateError(
            'SERVICE',
            `${unanswered.length} of ${comparison.requests} requests got no answer (first: ${unanswered[0]?.error ?? 'unknown'})`,
            {
              trace: trace.name,
              statuses: [...new Set(unanswered.map((r) => r.status))],
            },
          ),
        });
      }
    } catch (error) {
      log.error('trace failed', { trace: name, error });
      failures.push({ trace: name, error });
    }
  }
  return { rows, failures };
}
