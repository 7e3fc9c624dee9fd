/**
 * The embedded endpoint process's main module: SQS + S3 on one loopback port over the data
 * directory, until SIGTERM (or Ctrl-C when it runs alone, as `npm run endpoint` imports this). As
 * `npm start`'s child it reports `ready` with its port (or `fatal`) over IPC.
 */

import { loadConfig } from '../lib/config.js';
import { serializeError } from '../lib/errors.js';
import { createLogger, setLogLevel } from '../lib/log.js';
import { logStartNotes, startEmbeddedEndpoint } from './embedded.js';

const log = createLogger('endpoint');

async function main(): Promise<void> {
  const config = loadConfig();
  setLogLevel(config.logLevel);
  const endpoint = await startEmbeddedEndpoint({
    ...config.embedded,
    dataDir: config.dataDir,
    region: config.aws.region,
  });
  logStartNotes(endpoint, log);
  log.info('embedded endpoint listening', {
    url: endpoint.url,
    queues: endpoint.queuesDirectory,
    objects: endpoint.objectsDirectory,
    node: process.version,
  });
  process.send?.({ type: 'ready', port: endpoint.port, migrated: endpoint.migrated?.objects ?? 0 });
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
