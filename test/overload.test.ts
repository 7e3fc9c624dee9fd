/**
 * Load held: a burst larger than the fleet can answer within REQUEST_TIMEOUT_MS. Images that could
 * not be answered in time are refused at once — 503 OVERLOADED with Retry-After, in words — before
 * anything is stored, and every image accepted is answered, to its own client (in time, unless the
 * machine slowed after admitting it: then its job completes). How many are answered in time is the
 * bench's to measure. Real service, one worker, real photos, the result cache off.
 */
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { readGroundTruth } from './helpers/model-fixtures.js';
import { postClassic, startTestService, tempDataDir, waitFor } from './helpers/service.js';

test('a burst past what one worker answers in 5 s: the excess is refused at once with Retry-After and never stored; every image accepted is classified under its own name', async (t) => {
  const service = await startTestService(await tempDataDir('overload'), {
    WORKERS: '1',
    REQUEST_TIMEOUT_MS: '5000',
    RESULT_CACHE: 'off',
  });
  t.teardown(() => service.stop());
  const photos = await readGroundTruth();
  // A few answers first: the service learns how fast its worker is.
  for (const photo of photos.slice(0, 4))
    t.is((await postClassic(service.web.url, photo.path, photo.file)).status, 200);

  const count = 600;
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const photo = photos[i % photos.length]!;
      const name = `burst-${i}`;
      const sent = performance.now();
      const form = new FormData();
      form.append('myfile', new Blob([await readFile(photo.path)]), `${name}.jpg`);
      const response = await fetch(`${service.web.url}/`, { method: 'POST', body: form });
      const body = await response.text();
      return {
        name,
        status: response.status,
        body,
        retryAfter: response.headers.get('retry-after'),
        ms: performance.now() - sent,
      };
    }),
  );
  const answered = results.filter((r) => r.status === 200);
  const refused = results.filter((r) => r.status === 503);
  // Admission is a prediction from what the service measured; when the machine slows after an image
  // was admitted (a busy neighbour on the same cores), its answer can miss the 5 s. How often is for
  // the bench to say; here such an image must still be classified, under its own name.
  const late = results.filter((r) => r.status === 504);
  t.log(
    `sent ${count} in ${((performance.now() - started) / 1000).toFixed(1)} s: ${answered.length} answered, ${refused.length} refused, ${late.length} answered late; slowest answer ${(Math.max(...answered.map((r) => r.ms)) / 1000).toFixed(1)} s, slowest refusal ${(Math.max(...refused.map((r) => r.ms)) / 1000).toFixed(2)} s`,
  );
  t.is(
    answered.length + refused.length + late.length,
    count,
    JSON.stringify(results.filter((r) => ![200, 503, 504].includes(r.status)).slice(0, 2)),
  );
  for (const r of late) {
    const { error } = JSON.parse(r.body) as { error: { code: string; location: string } };
    t.is(error.code, 'TIMEOUT');
    let job: { status: string; result?: { file: string } } = { status: 'pending' };
    await waitFor(async () => {
      job = (await (await fetch(`${service.web.url}${error.location}`)).json()) as typeof job;
      return job.status !== 'pending';
    }, 60_000);
    t.is(job.status, 'done');
    t.is(job.result?.file, `${r.name}.jpg`);
  }
  t.true(refused.length > 0, 'some were refused');
  t.true(answered.length > 0, 'some were answered');
  for (const r of answered) t.true(r.body.startsWith(`${r.name},`), r.body);
  for (const r of refused) {
    const { error } = JSON.parse(r.body) as { error: { code: string; message: string; retryAfterSeconds: number } };
    t.is(error.code, 'OVERLOADED');
    t.regex(
      error.message,
      /overloaded: an image sent now would be answered in about \d+ s; it takes only what it can answer within 4 s \(80% of the 5 s an answer may take\); try again in \d+ s/,
    );
    t.true(Number(r.retryAfter) >= 1, `Retry-After ${r.retryAfter}`);
    t.is(Number(r.retryAfter), error.retryAfterSeconds);
  }
  // Refused at once, before anything was stored or queued: the input bucket holds exactly the
  // images accepted (the four first, and the burst's), none of the refused.
  let stored = 0;
  for await (const _key of service.store.keys('input')) stored++;
  t.is(
    stored,
    4 + answered.length + late.length,
    `${stored} inputs stored for 4 + ${answered.length + late.length} accepted`,
  );
});
