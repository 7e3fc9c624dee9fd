/**
 * `npm run scaling:validate`: the simulator against the real local autoscaler. Each trace is
 * replayed on the real service (`npm start`'s entry point, autoscaling on), then simulated in local
 * mode with the same policy and with the worker start time, service time, cold start and per-request
 * overhead outside the queue (ingest, deliver) measured in that run; prints predicted vs measured
 * makespan and p95 latency, then the calibrated inputs and the slowest latencies.
 */
import { setLogLevel } from '../../../lib/log.js';
import { type CliDeps, cliIo } from '../../../scaling/core/cli.js';
import { ValidateError } from './errors.js';
import { parseValidateArgs, VALIDATE_USAGE, type ValidateOptions } from './options.js';
import { formatMarkdown, summaryJson } from './report.js';
import { runValidation } from './run.js';

/** Returns the process exit code: 0 ok, 1 a trace could not be measured (or a crash), 2 bad options. */
export async function validateMain(argv: readonly string[], deps: CliDeps = {}): Promise<number> {
  const { stdout, stderr, logger } = cliIo(deps, 'scaling-validate');
  let options: ValidateOptions;
  try {
    options = parseValidateArgs(argv);
  } catch (err) {
    if (err instanceof ValidateError && err.code === 'INVALID_OPTIONS') {
      stderr(`${err.message}\n\n${VALIDATE_USAGE}`);
      return 2;
    }
    logger.error('scaling:validate failed', { error: err });
    return 1;
  }
  if (options.help) {
    stdout(VALIDATE_USAGE);
    return 0;
  }
  if (process.env.LOG_LEVEL === undefined) setLogLevel('info');
  try {
    const { rows, failures } = await runValidation(options, logger);
    if (rows.length > 0) stdout(options.json ? JSON.stringify(summaryJson(rows), null, 2) : formatMarkdown(rows));
    for (const f of failures)
      stderr(`trace ${f.trace} failed: ${f.error instanceof Error ? f.error.message : String(f.error)}`);
    return failures.length > 0 ? 1 : 0;
  } catch (err) {
    logger.error('scaling:validate failed', { error: err });
    return 1;
  }
}
