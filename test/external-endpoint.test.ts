/**
 * The path users take to LocalStack or AWS: an S3 + SQS endpoint started as a separate process
 * (fauxqs' own server, standing in for LocalStack), reached only through the standard AWS
 * environment — AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_REGION, no
 * ENDPOINT_MODE — set up with `npm run setup:aws`, then the service started on it. The end-to-end
 * and fault scenarios run against it as they do against the embedded endpoint.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { loadConfig, projectRoot } from '../lib/config.js';
import { createLogger } from '../lib/log.js';
import { freePorts } from '../lib/ports.js';
import { type Service, startService } from '../service/service.js';
import { tempDataDir, waitFor } from './helpers/service.js';
import { faultScenarios } from './scenarios/faults.js';
import { pipelineScenarios } from './scenarios/pipeline.js';

const run = promisify(execFile);

interface External {
  readonly endpoint: ChildProcess;
  readonly service: Service;
  readonly setupOutput: Record<string, string>;
}

let started: Promise<External> | undefined;

/** One endpoint process and one service for every scenario of this file. */
function external(): Promise<External> {
  started ??= (async () => {
    const [port] = await freePorts(1);
    const endpoint = spawn(
      process.execPath,
      [fileURLToPath(import.meta.resolve('fauxqs').replace(/app\.js$/, 'server.js'))],
      {
        env: { ...process.env, FAUXQS_PORT: String(port), FAUXQS_LOGGER: 'false' },
        stdio: 'ignore',
      },
    );
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${url}/health`).catch(() => undefined))?.ok === true, 30_000);

    const env: Record<string, string> = { ...(process.env as Record<string, string>) };
    delete env.ENDPOINT_MODE;
    Object.assign(env, {
      AWS_ENDPOINT_URL: url,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_REGION: 'eu-west-1',
      DATA_DIR: await tempDataDir('external'),
      PORT: '0',
      WORKERS: '2',
      LOG_LEVEL: 'warn',
      RECEIVE_WAIT_SECONDS: '1',
      // A crashed worker's messages come back after this (on AWS the default is 30 s; here the fault
      // scenarios wait for it).
      VISIBILITY_TIMEOUT_SECONDS: '10',
      MAX_UPLOAD_BYTES: String(4 * 1024 * 1024),
      // The fault scenarios send the same photos several times: each must go through a worker.
      RESULT_CACHE: 'off',
    });
    // As a user would: the npm script, on the same environment.
    const setup = await run('npm', ['run', '--silent', 'setup:aws'], { cwd: projectRoot, env });
    const setupOutput = JSON.parse(setup.stdout) as Record<string, string>;
    const config = loadConfig(env);
    const service = await startService(config, createLogger('external-test'));
    return { endpoint, service, setupOutput };
  })();
  return started;
}

test.after.always(async () => {
  const ext = await started?.catch(() => undefined);
  await ext?.service.stop();
  ext?.endpoint.kill('SIGTERM');
});

test('npm run setup:aws creates the resources on the endpoint the AWS variables name, and the service runs there', async (t) => {
  const { service, setupOutput } = await external();
  t.is(service.config.aws.mode, 'external');
  t.is(service.endpointPid, undefined, 'no embedded endpoint was started');
  t.is(setupOutput.region, 'eu-west-1');
  t.is(setupOutput.endpoint, service.config.aws.sqsEndpoint);
  t.is(setupOutput.requestQueueUrl, service.resources.requestQueueUrl);
  t.regex(setupOutput.requestQueueUrl!, /eu-west-1/);
});

pipelineScenarios('external', { fullSample: false }, async () => (await external()).service);

faultScenarios('external', { endpointSurvivesKill: false }, async () => {
  const { service, endpoint } = await external();
  return { service, endpointPid: () => endpoint.pid };
});
