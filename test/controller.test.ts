/**
 * The scaling controller on AWS: the same loop as the local autoscaler, with the Auto Scaling group
 * as its actuator. The queue is real (the embedded endpoint); Auto Scaling has no emulator, so the
 * group is a small fake behind the client mock. Checked: it scales from zero on the queue's own
 * count (no CloudWatch alarm to wait for) and back to zero after the empty periods; with three
 * copies running only the leader acts, and another takes over when the leader's instance goes; a
 * stopped controller leaves the group as it is and never touches the scaling policies (the
 * CloudWatch safety net). One scaling authority: the leader sends its heartbeat to CloudWatch (a
 * mock client) and acts only once the heartbeats read back fill the window the policies look at;
 * one that cannot send it never acts; a group grown by someone else counts as a scale-out.
 */
import {
  AutoScalingClient,
  type AutoScalingGroup,
  DescribeAutoScalingGroupsCommand,
  SetDesiredCapacityCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  CloudWatchClient,
  GetMetricDataCommand,
  type GetMetricDataCommandInput,
  PutMetricDataCommand,
  type PutMetricDataCommandInput,
} from '@aws-sdk/client-cloudwatch';
import { PurgeQueueCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import test, { type ExecutionContext } from 'ava';
import { mockClient } from 'aws-sdk-client-mock';
import { type EmbeddedEndpoint, startEmbeddedEndpoint } from '../endpoint/embedded.js';
import { type AwsClients, createAwsClients } from '../lib/aws/clients.js';
import { loadConfig } from '../lib/config.js';
import { createLogger } from '../lib/log.js';
import { ensureQueue } from '../pipeline/resources.js';
import { AsgActuator } from '../scaling/aws/asg-actuator.js';
import { HEARTBEAT } from '../scaling/aws/aws-requests.js';
import { ControllerHeartbeat } from '../scaling/aws/heartbeat.js';
import { smallestInstanceLeads } from '../scaling/aws/leadership.js';
import { LOCAL_POLICY, queueDepth, resolvePolicy, ScalingController } from '../scaling/index.js';
import { tempDataDir, testEnv, waitFor } from './helpers/service.js';

const log = createLogger('controller-test');
// 1 s periods; back to zero after 3 empty ones.
const policy = resolvePolicy(
  { periodSeconds: 1, scaleToZero: { emptyPeriods: 3 } },
  { ...LOCAL_POLICY, minCapacity: 0, maxCapacity: 20 },
);

let endpoint: EmbeddedEndpoint;
let clients: AwsClients;

test.before(async () => {
  const dataDir = await tempDataDir('controller');
  endpoint = await startEmbeddedEndpoint({ host: '127.0.0.1', port: 0, dataDir });
  clients = createAwsClients(loadConfig(testEnv(dataDir, { EMBEDDED_PORT: String(endpoint.port) })));
});

test.after.always(async () => {
  clients?.destroy();
  await endpoint?.stop();
});

/** Groups as Auto Scaling would describe them; instances launch (Pending → InService) and terminate on their own. */
class FakeGroups {
  readonly groups = new Map<
    string,
    { desired: number; min: number; max: number; instances: { id: string; state: string }[] }
  >();
  private next = 0;

  add(name: string, min: number, max: number, inService: string[] = []): void {
    this.groups.set(name, {
      desired: inService.length,
      min,
      max,
      instances: inService.map((id) => ({ id, state: 'InService' })),
    });
  }

  describe(name: string): AutoScalingGroup[] {
    const g = this.groups.get(name);
    if (!g) return [];
    return [
      {
        AutoScalingGroupName: name,
        DesiredCapacity: g.desired,
        MinSize: g.min,
        MaxSize: g.max,
        Instances: g.instances.map((i) => ({
          InstanceId: i.id,
          LifecycleState: i.state as never,
          AvailabilityZone: 'x',
          HealthStatus: 'Healthy',
          ProtectedFromScaleIn: false,
        })),
        CreatedTime: new Date(),
        AvailabilityZones: ['x'],
        DefaultCooldown: 0,
        HealthCheckType: 'EC2',
        LaunchConfigurationName: 'lc',
      },
    ];
  }

  setDesired(name: string, desired: number): void {
    const g = this.groups.get(name)!;
    g.desired = desired;
    while (g.instances.length < desired) {
      const instance = { id: `i-${String(++this.next).padStart(4, '0')}`, state: 'Pending' };
      g.instances.push(instance);
      setTimeout(() => (instance.state = 'InService'), 300);
    }
    g.instances.splice(desired);
  }
}

/** An Auto Scaling client for one controller copy, answering from `fake`. */
function clientFor(fake: FakeGroups) {
  const client = new AutoScalingClient({ region: 'us-east-1' });
  const mock = mockClient(client);
  mock.on(DescribeAutoScalingGroupsCommand).callsFake((input: { AutoScalingGroupNames?: string[] }) => ({
    AutoScalingGroups: fake.describe(input.AutoScalingGroupNames![0]!),
  }));
  mock.on(SetDesiredCapacityCommand).callsFake((input: { AutoScalingGroupName: string; DesiredCapacity: number }) => {
    fake.setDesired(input.AutoScalingGroupName, input.DesiredCapacity);
    return {};
  });
  return { client, mock };
}

async function queueWith(name: string, messages: number): Promise<string> {
  const url = await ensureQueue(clients, name, {});
  for (let i = 0; i < messages; i += 10) {
    await clients.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: Array.from({ length: Math.min(10, messages - i) }, (_, j) => ({
          Id: String(j),
          MessageBody: `m${i + j}`,
        })),
      }),
    );
  }
  return url;
}

const desiredCalls = (mock: ReturnType<typeof clientFor>['mock']) =>
  mock.commandCalls(SetDesiredCapacityCommand).map((c) => c.args[0].input.DesiredCapacity);

test('a backlog scales the group out on the count the queue gives (no alarm to wait for); an empty queue brings it back to zero after the empty periods', async (t) => {
  const fake = new FakeGroups();
  fake.add('app-tier', 0, 20);
  const { client, mock } = clientFor(fake);
  const queueUrl = await queueWith('controller-one', 40);
  const actuator = new AsgActuator(client, 'app-tier');
  await actuator.refresh();
  const controller = new ScalingController({
    policy,
    actuator,
    depth: () => queueDepth(clients.sqs, queueUrl),
    log,
    sampleEveryMs: 200,
  });
  controller.start();
  t.teardown(() => controller.stop());

  // No wall-clock bound here (a busy machine delays any timer): what it acted on says it did not wait.
  await waitFor(() => desiredCalls(mock).length > 0, 10_000);
  t.deepEqual(desiredCalls(mock), [4], '40 visible, 10 per instance');
  t.like(controller.status().decisions[0], { rule: 'scale-from-zero', inputs: { visible: 40 } });
  await waitFor(() => actuator.running === 4, 5_000);

  // The work is done: the queue empties; 3 empty periods later the group goes back to zero.
  await clients.sqs.send(new PurgeQueueCommand({ QueueUrl: queueUrl }));
  const emptied = Date.now();
  await waitFor(() => fake.groups.get('app-tier')!.desired === 0, 10_000);
  // Not before the 3 empty periods (a lower bound: slowness can only lengthen it).
  const back = Date.now() - emptied;
  t.true(back >= 2_000, `back to zero ${back} ms after the queue emptied`);
  const status = controller.status();
  t.deepEqual(status.controller, { actuator: 'auto scaling group app-tier', role: 'leader' });
  // Out once, then only in: straight to zero, or (when the scale-in cooldown ran out before the
  // empty periods did, as on a busy machine) through a smaller group first; zero by scale-to-zero.
  const steps = status.decisions.map((d) => `${d.from}→${d.to} ${d.rule}`);
  t.is(steps[0], '0→4 scale-from-zero', steps.join(', '));
  t.regex(steps.at(-1)!, /^\d+→0 scale-to-zero$/, steps.join(', '));
  t.true(
    status.decisions.slice(1).every((d) => d.to < d.from),
    steps.join(', '),
  );
  t.deepEqual(
    desiredCalls(mock),
    status.decisions.map((d) => d.to),
    'each decision applied once',
  );
});

test('three copies at once: only the leader acts; when its instance goes, the next one takes over', async (t) => {
  const fake = new FakeGroups();
  fake.add('app-tier', 0, 20);
  fake.add('web-tier', 1, 3, ['i-web-a', 'i-web-b', 'i-web-c']);
  const queueUrl = await queueWith('controller-three', 25);
  const copies = ['i-web-a', 'i-web-b', 'i-web-c'].map((id) => {
    const { client, mock } = clientFor(fake);
    const actuator = new AsgActuator(client, 'app-tier');
    const controller = new ScalingController({
      policy,
      actuator,
      depth: () => queueDepth(clients.sqs, queueUrl),
      log: log.with({ copy: id }),
      sampleEveryMs: 200,
      leadership: smallestInstanceLeads(client, 'web-tier', id),
    });
    return { id, mock, actuator, controller };
  });
  for (const copy of copies) {
    await copy.actuator.refresh();
    copy.controller.start();
  }
  t.teardown(() => {
    for (const c of copies) c.controller.stop();
  });

  await waitFor(() => fake.groups.get('app-tier')!.desired === 3, 5_000);
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  t.deepEqual(
    copies.map((c) => desiredCalls(c.mock)),
    [[3], [], []],
    'one SetDesiredCapacity, from the leader',
  );
  t.deepEqual(
    copies.map((c) => c.controller.status().controller?.role),
    ['leader', 'standby', 'standby'],
  );

  // The leader's instance is gone; more work arrives.
  fake.groups.get('web-tier')!.instances.shift();
  await queueWith('controller-three', 40);
  await waitFor(() => fake.groups.get('app-tier')!.desired === 7, 6_000);
  // Only the new leader acted: the 40 messages arrive in batches of 10, so a sample may see part of
  // them first (3 → 5 → 7); the old leader and the standby did nothing.
  const [gone, leader, standby] = copies.map((c) => desiredCalls(c.mock));
  t.deepEqual(gone, [3]);
  t.deepEqual(standby, []);
  t.is(leader!.at(-1), 7, JSON.stringify(leader));
  t.deepEqual(
    leader,
    [...leader!].sort((a, b) => (a ?? 0) - (b ?? 0)),
    'scaled out only',
  );
  t.is(copies[1]!.controller.status().controller?.role, 'leader');
});

test('a stopped controller leaves the group as it is and never touches the scaling policies', async (t) => {
  const fake = new FakeGroups();
  fake.add('app-tier', 0, 20);
  const { client, mock } = clientFor(fake);
  const queueUrl = await queueWith('controller-stop', 15);
  const actuator = new AsgActuator(client, 'app-tier');
  await actuator.refresh();
  const controller = new ScalingController({
    policy,
    actuator,
    depth: () => queueDepth(clients.sqs, queueUrl),
    log,
    sampleEveryMs: 200,
  });
  controller.start();
  await waitFor(() => fake.groups.get('app-tier')!.desired === 2, 5_000);
  controller.stop();
  await clients.sqs.send(new PurgeQueueCommand({ QueueUrl: queueUrl }));
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  t.is(fake.groups.get('app-tier')!.desired, 2, 'nothing scaled in after the stop: the alarms are the safety net now');
  const commands = new Set(mock.calls().map((c) => (c.args[0] as object).constructor.name));
  t.deepEqual([...commands].sort(), ['DescribeAutoScalingGroupsCommand', 'SetDesiredCapacityCommand']);
});

// ----- one scaling authority: the heartbeat and the handover -----------------------------------

/** Short periods for a test (the real ones are minutes: scaling/core/handover.ts HANDOVER). */
const TIMING = { periodSeconds: 2, beatSeconds: 0.4, maxGapSeconds: 1.5, clearPeriods: 100 } as const;

/** A CloudWatch client whose GetMetricData answers `perPeriod(periodStart)` heartbeats for every period asked. */
function cloudwatchWith(perPeriod: (start: number) => number) {
  const client = new CloudWatchClient({ region: 'us-east-1' });
  const mock = mockClient(client);
  mock.on(PutMetricDataCommand).resolves({});
  mock.on(GetMetricDataCommand).callsFake((input: GetMetricDataCommandInput) => {
    const period = input.MetricDataQueries![0]!.MetricStat!.Period!;
    const timestamps: Date[] = [];
    const values: number[] = [];
    for (let t = input.StartTime!.getTime() / 1000; t < input.EndTime!.getTime() / 1000; t += period) {
      const n = perPeriod(t);
      if (n > 0) {
        timestamps.push(new Date(t * 1000));
        values.push(n);
      }
    }
    return { MetricDataResults: [{ Id: 'hb', Timestamps: timestamps, Values: values }] };
  });
  return { client, mock };
}

/** A leader-to-be with a heartbeat on `cw`, over a queue of 15 messages and an empty group: started, stopped on teardown. */
async function withHeartbeat(t: ExecutionContext, queue: string, cw: ReturnType<typeof cloudwatchWith>) {
  const fake = new FakeGroups();
  fake.add('app-tier', 0, 20);
  const asg = clientFor(fake);
  const queueUrl = await queueWith(queue, 15);
  const actuator = new AsgActuator(asg.client, 'app-tier');
  await actuator.refresh();
  const heartbeat = new ControllerHeartbeat({ cloudwatch: cw.client, group: 'app-tier', log, timing: TIMING });
  const controller = new ScalingController({
    policy,
    actuator,
    depth: () => queueDepth(clients.sqs, queueUrl),
    log,
    sampleEveryMs: 200,
    handover: heartbeat.lead,
  });
  controller.start();
  t.teardown(() => controller.stop());
  return { asg, heartbeat, controller };
}

test('the leader sends its heartbeat and holds while a recent period had none; it acts once the heartbeats read back fill the window', async (t) => {
  let fallbackMayAct = true;
  const cw = cloudwatchWith(() => (fallbackMayAct ? 0 : 3));
  const { asg, controller } = await withHeartbeat(t, 'controller-handover', cw);

  // It says it is alive, reads the heartbeats back, finds a period without one: it holds.
  await waitFor(() => cw.mock.commandCalls(GetMetricDataCommand).length >= 2, 8_000);
  t.is(controller.status().controller?.role, 'handover');
  t.deepEqual(desiredCalls(asg.mock), [], 'nothing set while the CloudWatch policies may still act');
  const sent = cw.mock.commandCalls(PutMetricDataCommand).map((c) => c.args[0].input as PutMetricDataCommandInput);
  t.true(sent.length >= 1);
  t.like(sent[0], { Namespace: HEARTBEAT.namespace });
  t.like(sent[0]!.MetricData![0], {
    MetricName: HEARTBEAT.metricName,
    Dimensions: [{ Name: 'AutoScalingGroupName', Value: 'app-tier' }],
    Value: 1,
  });

  // Every period of the window holds a heartbeat (another copy was alive): it takes over and acts.
  fallbackMayAct = false;
  await waitFor(() => desiredCalls(asg.mock).length > 0, 8_000);
  t.deepEqual(desiredCalls(asg.mock), [2], '15 visible, 10 per instance');
  t.is(controller.status().controller?.role, 'leader');
});

test('a controller that cannot send its heartbeat never acts: the CloudWatch policies stay in charge', async (t) => {
  const cw = cloudwatchWith(() => 3);
  cw.mock.on(PutMetricDataCommand).rejects(Object.assign(new Error('not allowed'), { name: 'AccessDenied' }));
  const { asg, heartbeat, controller } = await withHeartbeat(t, 'controller-no-heartbeat', cw);
  await waitFor(() => cw.mock.commandCalls(PutMetricDataCommand).length >= 3, 8_000);
  t.deepEqual(desiredCalls(asg.mock), []);
  t.is(controller.status().controller?.role, 'handover');
  t.is(heartbeat.state().lastBeat, null);
  t.is(cw.mock.commandCalls(GetMetricDataCommand).length, 0, 'nothing to read back without a heartbeat of its own');
});

test('a group grown by another scaler counts as a scale-out: no scale-in before minimumRunSeconds have passed since', async (t) => {
  const fake = new FakeGroups();
  fake.add('app-tier', 0, 20);
  const asg = clientFor(fake);
  const queueUrl = await queueWith('controller-observed', 0);
  const actuator = new AsgActuator(asg.client, 'app-tier');
  await actuator.refresh();
  const held = resolvePolicy({ minimumRunSeconds: 3, scaleToZero: { emptyPeriods: 1 } }, policy);
  const controller = new ScalingController({
    policy: held,
    actuator,
    depth: () => queueDepth(clients.sqs, queueUrl),
    log,
    sampleEveryMs: 200,
  });
  controller.start();
  t.teardown(() => controller.stop());
  await waitFor(() => asg.mock.commandCalls(DescribeAutoScalingGroupsCommand).length >= 3, 5_000);
  // The CloudWatch policies (before a handover), or a person, start two instances.
  fake.setDesired('app-tier', 2);
  await waitFor(() => fake.groups.get('app-tier')!.desired === 0, 10_000);
  const [back] = controller.status().decisions;
  t.like(back, { from: 2, to: 0, rule: 'scale-to-zero' });
  t.not(back!.inputs.lastScaleOut, null, 'the growth it saw is its last scale-out');
  t.true(back!.t - back!.inputs.lastScaleOut! >= 3, `scaled in ${back!.t - back!.inputs.lastScaleOut!} s after`);
  t.deepEqual(desiredCalls(asg.mock), [0]);
});
