/**
 * The scaling controller's actuator on AWS: the app tier's Auto Scaling group. Before each decision
 * it reads the group (desired capacity, instances in service; instances still launching, warming or
 * leaving are not running), and a decision sets the desired capacity — the group then launches
 * (or starts from its warm pool) or terminates instances itself; scale-in goes through the
 * termination lifecycle hook, so a worker finishes what it holds first (pipeline/worker/lifecycle.ts).
 */
import {
  type AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  type DescribeAutoScalingGroupsCommandOutput,
  SetDesiredCapacityCommand,
} from '@aws-sdk/client-auto-scaling';
import { awsErrorName } from '../../lib/aws/errors.js';
import type { Actuator } from '../core/controller.js';
import { ScalingError } from '../core/errors.js';

export interface GroupState {
  readonly desired: number;
  readonly running: number;
  readonly min: number;
  readonly max: number;
}

export async function describeGroup(
  autoscaling: AutoScalingClient,
  group: string,
): Promise<GroupState & { readonly instances: readonly { id: string; state: string }[] }> {
  let out: DescribeAutoScalingGroupsCommandOutput;
  try {
    out = await autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [group] }));
  } catch (err) {
    throw new ScalingError(
      'AWS_ERROR',
      `DescribeAutoScalingGroups for ${group} failed: ${awsErrorName(err)}: ${(err as Error).message}`,
      { group, awsErrorName: awsErrorName(err) },
      { cause: err },
    );
  }
  const found = out.AutoScalingGroups?.[0];
  if (!found)
    throw new ScalingError(
      'GROUP_NOT_FOUND',
      `Auto Scaling group ${group} does not exist (or is not visible to these credentials)`,
      { group },
    );
  const instances = (found.Instances ?? []).map((i) => ({ id: i.InstanceId ?? '', state: i.LifecycleState ?? '' }));
  return {
    desired: found.DesiredCapacity ?? 0,
    running: instances.filter((i) => i.state === 'InService').length,
    min: found.MinSize ?? 0,
    max: found.MaxSize ?? 0,
    instances,
  };
}

export class AsgActuator implements Actuator {
  readonly label: string;
  private state: GroupState = { desired: 0, running: 0, min: 0, max: 0 };

  constructor(
    private readonly autoscaling: AutoScalingClient,
    readonly group: string,
  ) {
    this.label = `auto scaling group ${group}`;
  }

  get desired(): number {
    return this.state.desired;
  }

  get running(): number {
    return this.state.running;
  }

  /** The group's bounds, as last read. */
  get bounds(): { readonly min: number; readonly max: number } {
    return { min: this.state.min, max: this.state.max };
  }

  async refresh(): Promise<void> {
    this.state = await describeGroup(this.autoscaling, this.group);
  }

  /** Sets the desired capacity, within the group's own bounds (AWS refuses anything outside them). */
  async resize(count: number): Promise<void> {
    const target = Math.min(Math.max(count, this.state.min), this.state.max);
    this.state = { ...this.state, desired: target };
    try {
      await this.autoscaling.send(
        new SetDesiredCapacityCommand({
          AutoScalingGroupName: this.group,
          DesiredCapacity: target,
          HonorCooldown: false,
        }),
      );
    } catch (err) {
      throw new ScalingError(
        'AWS_ERROR',
        `SetDesiredCapacity ${target} on ${this.group} failed: ${awsErrorName(err)}: ${(err as Error).message}`,
        { group: this.group, target, awsErrorName: awsErrorName(err) },
        { cause: err },
      );
    }
  }
}
