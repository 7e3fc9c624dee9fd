/**
 * Behind `npm run setup:aws`: creates the buckets and the request queue on LocalStack or AWS (whatever the
 * AWS environment variables point at), idempotently. `npm start` does the same for the embedded endpoint.
 */
import { createAwsClients } from '../lib/aws/clients.js';
import { ConfigError, loadConfig } from '../lib/config.js';
import { createLogger, setLogLevel } from '../lib/log.js';
import { ensureResources } from './resources.js';

const log = createLogger('setup');

async function main(): Promise<void> {
  const config = loadConfig();
  setLogLevel(config.logLevel);
  if (config.aws.mode === 'embedded') {
    throw ConfigError.invalid(
      'ENDPOINT_MODE',
      'aws (or AWS credentials / AWS_ENDPOINT_URL set) for setup:aws — `npm start` sets up the embedded endpoint itself',
      'embedded',
    );
  }
  const clients = createAwsClients(config);
  try {
    const resources = await ensureResources(clients, config);
    process.stdout.write(
      `${JSON.stringify({ region: config.aws.region, endpoint: config.aws.sqsEndpoint ?? 'AWS', inputBucket: config.names.inputBucket, outputBucket: config.names.outputBucket, requestQueueUrl: resources.requestQueueUrl }, null, 2)}\n`,
    );
  } finally {
    clients.destroy();
  }
}

/** `npm run setup:aws`: resolves with the exit code. */
export async function setupAwsMain(): Promise<number> {
  try {
    await main();
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) process.stderr.write(`configuration error: ${err.message}\n`);
    else log.error('setup failed', { error: err });
    return 1;
  }
}
