/**
 * The result cache against the real service: the same bytes again (under any name, either protocol)
 * are answered from the earlier classification — with their own request id, input object,
 * `results/<id>.json` and classic output — and never when the model changes or the cache is off.
 */
import { readFile } from 'node:fs/promises';
import test from 'ava';
import type { ClassificationResult } from '../pipeline/contract/messages.js';
import type { Service } from '../service/service.js';
import { readGroundTruth } from './helpers/model-fixtures.js';
import { postClassic, postForm, startTestService, tempDataDir } from './helpers/service.js';

const stored = async (service: Service, id: string) => (await service.store.getResult(id)) as ClassificationResult;
const inputsOf = async (service: Service, id: string) => {
  const keys: string[] = [];
  for await (const key of service.store.keys('input', `${id}/`)) keys.push(key);
  return keys;
};

test('the same bytes again are answered from the cache, as a request of their own; a model change or RESULT_CACHE=off classifies afresh', async (t) => {
  const dataDir = await tempDataDir('cache');
  const [photo] = (await readGroundTruth()).slice(60, 61);
  const bytes = await readFile(photo!.path);

  const first = await startTestService(dataDir, { WORKERS: '1' });
  let originalId: string;
  let label: string;
  try {
    const a = await postForm(first.web.url, '/api/v1/classify', [{ field: 'f', name: 'original.jpg', bytes }]);
    t.is(a.status, 200, JSON.stringify(a.json));
    originalId = a.json.results[0].id;
    label = a.json.results[0].label;
    t.is((await stored(first, originalId)).cachedFrom, undefined, 'the first time it is classified');
    t.is(typeof a.json.results[0].timings.infer, 'number');

    // Same bytes, another name, the classic protocol: answered from the cache.
    const b = await postClassic(first.web.url, photo!.path, "grandma's copy.jpeg");
    t.is(b.status, 200, b.body);
    t.is(b.body, `grandma's copy,${label}`);
    const c = await postForm(first.web.url, '/api/v1/classify', [{ field: 'f', name: 'third.jpg', bytes }]);
    const third = c.json.results[0];
    t.not(third.id, originalId);
    t.is(third.label, label);
    t.is(typeof third.timings.cacheLookup, 'number');
    t.is(third.timings.infer, undefined, 'no inference');
    const record = await stored(first, third.id);
    t.is(record.cachedFrom, originalId);
    t.is(record.file, 'third.jpg');
    t.deepEqual(await inputsOf(first, third.id), [`${third.id}/third.jpg`]);
    t.is(await first.store.getClassicOutput("grandma's copy"), `grandma's copy,${label}`);
    const job = (await (await fetch(`${first.web.url}/api/v1/jobs/${third.id}`)).json()) as {
      status: string;
      result: { label: string };
    };
    t.is(job.status, 'done');
    t.is(job.result.label, label);
  } finally {
    await first.stop();
  }

  // After a restart the memory is empty; the bucket still answers.
  const again = await startTestService(dataDir, { WORKERS: '1' });
  try {
    const d = await postForm(again.web.url, '/api/v1/classify', [{ field: 'f', name: 'after-restart.jpg', bytes }]);
    t.is((await stored(again, d.json.results[0].id)).cachedFrom, originalId);
  } finally {
    await again.stop();
  }

  // Another model: its own fingerprint, a fresh classification.
  const other = await startTestService(dataDir, { WORKERS: '1', MODEL: 'mobilenet-v1-0.25-224-tfjs-graph' });
  try {
    const e = await postForm(other.web.url, '/api/v1/classify', [{ field: 'f', name: 'other-model.jpg', bytes }]);
    t.is(e.json.results[0].model, 'mobilenet-v1-0.25-224-tfjs-graph');
    t.is((await stored(other, e.json.results[0].id)).cachedFrom, undefined);
  } finally {
    await other.stop();
  }

  // The cache off: classified again even though an entry exists.
  const off = await startTestService(dataDir, { WORKERS: '1', RESULT_CACHE: 'off' });
  try {
    const f = await postForm(off.web.url, '/api/v1/classify', [{ field: 'f', name: 'no-cache.jpg', bytes }]);
    t.is(f.json.results[0].label, label);
    t.is((await stored(off, f.json.results[0].id)).cachedFrom, undefined);
  } finally {
    await off.stop();
  }
});
