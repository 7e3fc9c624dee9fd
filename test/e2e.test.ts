/**
 * End to end against the service as `npm start` runs it (embedded endpoint in its own process, two
 * worker processes, web tier). The scenarios are in `scenarios/pipeline.ts`.
 */
import test from 'ava';
import { startTestService, tempDataDir } from './helpers/service.js';
import { pipelineScenarios } from './scenarios/pipeline.js';

pipelineScenarios('embedded', { fullSample: true }, async () =>
  startTestService(await tempDataDir('e2e'), { WORKERS: '2', MAX_UPLOAD_BYTES: String(4 * 1024 * 1024) }),
);

test('an older Node.js is refused with a message that says what to do', async (t) => {
  const { nodeVersionProblem, REQUIRED_NODE_MAJOR } = await import('../scripts/lib/node-version.mjs');
  t.is(REQUIRED_NODE_MAJOR, 24);
  t.is(nodeVersionProblem('24.12.0', '/x/node'), undefined);
  t.is(nodeVersionProblem('26.1.0', '/x/node'), undefined);
  t.regex(
    nodeVersionProblem('20.20.2', '/usr/bin/node')!,
    /needs Node\.js 24 or newer; \/usr\/bin\/node is v20\.20\.2\.\nRun it through npm/,
  );
});
