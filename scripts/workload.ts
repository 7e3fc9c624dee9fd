/**
 * `npm run workload -- --url http://127.0.0.1:3000 --dir FOLDER [--concurrency N=100] [--count N]
 *                      [--ground-truth CSV] [--json OUT.json] [--timeout-ms 120000]`
 *
 * The classic workload generator: concurrent `POST /` uploads of a folder's images, each answer
 * printed as it arrives and checked, then a summary. Exit 0 when every upload got a 200 naming its
 * own file, 1 otherwise, 2 on a usage error. Ctrl-C stops sending, cancels what is in flight and
 * still prints the summary. The logic is in `lib/workload.ts`.
 */
import { writeFile } from 'node:fs/promises';
import { WORKLOAD_USAGE, WorkloadUsageError, formatRow, formatSummary, parseWorkloadArgs, prepareWorkload, runWorkload, wantsHelp } from './lib/workload.js';

async function main(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(`${WORKLOAD_USAGE}\n`);
    return 0;
  }
  // `npm run` moves to the package root; relative paths mean what they meant where npm was typed.
  const cwd = process.env.npm_lifecycle_event === 'workload' && process.env.INIT_CWD ? process.env.INIT_CWD : process.cwd();
  const plan = await prepareWorkload(parseWorkloadArgs(argv, cwd));
  for (const warning of plan.warnings) process.stderr.write(`warning: ${warning}\n`);
  process.stdout.write(
    `sending ${plan.count} uploads of ${plan.files.length} files from ${plan.dir} to ${plan.url.href} ` +
      `(concurrency ${plan.concurrency}, timeout ${plan.timeoutMs} ms${plan.groundTruth ? `, ground truth ${plan.groundTruth.source}` : ''})\n`,
  );

  const stop = new AbortController();
  const onSigint = (): void => {
    if (stop.signal.aborted) process.exit(130); // second Ctrl-C: leave now
    process.stderr.write('\nstopping: no new uploads, cancelling those in flight (Ctrl-C again to quit at once)\n');
    stop.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    const report = await runWorkload(plan, {
      signal: stop.signal,
      onResult: (row) => process.stdout.write(`${formatRow(row)}\n`),
    });
    process.stdout.write(`\n${formatSummary(report.summary)}\n`);
    if (plan.json !== undefined) {
      await writeFile(plan.json, `${JSON.stringify(report, null, 2)}\n`);
      process.stdout.write(`wrote ${plan.json}\n`);
    }
    return report.summary.passed ? 0 : 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof WorkloadUsageError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`workload failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(2);
  },
);
