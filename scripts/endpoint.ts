/**
 * `npm run endpoint`: the embedded SQS + S3 endpoint on its own (npm start runs it as a child).
 * Needs Node's `--openssl-legacy-provider` (see pipeline/aws/embedded.ts); the npm script passes it.
 */
import { startEmbeddedEndpoint } from '../pipeline/aws/embedded.js';
import { loadConfig } from '../pipeline/config.js';
import { createLogger, serializeError, setLogLevel } from '../pipeline/log.js';

const log = createLogger('endpoint');

async function main(): Promise<void> {
  const config = loadConfig();
  setLogLevel(config.logLevel);
  const endpoint = await startEmbeddedEndpoint({ ...config.embedded, dataDir: config.dataDir });
  log.info('embedded endpoint listening', { sqs: endpoint.sqsUrl, s3: endpoint.s3Url, s3Directory: endpoint.s3Directory });
  process.send?.({ type: 'ready', sqsPort: endpoint.sqsPort, s3Port: endpoint.s3Port });
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    // Ctrl-C reaches the whole process group; under `npm start` the parent stops us last.
    if (!process.connected) process.on('SIGINT', resolve);
    else process.on('SIGINT', () => undefined);
    process.once('disconnect', resolve);
  });
  await endpoint.stop();
  log.info('embedded endpoint stopped');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log.error('embedded endpoint failed', { error: err });
    process.send?.({ type: 'fatal', error: serializeError(err) });
    setTimeout(() => process.exit(1), 100);
  },
);
