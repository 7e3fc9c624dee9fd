/**
 * `npm start`'s main: the whole service on this machine. With no endpoint or AWS credentials configured it
 * runs on its embedded SQS + S3 endpoint (data in ./data); see docs/deployment.md for LocalStack and AWS.
 */
import { ConfigError, loadConfig } from '../lib/config.js';
import { createLogger, setLogLevel } from '../lib/log.js';
import { startService } from './service.js';

const log = createLogger('service');

async function main(): Promise<void> {
  const config = loadConfig();
  setLogLevel(config.logLevel);
  const service = await startService(config, log);
  const { web, fleet } = service;
  process.stdout.write(
    `image recognition service listening on ${web.url}  (model ${service.config.model.source}, ${fleet.workers().running} worker(s), ` +
      `endpoint ${service.config.aws.mode === 'embedded' ? `embedded, data in ${service.config.dataDir}` : (service.config.aws.sqsEndpoint ?? 'AWS')})\n` +
      `try: curl -F ${service.config.classic.field}=@photo.jpg ${web.url}/\n`,
  );
  let firstSignalAt = 0;
  const shutdown = (signal: string) => {
    // Ctrl-C may arrive twice at once (terminal and a wrapper); a second one a moment later means "now".
    if (firstSignalAt && Date.now() - firstSignalAt < 1000) return;
    if (firstSignalAt) {
      log.warn('second signal: exiting now', { signal });
      process.exit(130);
    }
    firstSignalAt = Date.now();
    log.info('shutting down', { signal });
    service.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('shutdown failed', { error: err });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

/** Starts the service and keeps it running until SIGINT/SIGTERM (then stops it in order and exits). */
export function startMain(): void {
  main().catch(onStartFailure);
}

function onStartFailure(err: unknown): void {
  if (err instanceof ConfigError) {
    process.stderr.write(`configuration error: ${err.message}\n`);
  } else {
    log.error('service failed to start', { error: err });
  }
  process.exit(1);
}
