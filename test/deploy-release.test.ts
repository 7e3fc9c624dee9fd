/**
 * The release artifact (npm run deploy:package) as an instance uses it: built fresh, unpacked into
 * an empty directory, `npm ci --omit=dev` there, then the worker unit's own command (`npm run
 * worker`, deploy/boot.ts) with the environment file the stack writes, pointed at an embedded
 * endpoint instead of AWS. A real photo is stored and its request queued as the web tier would;
 * the worker classifies it (the result object appears in the output bucket), then stops on SIGTERM
 * with exit code 0. The slow test of the deployment (npm ci: about a minute with npm's cache).
 */

import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import test from 'ava';
import {
  environmentFile,
  instanceEnvironment,
  parseEnvironmentFile,
  START_ARGS,
  unitEnvironment,
} from '../deploy/boot.js';
import { buildRelease, promoteToProduction } from '../deploy/release.js';
import { startEmbeddedEndpoint } from '../endpoint/embedded.js';
import { createAwsClients } from '../lib/aws/clients.js';
import { loadConfig } from '../lib/config.js';
import { inputKey, sanitizeFileName } from '../pipeline/contract/keys.js';
import type { ImageRequest } from '../pipeline/contract/messages.js';
import { ensureResources } from '../pipeline/resources.js';
import { Store } from '../pipeline/store.js';
import { SAMPLE_DIR, SHARED_MODELS_DIR } from './helpers/model-fixtures.js';
import { testEnv } from './helpers/service.js';

const run = promisify(execFile);

test('promoting a dev dependency the service runs with: package.json, the lock root and everything it pulls in', (t) => {
  const pkg = { dependencies: { koa: '^3' }, devDependencies: { ava: '8', tsx: '^4' } };
  const lock = {
    lockfileVersion: 3,
    packages: {
      '': { dependencies: { koa: '^3' }, devDependencies: { ava: '8', tsx: '^4' } },
      'node_modules/koa': {},
      'node_modules/ava': { dev: true, dependencies: { esbuild: '1' } },
      'node_modules/tsx': { dev: true, dependencies: { esbuild: '~0.28' }, optionalDependencies: { fsevents: '2' } },
      'node_modules/tsx/node_modules/esbuild': { dev: true, optionalDependencies: { '@esbuild/linux-x64': '0.28' } },
      'node_modules/esbuild': { dev: true },
      'node_modules/@esbuild/linux-x64': { dev: true, optional: true },
      'node_modules/fsevents': { devOptional: true },
    } as Record<string, Record<string, unknown>>,
  };
  const promoted = promoteToProduction(pkg, lock, ['tsx']);
  t.deepEqual(promoted.sort(), [
    'node_modules/@esbuild/linux-x64',
    'node_modules/fsevents',
    'node_modules/tsx',
    'node_modules/tsx/node_modules/esbuild',
  ]);
  t.deepEqual(pkg, { dependencies: { koa: '^3', tsx: '^4' }, devDependencies: { ava: '8' } });
  t.deepEqual(lock.packages[''], { dependencies: { koa: '^3', tsx: '^4' }, devDependencies: { ava: '8' } });
  t.deepEqual(lock.packages['node_modules/@esbuild/linux-x64'], { optional: true });
  t.deepEqual(lock.packages['node_modules/fsevents'], { optional: true });
  t.true(lock.packages['node_modules/esbuild']!.dev, "the hoisted esbuild is ava's, still dev");
  t.deepEqual(promoteToProduction(pkg, lock, ['tsx']), [], 'nothing left to do the second time');
});

test("a fresh artifact, npm ci --omit=dev, and the worker unit's command classifies a photo from the queue, then stops on SIGTERM", async (t) => {
  t.timeout(8 * 60_000);
  const started = performance.now();
  const lap = (what: string) => t.log(`${what}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const dir = await mkdtemp(join(tmpdir(), 'eir-release-'));
  const app = join(dir, 'app');
  const state = join(dir, 'state');
  let endpoint: Awaited<ReturnType<typeof startEmbeddedEndpoint>> | undefined;
  try {
    // Built fresh; built twice, the same bytes (the stack's asset hash stays put when nothing changed).
    const release = await buildRelease({ out: join(dir, 'release.tgz') });
    const again = await buildRelease({ out: join(dir, 'release-again.tgz') });
    t.is(again.sha256, release.sha256);
    const listed = (await run('tar', ['-tzf', release.file], { maxBuffer: 16 * 1024 * 1024 })).stdout
      .split('\n')
      .filter(Boolean);
    for (const needed of [
      'package.json',
      'package-lock.json',
      '.npmrc',
      'release.json',
      'scripts/worker.ts',
      'scripts/lib/preload.mjs',
      'pipeline/worker/worker.ts',
    ])
      t.true(listed.includes(needed), needed);
    for (const left of ['test/', 'deploy/', 'node_modules/', 'data/', '.tmp/', '.ci/', 'bench-results/'])
      t.false(
        listed.some((f) => f.startsWith(left)),
        left,
      );
    lap(`artifact (${release.files} files, ${Math.round(release.bytes / 1024)} KiB) built twice`);

    await mkdir(app, { recursive: true });
    await run('tar', ['-xzf', release.file, '-C', app]);
    const packaged = JSON.parse(await readFile(join(app, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    t.truthy(
      packaged.dependencies.tsx,
      'the loader every script starts with is a production dependency of the artifact',
    );
    await run('npm', ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], {
      cwd: app,
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, npm_config_update_notifier: 'false' },
    });
    lap('npm ci --omit=dev');
    const installed = (
      await run('npm', ['ls', '--omit=dev', '--depth=0', '--parseable'], {
        cwd: app,
        maxBuffer: 16 * 1024 * 1024,
      }).catch((e: { stdout: string }) => e)
    ).stdout;
    t.false(installed.includes('node_modules/aws-cdk-lib'), 'no deployment tooling on an instance');
    t.false(installed.includes('node_modules/ava'));

    // The embedded endpoint stands in for AWS; the buckets and queues as the stack creates them.
    endpoint = await startEmbeddedEndpoint({ host: '127.0.0.1', port: 0, dataDir: join(dir, 'endpoint') });
    const config = loadConfig(testEnv(join(dir, 'endpoint'), { EMBEDDED_PORT: String(endpoint.port) }));
    const clients = createAwsClients(config);
    try {
      const resources = await ensureResources(clients, config);
      const photo = 'n01440764_tench.JPEG';
      const requestId = randomUUID();
      const key = inputKey(requestId, sanitizeFileName(photo));
      await clients.s3.send(
        new PutObjectCommand({
          Bucket: config.names.inputBucket,
          Key: key,
          Body: await readFile(join(SAMPLE_DIR, photo)),
          ContentType: 'image/jpeg',
        }),
      );
      const request: ImageRequest = {
        v: 1,
        requestId,
        bucket: config.names.inputBucket,
        key,
        file: photo,
        enqueuedAt: Date.now(),
        timings: {},
      };
      await clients.sqs.send(
        new SendMessageCommand({ QueueUrl: resources.requestQueueUrl, MessageBody: JSON.stringify(request) }),
      );

      // The worker's environment file as the stack writes it, then what differs here: the endpoint,
      // its keys, local directories, the shared models (no internet), a short long poll, and no IMDS.
      const file = environmentFile(
        instanceEnvironment('worker', {
          region: config.aws.region,
          inputBucket: config.names.inputBucket,
          outputBucket: config.names.outputBucket,
          requestQueue: config.names.requestQueue,
          deadLetterQueue: config.names.deadLetterQueue,
          responseQueuePrefix: config.names.responseQueuePrefix,
          maxReceives: config.names.maxReceives,
          visibilityTimeoutSeconds: 10,
          receiveWaitSeconds: 20,
          model: 'mobilenet-v2-int8-onnx',
          appTierGroup: 'image-recognition-app',
          webTierGroup: 'image-recognition-web',
          terminateHook: 'image-recognition-drain',
          launchHook: 'image-recognition-warm-up',
          webPort: 3000,
          requestTimeoutSeconds: 120,
          loadBalancerIdleSeconds: 130,
          controllerPeriodSeconds: 2,
        }),
        'test',
      );
      // The unit's own variables too, with a home and npm's cache of this machine.
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        ...unitEnvironment(),
        HOME: state,
        npm_config_cache: process.env.npm_config_cache ?? join(process.env.HOME ?? state, '.npm'),
        ...parseEnvironmentFile(file),
        AWS_ENDPOINT_URL: endpoint.url,
        AWS_ACCESS_KEY_ID: 'embedded',
        AWS_SECRET_ACCESS_KEY: 'embedded',
        MODEL_CACHE_DIR: join(state, 'models'),
        DATA_DIR: join(state, 'data'),
        MODELS_DIR: SHARED_MODELS_DIR,
        RECEIVE_WAIT_SECONDS: '1',
        IMDS_ENDPOINT: 'http://127.0.0.1:9',
      };
      t.is(env.ENDPOINT_MODE, 'aws');

      const worker = spawn('npm', [...START_ARGS.worker], {
        cwd: app,
        env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      worker.stdout.on('data', (d) => (output += d));
      worker.stderr.on('data', (d) => (output += d));
      const exited = new Promise<number | null>((resolve) => worker.on('exit', (code) => resolve(code)));
      try {
        const store = Store.of(clients.s3, config);
        const deadline = Date.now() + 120_000;
        let result = await store.getResult(requestId);
        while (result === undefined && Date.now() < deadline && worker.exitCode === null) {
          await new Promise((r) => setTimeout(r, 250));
          result = await store.getResult(requestId);
        }
        lap('classified');
        t.truthy(result, `no result for the photo; the worker said:\n${output.slice(-4000)}`);
        t.false(result !== undefined && 'error' in result, JSON.stringify(result));
        if (result !== undefined && !('error' in result)) {
          t.is(result.file, photo);
          t.is(result.model, 'mobilenet-v2-int8-onnx');
          t.regex(result.label, /\w/);
        }
        t.regex(output, /"node":"v24\./, 'the worker runs on the Node 24 the artifact installed');
      } finally {
        // As systemd stops the unit (KillMode=control-group): SIGTERM to every process of the unit.
        if (worker.exitCode === null && worker.pid !== undefined) process.kill(-worker.pid, 'SIGTERM');
      }
      const code = await exited;
      lap('stopped');
      t.is(code, 0, output.slice(-4000));
      t.regex(output, /"msg":"worker stopped"/, 'the worker itself finished (npm waited for it)');
    } finally {
      clients.destroy();
    }
  } finally {
    await endpoint?.stop();
    await rm(dir, { recursive: true, force: true });
    t.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
});
