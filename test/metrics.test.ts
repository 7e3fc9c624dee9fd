/**
 * GET /metrics against the real service (local autoscaler from zero, a worker process, real photos):
 * scraped before and after a few uploads, the numbers move as they should — images by outcome,
 * stage histograms, errors by code, the workers' own counters and batch sizes (gathered from
 * their processes), queue and worker gauges, scaling decisions by rule.
 */
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { readGroundTruth } from './helpers/model-fixtures.js';
import { postForm, startTestService, tempDataDir, waitFor } from './helpers/service.js';

/** `name{labels} value` lines into a map keyed `name{labels}` (labels as written). */
function parse(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return values;
}

const scrape = async (url: string) => {
  const response = await fetch(`${url}/metrics`);
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    values: parse(await response.text()),
  };
};

test('metrics move with the work: images, stages, errors, workers, batches, decisions', async (t) => {
  const service = await startTestService(await tempDataDir('metrics'), {
    WORKERS: '',
    WORKERS_MIN: '0',
    WORKERS_MAX: '1',
  });
  t.teardown(() => service.stop());
  const url = service.web.url;
  const model = service.config.model.source;
  const photos = (await readGroundTruth()).slice(120, 123);

  const before = await scrape(url);
  t.is(before.status, 200);
  t.regex(before.type, /^text\/plain/);
  const get = (m: Map<string, number>, key: string) => m.get(key) ?? 0;
  t.is(get(before.values, `eir_images_total{outcome="classified",model="${model}"}`), 0);
  t.true(before.values.has('eir_queue_messages{state="visible"}'));
  t.is(get(before.values, 'eir_workers{state="running"}'), 0, 'from zero');

  for (const photo of photos) {
    const { status } = await postForm(url, '/api/v1/classify', [
      { field: 'f', name: photo.file, bytes: await readFile(photo.path) },
    ]);
    t.is(status, 200);
  }
  const refused = await postForm(url, '/api/v1/classify', [
    { field: 'f', name: 'notes.jpg', bytes: Buffer.from('not an image at all') },
  ]);
  t.is(refused.status, 415);

  const after = await scrape(url);
  t.is(get(after.values, `eir_images_total{outcome="classified",model="${model}"}`), 3);
  for (const stage of ['upload', 's3Put', 'enqueue', 'queueWait', 's3Get', 'decode', 'infer', 'persist', 'total']) {
    t.is(
      get(after.values, `eir_stage_duration_ms_count{stage="${stage}"}`) -
        get(before.values, `eir_stage_duration_ms_count{stage="${stage}"}`),
      3,
      stage,
    );
  }
  t.is(get(after.values, 'eir_http_errors_total{code="NOT_AN_IMAGE"}'), 1);
  // From the worker process, gathered over IPC.
  t.is(get(after.values, `eir_worker_images_total{outcome="classified",model="${model}"}`), 3);
  t.true(get(after.values, 'eir_batch_size_count') >= 1);
  t.is(get(after.values, 'eir_batch_size_sum'), 3, 'every image in some batch');
  t.true(get(after.values, 'eir_scaling_decisions_total{rule="scale-from-zero",action="scale-out"}') >= 1);
  t.true(
    after.values.has('eir_web_process_cpu_seconds_total') && after.values.has('eir_worker_process_cpu_seconds_total'),
    "each process's own numbers",
  );
  await waitFor(async () => get((await scrape(url)).values, 'eir_workers{state="running"}') === 1, 10_000);
});
