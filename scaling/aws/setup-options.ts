/** Command-line options of `npm run scaling:setup`, parsed and validated once. */

import { badFlags, parseFlags } from '../core/cli.js';
import { ScalingError } from '../core/errors.js';
import type { QueueRef } from './setup.js';

export const SETUP_USAGE = `Usage: npm run scaling:setup -- --asg NAME --queue NAME|URL [options]

Sets up SQS backlog-per-instance target tracking (scale-out only), scale-from-zero and
scale-to-zero for an Auto Scaling group. Each stands aside in every minute a scaling controller
(SCALER=aws) sends its heartbeat, and scales the group on its own when none does. Re-running
updates everything in place.

  --asg NAME            Auto Scaling group of the app tier (required)
  --queue NAME|URL      request queue, by name or URL (required, except with --teardown)
  --region R            AWS region (default: from the URL, else the SDK's default chain)
  --policy FILE         JSON scaling policy; missing fields take the defaults
  --dry-run             print every request as JSON and send nothing
  --teardown            remove what the setup created (alarms, policies, metrics it enabled)
  --print-iam           print least-privilege IAM policies (setup and app-tier role) and exit
      --account-id ID --response-queue NAME --input-bucket B --output-bucket B
                        optional values for --print-iam (placeholders otherwise)
  -h, --help            this text`;

export interface SetupOptions {
  readonly help: boolean;
  readonly asg: string | undefined;
  readonly queue: QueueRef | undefined;
  readonly region: string | undefined;
  readonly policyFile: string | undefined;
  readonly dryRun: boolean;
  readonly teardown: boolean;
  readonly printIam: boolean;
  readonly accountId: string | undefined;
  readonly responseQueue: string | undefined;
  readonly inputBucket: string | undefined;
  readonly outputBucket: string | undefined;
}

const bad = (option: string, message: string, value: unknown): ScalingError =>
  new ScalingError('INVALID_OPTIONS', `${option}: ${message}`, { option, value });

const QUEUE_NAME = /^[A-Za-z0-9_-]{1,80}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

export function validateQueueName(name: string, option = '--queue'): string {
  const base = name.endsWith('.fifo') ? name.slice(0, -5) : name;
  if (!QUEUE_NAME.test(base) || name.length > 80) {
    throw bad(option, 'queue names are 1-80 characters: letters, digits, "-" and "_" (".fifo" suffix allowed)', name);
  }
  return name;
}

/** Region in an SQS URL such as https://sqs.eu-west-1.amazonaws.com/123456789012/name. */
export function regionFromQueueUrl(url: string): string | undefined {
  const host = new URL(url).hostname;
  return (
    /^sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(host)?.[1] ??
    /^([a-z0-9-]+)\.queue\.amazonaws\.com$/.exec(host)?.[1]
  );
}

export function parseQueueRef(value: string): QueueRef {
  if (/^https?:\/\//i.test(value)) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw bad('--queue', 'is not a valid URL', value);
    }
    const name = url.pathname.split('/').filter(Boolean).pop();
    if (!name) throw bad('--queue', 'queue URL has no queue name in its path', value);
    return { name: validateQueueName(name), url: value };
  }
  return { name: validateQueueName(value), url: undefined };
}

export function parseSetupArgs(argv: readonly string[]): SetupOptions {
  const v = parseFlags(
    argv,
    {
      asg: { type: 'string' },
      queue: { type: 'string' },
      region: { type: 'string' },
      policy: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      teardown: { type: 'boolean', default: false },
      'print-iam': { type: 'boolean', default: false },
      'account-id': { type: 'string' },
      'response-queue': { type: 'string' },
      'input-bucket': { type: 'string' },
      'output-bucket': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    badFlags(argv),
  );
  const help = v.help === true;
  const printIam = v['print-iam'] === true;
  const teardown = v.teardown === true;

  const asg = v.asg;
  if (asg !== undefined && (asg.length < 1 || asg.length > 200 || /[\p{Cc}]/u.test(asg))) {
    throw bad('--asg', 'must be 1-200 printable characters', asg);
  }
  const queue = v.queue === undefined ? undefined : parseQueueRef(v.queue);
  const region = v.region;
  if (region !== undefined && !REGION.test(region))
    throw bad('--region', 'is not a region name like us-east-1', region);
  const urlRegion = queue?.url === undefined ? undefined : regionFromQueueUrl(queue.url);
  if (region !== undefined && urlRegion !== undefined && region !== urlRegion) {
    throw bad('--region', `conflicts with the queue URL's region ${urlRegion}`, region);
  }
  const accountId = v['account-id'];
  if (accountId !== undefined && !/^\d{12}$/.test(accountId)) throw bad('--account-id', 'must be 12 digits', accountId);
  const responseQueue =
    v['response-queue'] === undefined ? undefined : validateQueueName(v['response-queue'], '--response-queue');
  for (const option of ['input-bucket', 'output-bucket'] as const) {
    const bucket = v[option];
    if (bucket !== undefined && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
      throw bad(`--${option}`, 'is not a valid S3 bucket name', bucket);
  }
  if (v.policy !== undefined && v.policy.trim() === '') throw bad('--policy', 'must be a file path', v.policy);

  if (!help && !printIam) {
    if (asg === undefined) throw bad('--asg', 'is required', undefined);
    if (!teardown && queue === undefined) throw bad('--queue', 'is required (except with --teardown)', undefined);
  }
  return {
    help,
    asg,
    queue,
    region: region ?? urlRegion,
    policyFile: v.policy,
    dryRun: v['dry-run'] === true,
    teardown,
    printIam,
    accountId,
    responseQueue,
    inputBucket: v['input-bucket'],
    outputBucket: v['output-bucket'],
  };
}
