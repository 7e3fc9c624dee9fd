/**
 * Public surface of `scaling/` for the service and other callers: the policy type and its loader,
 * the pure decision function, the controller and its status document (`core/`), the AWS setup
 * (`aws/`). The simulator that runs the same policy is a tool (`tools/sim/`).
 */
export { ScalingError, PolicyValidationError, type ScalingErrorCode } from './core/errors.js';
export {
  CONTROLLER_POLICY,
  DEFAULT_POLICY,
  LOCAL_POLICY,
  resolvePolicy,
  targetBacklogPerInstance,
  validatePolicy,
  type BacklogTarget,
  type ScaleFromZeroPolicy,
  type ScaleToZeroPolicy,
  type ScalingPolicy,
} from './core/policy.js';
export { loadPolicy } from './core/policy-file.js';
export {
  decide,
  trackSignals,
  NO_SIGNALS,
  type Datapoint,
  type Decision,
  type DecisionRule,
  type Observation,
  type Signals,
} from './core/decide.js';
export { ScalingController, DepthTimeoutError, type Actuator, type ControllerOptions } from './core/controller.js';
export { depthWithActivity, queueDepth, type QueueDepth } from './core/queue-depth.js';
export type {
  AutoscalerStatus,
  ControllerInfo,
  DecisionInputs,
  DecisionRecord,
  PolicySummary,
  ResizeOutcome,
  RuntimeInfo,
  ServiceStatus,
} from './core/status.js';
export { runSetup, runTeardown, type SetupReport } from './aws/setup.js';
