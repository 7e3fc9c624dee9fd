/**
 * A worker's place in its Auto Scaling group's lifecycle, on EC2 (IMDSv2's
 * `autoscaling/target-lifecycle-state`, polled every few seconds):
 *
 * - **Warming** (`Warmed:*`, a warm-pool instance being prepared): the worker has loaded its model;
 *   it completes the launch hook (the group may now stop the instance) and takes no message until
 *   the instance is put in service.
 * - **In service**: it completes the launch hook if one is pending (the group waits for it when the
 *   instance comes out of the warm pool), then consumes.
 * - **Terminated**, or back to `Warmed:*` (scale-in, into a warm pool that reuses instances): it
 *   stops receiving, finishes what it holds — classified, stored, answered, deleted — and only then
 *   completes the termination hook, so the group never cuts work short.
 *
 * With no AUTO_SCALING_GROUP configured (one machine) there is nothing to follow; off EC2 nothing
 * answers at the metadata address and the worker just runs.
 */
import { type AutoScalingClient, CompleteLifecycleActionCommand } from '@aws-sdk/client-auto-scaling';
import { awsErrorName } from '../../lib/aws/errors.js';
import { InstanceMetadata, type TargetLifecycleState } from '../../lib/aws/imds.js';
import type { Config } from '../../lib/config.js';
import type { Logger } from '../../lib/log.js';

export interface Lifecycle {
  /** Resolves when the worker may take messages: at once off EC2; after warming and once in service on EC2. */
  ready(signal: AbortSignal): Promise<void>;
  /** Calls `stop` once when the group terminates this instance (until `close`). */
  watch(stop: () => void): void;
  /** Called after the drain: completes the termination action if the group asked for one. */
  drained(): Promise<void>;
  close(): void;
  /** What the worker knows of where it runs, for its logs. */
  readonly describe: Record<string, unknown>;
}

export interface LifecycleOptions {
  readonly config: Config;
  readonly log: Logger;
  /** Built once by the caller (lib/aws/clients.ts `createControlClients`), injected for tests. */
  readonly autoscaling: () => AutoScalingClient;
  /** How often the target lifecycle state is read (default 5 s). */
  readonly pollMs?: number;
}

const NOTHING_TO_FOLLOW = {
  ready: async () => undefined,
  watch: () => undefined,
  drained: async () => undefined,
  close: () => undefined,
};
const NOT_IN_A_GROUP: Lifecycle = { ...NOTHING_TO_FOLLOW, describe: { lifecycle: 'none: no AUTO_SCALING_GROUP' } };
const NOT_ON_EC2: Lifecycle = { ...NOTHING_TO_FOLLOW, describe: { lifecycle: 'none: not on EC2' } };

/**
 * Finds out where this worker runs. Without AUTO_SCALING_GROUP there is nothing to follow (and no
 * second spent asking); with it, off EC2 (nothing answers at the metadata address) the worker just
 * runs.
 */
export async function detectLifecycle(options: LifecycleOptions): Promise<Lifecycle> {
  const { config, log } = options;
  const group = config.ec2.autoScalingGroup;
  if (group === undefined) return NOT_IN_A_GROUP;
  const imds = new InstanceMetadata(config.ec2.imdsEndpoint, 1_000);
  if (!(await imds.probe())) {
    log.warn(
      'AUTO_SCALING_GROUP is set but no instance metadata service answers (not on EC2?): lifecycle hooks are not followed',
      { group, imds: config.ec2.imdsEndpoint },
    );
    return NOT_ON_EC2;
  }
  return new GroupLifecycle(imds, await imds.instanceId(), group, options);
}

class GroupLifecycle implements Lifecycle {
  private timer: NodeJS.Timeout | undefined;
  private terminating = false;
  /** Set by close(): a poll already on its way must not schedule the next one. */
  private closed = false;
  private readonly pollMs: number;
  readonly describe: Record<string, unknown>;

  constructor(
    private readonly imds: InstanceMetadata,
    private readonly instanceId: string,
    private readonly group: string,
    private readonly options: LifecycleOptions,
  ) {
    this.pollMs = options.pollMs ?? 5_000;
    const { launchHook, terminateHook } = options.config.ec2;
    this.describe = {
      ec2: true,
      instanceId,
      group,
      launchHook: launchHook ?? null,
      terminateHook: terminateHook ?? null,
    };
  }

  async ready(signal: AbortSignal): Promise<void> {
    const { log } = this.options;
    let warmed = false;
    for (;;) {
      const state = await this.state();
      if (state === 'InService') {
        // Out of the warm pool (or a fresh launch): the group may be waiting for the launch hook.
        await this.complete(this.options.config.ec2.launchHook, 'launch');
        return;
      }
      if (state.startsWith('Warmed:') && !warmed) {
        // Prepared (the model is loaded): the group may stop the instance now. No message is taken.
        await this.complete(this.options.config.ec2.launchHook, 'warm-up');
        warmed = true;
        log.info('warmed: the model is loaded; waiting to be put in service', { state });
      }
      if (state === 'Terminated') return; // watch() stops the worker at once; nothing to prepare
      await sleep(this.pollMs, signal);
      if (signal.aborted) return;
    }
  }

  watch(stop: () => void): void {
    const poll = async () => {
      this.timer = undefined;
      try {
        const state = await this.state();
        if (this.closed) return;
        // Scale-in: terminated, or (a warm pool that reuses instances) back into the pool.
        if ((state === 'Terminated' || state.startsWith('Warmed:')) && !this.terminating) {
          this.terminating = true;
          this.options.log.info(
            'the group is taking this instance out of service: no new messages, finishing what is held',
            { instanceId: this.instanceId, group: this.group, state },
          );
          stop();
          return;
        }
      } catch (err) {
        if (this.closed) return;
        this.options.log.warn('could not read the target lifecycle state; trying again', { error: err });
      }
      if (!this.closed) this.timer = setTimeout(() => void poll(), this.pollMs);
    };
    this.timer = setTimeout(() => void poll(), this.pollMs);
  }

  async drained(): Promise<void> {
    if (!this.terminating) return;
    await this.complete(this.options.config.ec2.terminateHook, 'termination');
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private state(): Promise<TargetLifecycleState> {
    return this.imds.targetLifecycleState();
  }

  /** CONTINUE on `hook` for this instance; "no active lifecycle action" is not an error (no hook was waiting). */
  private async complete(hook: string | undefined, what: string): Promise<void> {
    const { log } = this.options;
    if (hook === undefined) return;
    try {
      await this.options.autoscaling().send(
        new CompleteLifecycleActionCommand({
          AutoScalingGroupName: this.group,
          LifecycleHookName: hook,
          InstanceId: this.instanceId,
          LifecycleActionResult: 'CONTINUE',
        }),
      );
      log.info(`${what} lifecycle action completed`, { hook, group: this.group, instanceId: this.instanceId });
    } catch (err) {
      if (awsErrorName(err) === 'ValidationError' && /No active Lifecycle Action/i.test((err as Error).message)) {
        log.debug(`no ${what} lifecycle action was waiting`, { hook, instanceId: this.instanceId });
        return;
      }
      // The group times the action out after the hook's heartbeat timeout and applies its default result.
      log.error(`could not complete the ${what} lifecycle action; the group will time it out`, {
        hook,
        group: this.group,
        instanceId: this.instanceId,
        error: err,
      });
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
