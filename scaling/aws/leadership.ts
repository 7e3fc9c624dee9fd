/**
 * Which of several controller copies acts. On AWS every web-tier instance runs one (the web tier
 * is an Auto Scaling group of its own behind the load balancer); the copy on the in-service web
 * instance with the smallest instance id acts, the others watch and stand by. Every copy reads the
 * same group, so they agree without talking to each other; when the leader's instance goes (it
 * dies, is replaced, scales in), the next one leads within a controller period. For the moments a
 * membership change is seen by one copy and not yet by another, both act on the same observations
 * with the same rule — the outcome is the same desired capacity. And if every copy stops, the
 * CloudWatch alarms and target tracking policies on the app tier (`npm run scaling:setup`, the
 * stack) go on scaling it, only more slowly: they stand aside only while the leader's heartbeat
 * comes (`heartbeat.ts`), and a copy that takes over reads the last minutes' heartbeats back before
 * it acts.
 */
import type { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { describeGroup } from './asg-actuator.js';

export function smallestInstanceLeads(
  autoscaling: AutoScalingClient,
  peersGroup: string,
  instanceId: string,
): () => Promise<boolean> {
  return async () => {
    const { instances } = await describeGroup(autoscaling, peersGroup);
    const inService = instances
      .filter((i) => i.state === 'InService')
      .map((i) => i.id)
      .sort();
    // Not (yet) in service itself, or the group lists nobody: lead only if nobody else can.
    if (!inService.includes(instanceId)) return inService.length === 0;
    return inService[0] === instanceId;
  };
}
