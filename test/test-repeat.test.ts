/** `npm run test:repeat` names each failing test of a run from ava's own output. */
import test from 'ava';
import { failuresOf } from '../tools/test-repeat.js';

test('failing tests are named from ava output: failures, rejections, thrown errors and timeouts; passes are not', (t) => {
  const output = [
    '  ✔ e2e › embedded: health and readiness (1.2s)',
    '  ✘ [fail]: external-endpoint › external: jobs answer as documented the new result is among the most recent',
    '  ✘ [fail]: interop › wget --post-file on the API Rejected promise returned by test',
    '  ✘ [fail]: overload › a burst Error thrown in test',
    '  ✘ Timed out while running tests',
    '  ✘ [fail]: external-endpoint › external: jobs answer as documented the new result is among the most recent',
    '  1 test passed',
  ].join('\n');
  t.deepEqual(failuresOf(output), [
    'external-endpoint › external: jobs answer as documented the new result is among the most recent',
    'interop › wget --post-file on the API',
    'overload › a burst',
    'Timed out while running tests',
  ]);
  t.deepEqual(failuresOf('  ✔ a › b (3s)\n  2 tests passed\n'), []);
});
