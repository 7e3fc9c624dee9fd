/** `npm run scaling:setup`: parse options, then print IAM policies, plan, set up or tear down. */

import { createControlClients } from '../../lib/aws/clients.js';
import { type CliDeps, cliIo, failureExitCode } from '../core/cli.js';
import { ScalingError } from '../core/errors.js';
import { DEFAULT_POLICY } from '../core/policy.js';
import { loadPolicy } from '../core/policy-file.js';
import { createExecutor, type Executor } from './aws-exec.js';
import { iamBundle } from './iam.js';
import { runSetup, runTeardown, type SetupReport } from './setup.js';
import { parseSetupArgs, SETUP_USAGE } from './setup-options.js';

export interface SetupCliDeps extends CliDeps {
  /** Builds the executor for real runs (never called for --dry-run, --print-iam or --help). */
  readonly executorFor?: (region: string | undefined) => Executor;
}

function dryRunOutput(report: SetupReport): unknown {
  return {
    dryRun: true,
    operation: report.operation,
    assumption:
      report.operation === 'setup'
        ? 'the group and queue exist and nothing from a previous setup does (fresh install); <...> values are placeholders for responses'
        : 'everything a previous setup creates exists; <...> values are placeholders for responses',
    requests: report.requests,
  };
}

/** Returns the process exit code: 0 ok, 1 failure, 2 bad options. */
export async function setupMain(argv: readonly string[], deps: SetupCliDeps = {}): Promise<number> {
  const io = cliIo(deps, 'scaling-setup');
  const { stdout, logger } = io;
  const executorFor =
    deps.executorFor ?? ((region: string | undefined) => createExecutor(createControlClients(region)));
  try {
    const opts = parseSetupArgs(argv);
    if (opts.help) {
      stdout(SETUP_USAGE);
      return 0;
    }
    if (opts.printIam) {
      const bundle = iamBundle({
        region: opts.region,
        accountId: opts.accountId,
        asg: opts.asg,
        queue: opts.queue?.name,
        responseQueue: opts.responseQueue,
        inputBucket: opts.inputBucket,
        outputBucket: opts.outputBucket,
      });
      stdout(JSON.stringify(bundle, null, 2));
      return 0;
    }
    const asg = opts.asg;
    if (asg === undefined) throw new ScalingError('INVALID_OPTIONS', '--asg: is required', { option: '--asg' });
    const executor: Executor = opts.dryRun
      ? { send: () => Promise.reject(new Error('dry run: no request may be sent')) }
      : executorFor(opts.region);

    let report: SetupReport;
    if (opts.teardown) {
      report = await runTeardown({ asg }, executor, { dryRun: opts.dryRun, logger });
    } else {
      const queue = opts.queue;
      if (queue === undefined) throw new ScalingError('INVALID_OPTIONS', '--queue: is required', { option: '--queue' });
      const policy = opts.policyFile === undefined ? DEFAULT_POLICY : await loadPolicy(opts.policyFile);
      report = await runSetup({ asg, queue, policy, region: opts.region }, executor, { dryRun: opts.dryRun, logger });
    }
    stdout(JSON.stringify(opts.dryRun ? dryRunOutput(report) : report, null, 2));
    return 0;
  } catch (err) {
    return failureExitCode(err, 'scaling.setup', SETUP_USAGE, io);
  }
}
