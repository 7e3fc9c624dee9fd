/**
 * The whole service on one machine, as `npm start` runs it: the embedded endpoint (unless an
 * external one is configured), the buckets and queues, the worker pool and the web tier.
 * Tests start exactly this.
 */
import { createAwsClients, type AwsClients } from '../../pipeline/aws/clients.js';
import { ensureResources, type Resources } from '../../pipeline/aws/resources.js';
import { childEnv, loadConfig, type Config } from '../../pipeline/config.js';
import type { Logger } from '../../pipeline/log.js';
import { WorkerPool } from '../../pipeline/pool.js';
import { forkScript, terminate, waitUntilReady } from '../../pipeline/processes.js';
import { startWebTier, type WebTier } from '../../web/server.js';

export interface Service {
  readonly config: Config;
  readonly clients: AwsClients;
  readonly resources: Resources;
  readonly pool: WorkerPool;
  readonly web: WebTier;
  stop(): Promise<void>;
}

export async function startService(initial: Config, log: Logger): Promise<Service> {
  let config = initial;
  let stopEndpoint = async () => {};
  if (config.aws.mode === 'embedded') {
    const child = forkScript('endpoint.ts', childEnv(config, { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' }), ['--openssl-legacy-provider']);
    const ready = await waitUntilReady(child, 'embedded endpoint', 30_000);
    // Ports may have been 0 (pick any): from here on everyone uses the real ones.
    config = loadConfig(childEnv(config, { EMBEDDED_SQS_PORT: String(ready.sqsPort), EMBEDDED_S3_PORT: String(ready.s3Port) }));
    stopEndpoint = () => terminate(child, 10_000, log);
  }
  const clients = createAwsClients(config);
  try {
    const resources = await ensureResources(clients, config);
    log.info('resources ready', { inputBucket: config.names.inputBucket, outputBucket: config.names.outputBucket, requestQueue: resources.requestQueueUrl, endpoint: config.aws.sqsEndpoint ?? 'AWS' });
    const pool = new WorkerPool({
      env: childEnv(config, { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' }),
      log: log.child('pool'),
      stopGraceMs: (config.worker.visibilityTimeoutSeconds + config.worker.receiveWaitSeconds) * 1000,
    });
    const web = await startWebTier(config, clients, resources, log.child('web'));
    // Workers load the model in parallel with nothing else to do; the web tier already accepts
    // uploads, which wait in the queue until the first worker is ready.
    await pool.resize(config.worker.count);
    let stopping: Promise<void> | undefined;
    return {
      config,
      clients,
      resources,
      pool,
      web,
      stop() {
        stopping ??= (async () => {
          await web.stop();
          await pool.stop();
          clients.destroy();
          await stopEndpoint();
        })();
        return stopping;
      },
    };
  } catch (err) {
    clients.destroy();
    await stopEndpoint();
    throw err;
  }
}
