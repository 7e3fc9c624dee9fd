/**
 * Replay, behind `npm run replay -- --missing | --all | --dlq [--prefix P]`.
 *
 * Re-runs the pipeline (fetch → decode → classify → persist) over stored inputs: `--missing` those
 * without a result (work lost to a crash, say), `--all` every one (after a model change), `--dlq`
 * the requests recorded as dead letters (after fixing what made them fail; their records are
 * removed once they succeed). Works
 * with `npm start` running or not: in embedded mode it starts the endpoint itself when none answers.
 */

import { parseArgs } from 'node:util';
import { bufferCount, concatMap, count, from, lastValueFrom, mergeMap, tap } from 'rxjs';
import { type EmbeddedEndpoint, logStartNotes, startEmbeddedEndpoint } from '../../endpoint/embedded.js';
import { createAwsClients } from '../../lib/aws/clients.js';
import { type Config, ConfigError, loadConfig } from '../../lib/config.js';
import { ServiceError } from '../../lib/errors.js';
import { createLogger, setLogLevel } from '../../lib/log.js';
import { Progress } from '../../lib/progress.js';
import { checkBuckets } from '../resources.js';
import { Store } from '../store.js';
import type { Job } from './job.js';
import { classifyStored, loadConfiguredClassifier } from './worker.js';

const log = createLogger('replay');
const USAGE = 'usage: npm run replay -- --missing | --all | --dlq [--prefix P]';

class UsageError extends ServiceError<'USAGE'> {
  override readonly name = 'UsageError';
}

type Mode = 'missing' | 'all' | 'dlq';

function parseCli(argv: string[]): { mode: Mode; prefix: string | undefined } {
  const { values } = parseArgs({
    args: argv,
    options: {
      missing: { type: 'boolean' },
      all: { type: 'boolean' },
      dlq: { type: 'boolean' },
      prefix: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) throw new UsageError('USAGE', USAGE);
  const modes = (['missing', 'all', 'dlq'] as const).filter((m) => values[m]);
  if (modes.length !== 1) throw new UsageError('USAGE', `choose exactly one of --missing, --all and --dlq\n${USAGE}`);
  return { mode: modes[0]!, prefix: values.prefix };
}

/** In embedded mode with nothing listening, bring up the endpoint over the same data directory. */
async function reachEndpoint(config: Config): Promise<EmbeddedEndpoint | undefined> {
  if (config.aws.mode !== 'embedded') return undefined;
  const clients = createAwsClients(config);
  try {
    await checkBuckets(clients, config);
    return undefined;
  } catch {
    log.info('no embedded endpoint answering; starting one on the data directory', { dataDir: config.dataDir });
    const endpoint = await startEmbeddedEndpoint({ ...config.embedded, dataDir: config.dataDir });
    logStartNotes(endpoint, log);
    return endpoint;
  } finally {
    clients.destroy();
  }
}

async function replay(argv: string[]): Promise<number> {
  const cli = parseCli(argv);
  const config = loadConfig();
  setLogLevel(config.logLevel);
  const endpoint = await reachEndpoint(config);
  const clients = createAwsClients(config);
  try {
    await checkBuckets(clients, config);
    const store = Store.of(clients.s3, config);
    const inventory = await store.inventory(cli.prefix);
    const todo =
      cli.mode === 'all'
        ? inventory.inputs
        : cli.mode === 'dlq'
          ? inventory.inputs.filter((r) => inventory.deadLetters.has(r.requestId))
          : inventory.inputs.filter((r) => !inventory.finished.has(r.requestId));
    process.stdout.write(
      `${inventory.inputs.length} inputs${cli.prefix ? ` under ${cli.prefix}` : ''}, ${inventory.inputs.length - todo.length} with a result; replaying ${todo.length}` +
        (inventory.foreign.length ? ` (${inventory.foreign.length} keys not made by this service skipped)` : '') +
        '\n',
    );
    if (todo.length === 0) return 0;

    const classifier = await loadConfiguredClassifier(config, clients);
    const progress = new Progress(todo.length);
    const failures: Job[] = [];
    const jobs = todo.map((request): Job => ({ request, timings: {} }));
    await lastValueFrom(
      from(jobs).pipe(
        // In chunks: fetch and decode outrun inference, and must not hold every decoded image at once.
        bufferCount(Math.max(32, config.worker.maxBatch * 4)),
        concatMap((chunk) => from(chunk).pipe(classifyStored({ config, clients, classifier, log }))),
        mergeMap(async (job) => {
          // A re-driven dead letter that now has its result is no longer dead.
          if (!job.failure && inventory.deadLetters.has(job.request.requestId)) {
            await store.deleteDeadLetter(job.request.requestId).catch((err: unknown) =>
              log.warn('re-driven, but its dead-letter record could not be removed', {
                requestId: job.request.requestId,
                error: err,
              }),
            );
          }
          return job;
        }),
        tap((job) => {
          if (job.failure) failures.push(job);
          progress.tick(!job.failure);
        }),
        count(),
      ),
    );
    await classifier.dispose();
    process.stdout.write(
      `replayed ${todo.length} in ${progress.elapsedSeconds.toFixed(1)} s (${progress.rate().toFixed(1)} img/s): ` +
        `${todo.length - failures.length} classified, ${failures.length} failed\n`,
    );
    for (const job of failures)
      process.stdout.write(`  ${job.request.key}: ${job.failure!.code} ${job.failure!.message}\n`);
    return failures.length === 0 ? 0 : 1;
  } finally {
    clients.destroy();
    await endpoint?.stop();
  }
}

/** Runs replay for `argv`; resolves with the exit code (0 all classified, 1 some failed, 2 it could not run). */
export async function replayMain(argv: string[]): Promise<number> {
  try {
    return await replay(argv);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
    else log.error('replay failed', { error: err });
    return 2;
  }
}
