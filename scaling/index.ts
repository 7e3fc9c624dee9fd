/**
 * Public surface of `scaling/` for the local autoscaler and other callers:
 * the policy type and its loader, the pure decision function, the simulator, the AWS setup.
 */
export { ScalingError, PolicyValidationError, type ScalingErrorCode } from './errors.js';
export {
  DEFAULT_POLICY,
  LOCAL_POLICY,
  resolvePolicy,
  targetBacklogPerInstance,
  validatePolicy,
  type BacklogTarget,
  type ScaleFromZeroPolicy,
  type ScaleToZeroPolicy,
  type ScalingPolicy,
} from './policy.js';
export { loadPolicy } from './policy-file.js';
export { decide, trackSignals, NO_SIGNALS, type Datapoint, type Decision, type DecisionRule, type Observation, type Signals } from './decide.js';
export { simulate, environmentPreset, type SimEnvironment, type SimMode, type SimResult, type SimSummary } from './simulator.js';
export { loadTrace, type Trace } from './trace.js';
export { runSetup, runTeardown, type SetupReport } from './setup.js';
