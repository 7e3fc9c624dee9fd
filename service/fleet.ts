/**
 * The app tier as the composition root sees it: one interface, two fleets.
 *
 *   LocalFleet  this machine's worker processes (`npm start`): a fixed WORKERS, or the local
 *               controller moving them between WORKERS_MIN and WORKERS_MAX (1 s periods)
 *   AwsFleet    the app tier's Auto Scaling group (SCALER=aws): the controller every
 *               SCALER_PERIOD_SECONDS, one copy acting per web tier (WEB_AUTO_SCALING_GROUP), and
 *               only while the group's CloudWatch policies stand aside for its heartbeat
 *               (scaling/aws/heartbeat.ts: one scaling authority at a time)
 *
 * A fleet starts in two halves: its workers when it is created (they are stopped late, after the
 * web tier drained, so they finish what they hold) and its scaling last (stopped first). Either way
 * it answers what the status document, the metrics and load shedding (`AdmissionInputs`) ask: the
 * queue as last read, the workers wanted and running, the recent decisions — its controller's when
 * it has one, its own readings otherwise.
 */
import { type AwsClients, type ControlClients, createControlClients } from '../lib/aws/clients.js';
import { InstanceMetadata } from '../lib/aws/imds.js';
import { type Config, childEnv } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import { convertedOnnxModel, fetchModel, resolveModel } from '../models/index.js';
import type { MetricsJson } from '../pipeline/metrics.js';
import type { Resources } from '../pipeline/resources.js';
import type { AdmissionInputs } from '../pipeline/submit/admission.js';
import { AsgActuator } from '../scaling/aws/asg-actuator.js';
import { ControllerHeartbeat } from '../scaling/aws/heartbeat.js';
import { smallestInstanceLeads } from '../scaling/aws/leadership.js';
import {
  type Actuator,
  CONTROLLER_POLICY,
  type DecisionRecord,
  depthWithActivity,
  LOCAL_POLICY,
  loadPolicy,
  type QueueDepth,
  queueDepth,
  ScalingController,
  type ScalingPolicy,
  type ServiceStatus,
} from '../scaling/index.js';
import type { Stoppable } from './composition.js';
import { WorkerPool } from './pool.js';

/** What a fleet reports: the status document without the runtime. */
export type FleetStatus = Omit<ServiceStatus, 'runtime'>;

export interface Fleet extends AdmissionInputs, Stoppable {
  status(): Promise<FleetStatus>;
  /** Recent scaling decisions, oldest first (none without a controller). */
  decisions(): readonly DecisionRecord[];
  /** Node.js versions of the workers this process runs (none on AWS). */
  readonly nodeVersions: readonly string[];
  /** Metrics of the worker processes this process runs (none on AWS). */
  workerMetrics(): Promise<MetricsJson[]>;
  /**
   * The initial size and the controller, once the web tier takes uploads. `activity.waiting`: the
   * images this web process accepted and still waits for, which a read of the queue can miss.
   */
  startScaling(activity: { readonly waiting: number }): Promise<Stoppable>;
}

export interface FleetDeps {
  readonly config: Config;
  readonly clients: AwsClients;
  readonly resources: Resources;
  readonly log: Logger;
}

/** The fleet a configuration asks for: the Auto Scaling group with SCALER=aws, this machine's processes otherwise. */
export function createFleet(deps: FleetDeps): Promise<Fleet> {
  return deps.config.scaler.mode === 'aws' ? AwsFleet.create(deps) : LocalFleet.create(deps);
}

/** What both fleets share: an actuator, a controller once scaling runs, or a reading a second without one. */
abstract class ActuatedFleet implements Fleet {
  protected controller: ScalingController | undefined;
  protected poller: DepthPoller | undefined;
  protected readonly readDepth: () => Promise<QueueDepth>;

  protected constructor(
    protected readonly deps: FleetDeps,
    protected readonly actuator: Actuator,
  ) {
    this.readDepth = () => queueDepth(deps.clients.sqs, deps.resources.requestQueueUrl);
  }

  abstract readonly nodeVersions: readonly string[];
  abstract workerMetrics(): Promise<MetricsJson[]>;
  abstract startScaling(activity: { readonly waiting: number }): Promise<Stoppable>;
  abstract stop(): Promise<void> | void;

  depth(): QueueDepth | undefined {
    return this.controller ? this.controller.status().queue : this.poller?.latest;
  }

  workers(): { desired: number; running: number } {
    return this.controller
      ? this.controller.status().workers
      : { desired: this.actuator.desired, running: this.actuator.running };
  }

  decisions(): readonly DecisionRecord[] {
    return this.controller?.status().decisions ?? [];
  }

  async status(): Promise<FleetStatus> {
    if (this.controller) return this.controller.status();
    return { queue: this.poller?.latest ?? (await this.readDepth()), workers: this.workers(), decisions: [] };
  }

  /** Runs `controller` from now on (its own sampling replaces the poller). */
  protected run(controller: ScalingController): Stoppable {
    this.controller = controller;
    controller.start();
    return controller;
  }

  /** No controller: the queue is read once a second for the status and for load shedding. */
  protected poll(): Stoppable {
    this.poller = new DepthPoller(this.readDepth);
    return this.poller;
  }
}

/**
 * This machine's worker processes. The model is fetched (and converted) here once, before the first
 * worker starts, instead of in every worker at once.
 */
export class LocalFleet extends ActuatedFleet {
  private constructor(
    deps: FleetDeps,
    readonly pool: WorkerPool,
    /** The local controller's policy; undefined with a fixed WORKERS (or SCALER=off). */
    private readonly policy: ScalingPolicy | undefined,
  ) {
    super(deps, pool);
  }

  static async create(deps: FleetDeps): Promise<LocalFleet> {
    const { config, log } = deps;
    if (config.worker.count !== 0) await prefetchModel(deps);
    const pool = new WorkerPool({
      env: childEnv(config),
      log: log.child('pool'),
      stopGraceMs: (config.worker.visibilityTimeoutSeconds + config.worker.receiveWaitSeconds) * 1000,
    });
    const controlled = config.scaler.mode === 'local' && config.worker.count === undefined;
    const policy = controlled
      ? await policyOf(config, { ...LOCAL_POLICY, minCapacity: config.worker.min, maxCapacity: config.worker.max })
      : undefined;
    return new LocalFleet(deps, pool, policy);
  }

  get nodeVersions(): readonly string[] {
    return this.pool.nodeVersions;
  }

  workerMetrics(): Promise<MetricsJson[]> {
    return this.pool.collectMetrics();
  }

  async startScaling(): Promise<Stoppable> {
    const { config, log } = this.deps;
    if (!this.policy) {
      await this.pool.resize(config.worker.count ?? 0);
      return this.poll();
    }
    await this.pool.resize(config.worker.min);
    // Workers report each image they finish: a queue that reads empty while they work is not idle.
    const depth = depthWithActivity(this.readDepth, () => this.pool.lastActivityAt);
    return this.run(
      new ScalingController({ policy: this.policy, actuator: this.pool, depth, log: log.child('autoscaler') }),
    );
  }

  /** Every worker finishes what it holds, then exits. */
  stop(): Promise<void> {
    return this.pool.stop();
  }
}

/**
 * The app tier's Auto Scaling group, moved by this web instance's controller when it leads and the
 * group's CloudWatch policies stand aside (its heartbeat says it is alive; once it dies or stops,
 * they take over on their own).
 */
export class AwsFleet extends ActuatedFleet {
  readonly nodeVersions: readonly string[] = [];

  private constructor(
    deps: FleetDeps,
    private readonly control: ControlClients,
    private readonly group: AsgActuator,
    private readonly policy: ScalingPolicy,
    private readonly leadership: (() => Promise<boolean>) | undefined,
    private readonly heartbeat: ControllerHeartbeat,
  ) {
    super(deps, group);
  }

  static async create(deps: FleetDeps): Promise<AwsFleet> {
    const { config } = deps;
    const control = createControlClients(config.aws.region);
    try {
      const group = new AsgActuator(control.autoscaling, config.ec2.autoScalingGroup!);
      await group.refresh();
      // The simulator's controller preset (docs/scaling.md): the same decide(), SCALER_PERIOD_SECONDS
      // periods, back to the minimum 3 empty periods after the work — within the group's own bounds.
      const policy = await policyOf(config, {
        ...CONTROLLER_POLICY,
        periodSeconds: config.scaler.periodSeconds,
        minCapacity: group.bounds.min,
        maxCapacity: group.bounds.max,
      });
      const web = config.ec2.webAutoScalingGroup;
      const leadership =
        web === undefined
          ? undefined
          : smallestInstanceLeads(
              control.autoscaling,
              web,
              await new InstanceMetadata(config.ec2.imdsEndpoint).instanceId(),
            );
      const heartbeat = new ControllerHeartbeat({
        cloudwatch: control.cloudwatch,
        group: group.group,
        log: deps.log.child('heartbeat'),
      });
      return new AwsFleet(deps, control, group, policy, leadership, heartbeat);
    } catch (err) {
      control.destroy();
      throw err;
    }
  }

  async workerMetrics(): Promise<MetricsJson[]> {
    return [];
  }

  async startScaling(activity: { readonly waiting: number }): Promise<Stoppable> {
    // The web tier knows what it still waits for: images in work are not idle time.
    const depth = async (): Promise<QueueDepth> => {
      const d = await this.readDepth();
      return { ...d, inFlight: Math.max(d.inFlight, activity.waiting) };
    };
    const { policy, leadership } = this;
    // Several times a second on AWS costs money for nothing: a few samples per period are enough.
    const sampleEveryMs = Math.min(500, policy.periodSeconds * 1000);
    return this.run(
      new ScalingController({
        policy,
        actuator: this.group,
        depth,
        log: this.deps.log.child('autoscaler'),
        sampleEveryMs,
        ...(leadership ? { leadership } : {}),
        handover: this.heartbeat.lead,
      }),
    );
  }

  stop(): void {
    this.control.destroy();
  }
}

/** The scaling policy: `base`, under the SCALING_POLICY file when one is set. */
function policyOf(config: Config, base: ScalingPolicy): Promise<ScalingPolicy> {
  return config.worker.policyFile ? loadPolicy(config.worker.policyFile, base) : Promise.resolve(base);
}

/** The queue as last read, one reading a second (for a fleet without a controller, which samples it itself). */
class DepthPoller implements Stoppable {
  private last: QueueDepth | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(read: () => Promise<QueueDepth>, everyMs = 1_000) {
    this.timer = setInterval(
      () =>
        void read().then(
          (d) => (this.last = d),
          () => undefined,
        ),
      everyMs,
    );
    this.timer.unref();
  }

  get latest(): QueueDepth | undefined {
    return this.last;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Downloads (and, for a converted model, converts) the model once here, not in every worker at once. */
async function prefetchModel({ config, clients }: FleetDeps): Promise<void> {
  const manifest = await resolveModel(config.model.source, { modelsDir: config.model.modelsDir });
  const local = await fetchModel(manifest, { cacheDir: config.model.cacheDir, s3: clients.s3 });
  if (manifest.format === 'tfjs-layers' && manifest.runtime === 'onnxruntime')
    await convertedOnnxModel(manifest, local.path, { cacheDir: config.model.cacheDir });
}
