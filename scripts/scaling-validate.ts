/**
 * `npm run scaling:validate`: the simulator against the real local autoscaler. Each trace is
 * replayed on the real service (`npm start`'s entry point, autoscaling on), then simulated in local
 * mode with the same policy and with the worker start time, service time, cold start and per-request
 * overhead outside the queue (ingest, deliver) measured in that run; prints predicted vs measured
 * makespan and p95 latency, then the calibrated inputs and the slowest latencies. Exits 1 if a trace
 * could not be measured.
 */
import { createLogger, setLogLevel } from '../pipeline/log.js';
import { ValidateError } from './lib/validate/errors.js';
import { parseValidateArgs, VALIDATE_USAGE } from './lib/validate/options.js';
import { formatMarkdown, summaryJson } from './lib/validate/report.js';
import { runValidation } from './lib/validate/run.js';

const log = createLogger('scaling-validate');

async function main(): Promise<number> {
  let options;
  try {
    options = parseValidateArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof ValidateError && err.code === 'INVALID_OPTIONS') {
      process.stderr.write(`${err.message}\n\n${VALIDATE_USAGE}\n`);
      return 2;
    }
    throw err;
  }
  if (options.help) {
    process.stdout.write(`${VALIDATE_USAGE}\n`);
    return 0;
  }
  if (process.env['LOG_LEVEL'] === undefined) setLogLevel('info');
  const { rows, failures } = await runValidation(options, log);
  if (rows.length > 0) process.stdout.write(`${options.json ? JSON.stringify(summaryJson(rows), null, 2) : formatMarkdown(rows)}\n`);
  for (const f of failures) {
    process.stderr.write(`trace ${f.trace} failed: ${f.error instanceof Error ? f.error.message : String(f.error)}\n`);
  }
  return failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log.error('scaling:validate failed', { error: err });
    process.exit(1);
  },
);
