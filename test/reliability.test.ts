/**
 * Fault injection against the service as `npm start` runs it: embedded endpoint (which keeps its
 * data, so it is also killed), two worker processes, the default visibility timeout (10 s: what a
 * crashed worker's images wait for). The scenarios are in `scenarios/faults.ts`.
 */

import { startTestService, tempDataDir } from './helpers/service.js';
import { faultScenarios } from './scenarios/faults.js';

faultScenarios('embedded', { endpointSurvivesKill: true }, async () => {
  // The cache off: the same photos go round several times, and every one must go through a worker.
  const service = await startTestService(await tempDataDir('reliability'), { WORKERS: '2', RESULT_CACHE: 'off' });
  return { service, endpointPid: () => service.endpointPid };
});
