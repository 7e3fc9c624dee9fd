/**
 * Public surface of `scaling/` for the service and other callers: the policy type and its loader,
 * the pure decision function, the controller and its status document (`core/`), the AWS setup
 * (`aws/`). The simulator that runs the same policy is a tool (`tools/sim/`).
 */

export { runSetup, runTeardown, type SetupReport } from './aws/setup.js';
export { type Actuator, type ControllerOptions, DepthTimeoutError, ScalingController } from './core/controller.js';
export {
  type Datapoint,
  type Decision,
  type DecisionRule,
  decide,
  NO_SIGNALS,
  type Observation,
  type Signals,
  trackSignals,
} from './core/decide.js';
export { PolicyValidationError, ScalingError, type ScalingErrorCode } from './core/errors.js';
export {
  type BacklogTarget,
  CONTROLLER_POLICY,
  DEFAULT_POLICY,
  LOCAL_POLICY,
  resolvePolicy,
  type ScaleFromZeroPolicy,
  type ScaleToZeroPolicy,
  type ScalingPolicy,
  targetBacklogPerInstance,
  validatePolicy,
} from './core/policy.js';
export { loadPolicy } from './core/policy-file.js';
export { depthWithActivity, type QueueDepth, queueDepth } from './core/queue-depth.js';
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
