/**
 * cdk-nag's AwsSolutions pack on the stack as it deploys, in each of its shapes (the defaults; an
 * existing VPC with alarm e-mails; HTTPS in an isolated VPC; imported buckets without a flow log; access logs off):
 * no finding left unacknowledged, every acknowledgement with its reason and used by a finding. And
 * the pack does bite: the same stack built with every acknowledgement dropped reports exactly the
 * findings that were acknowledged.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { App, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { resolveDeployConfig, stackPolicy } from '../deploy/config.js';
import { awsSolutionsFindings } from '../deploy/nag.js';
import { ImageRecognitionStack } from '../deploy/stack.js';

const SHAPES: Record<string, Record<string, string>> = {
  defaults: {},
  'existing VPC, alarm e-mails, s3:// model': {
    stackName: 'EirExisting',
    'vpc.id': 'vpc-0123456789abcdef0',
    'vpc.availabilityZones': 'us-east-1a,us-east-1b',
    'vpc.publicSubnetIds': 'subnet-0a0a0a0a,subnet-0b0b0b0b',
    'vpc.privateSubnetIds': 'subnet-0c0c0c0c,subnet-0d0d0d0d',
    'alarms.email': 'ops@example.com',
    model: 's3://acme-models/mobilenet/model.json',
  },
  'HTTPS, isolated VPC, clients from one network': {
    stackName: 'EirSecure',
    'vpc.isolated': 'true',
    certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012',
    clientCidr: '203.0.113.0/24',
  },
  'imported buckets, no flow log': {
    stackName: 'EirAgain',
    importBuckets: 'true',
    'names.inputBucket': 'acme-input-kept',
    'names.outputBucket': 'acme-output-kept',
    'logging.flowLogs': 'false',
  },
  'access logs off': {
    stackName: 'EirQuiet',
    'logging.accessLogs': 'false',
  },
};

let dir: string;
let releaseFile: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'eir-deploy-nag-'));
  releaseFile = join(dir, 'release.tgz');
  await writeFile(releaseFile, 'a stand-in release artifact');
});

test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function build(context: Record<string, string>): Promise<ImageRecognitionStack> {
  const config = resolveDeployConfig({ context, env: {} });
  return new ImageRecognitionStack(new App({ outdir: join(dir, 'cdk.out') }), config.stackName, {
    config,
    policy: await stackPolicy(config),
    releaseFile,
    env: { region: config.region },
  });
}

/** The stack built with `Validations.acknowledge` doing nothing: what the pack sees before any reason. */
async function buildUnacknowledged(context: Record<string, string>): Promise<ImageRecognitionStack> {
  const acknowledge = Validations.prototype.acknowledge;
  Validations.prototype.acknowledge = () => undefined;
  try {
    return await build(context);
  } finally {
    Validations.prototype.acknowledge = acknowledge;
  }
}

interface Acknowledgement {
  readonly rule: string;
  readonly path: string;
  readonly reason: string;
}

/** The AwsSolutions acknowledgements recorded on the stack's constructs (CDK's own are left out). */
function acknowledgements(root: IConstruct): Acknowledgement[] {
  const found: Acknowledgement[] = [];
  for (const construct of root.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [key, reason] of Object.entries(entry.data as Record<string, string>)) {
        const rule = key.replace(/^annotation::/i, '');
        if (rule.startsWith('AwsSolutions-')) found.push({ rule, path: construct.node.path, reason });
      }
    }
  }
  return found;
}

for (const [shape, context] of Object.entries(SHAPES)) {
  test(`AwsSolutions: no finding unacknowledged, every acknowledgement reasoned and used (${shape})`, async (t) => {
    const stack = await build(context);
    const findings = awsSolutionsFindings(stack);
    t.deepEqual(
      findings.map((f) => `${f.rule} at ${f.path}: ${f.description}`),
      [],
      'fix it, or acknowledge it next to the resource with its reason',
    );

    const acknowledged = acknowledgements(stack);
    t.true(acknowledged.length > 0);
    for (const a of acknowledged) t.true(a.reason.trim().length >= 40, `${a.rule} at ${a.path}: a reason, not a word`);

    // Without the acknowledgements, the pack reports exactly what they acknowledged, where they did.
    const bare = awsSolutionsFindings(await buildUnacknowledged(context));
    const key = (rule: string, path: string) => `${rule} @ ${path.replace(/\/Resource$/, '')}`;
    t.deepEqual(
      bare.map((f) => key(f.rule, f.path)).sort(),
      acknowledged.map((a) => key(a.rule, a.path)).sort(),
      'each finding acknowledged, and no acknowledgement without its finding',
    );
    const rules = new Map<string, number>();
    for (const f of bare) rules.set(f.rule.replace(/\[.*$/, ''), (rules.get(f.rule.replace(/\[.*$/, '')) ?? 0) + 1);
    t.log(
      `${bare.length} findings, all acknowledged: ${[...rules]
        .sort()
        .map(([rule, n]) => `${rule.replace('AwsSolutions-', '')} x${n}`)
        .join(', ')}`,
    );
  });
}

test('the pack does report a finding: a security group open to the world on SSH, added to the default stack', async (t) => {
  const stack = await build({});
  const { Peer, Port, SecurityGroup } = await import('aws-cdk-lib/aws-ec2');
  const open = new SecurityGroup(stack, 'Open', { vpc: stack.loadBalancer.vpc!, description: 'open' });
  open.addIngressRule(Peer.anyIpv4(), Port.tcp(22));
  t.deepEqual(
    awsSolutionsFindings(stack).map((f) => [f.rule, f.path]),
    [['AwsSolutions-EC23', `${stack.stackName}/Open/Resource`]],
  );
});
