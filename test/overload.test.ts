/**
 * Load held: a burst larger than the fleet can answer within REQUEST_TIMEOUT_MS. Images that could
 * not be answered in time are refused at once — 503 OVERLOADED with Retry-After, in words — and
 * every image accepted is answered, to its own client, in time. Real service, one worker, real
 * photos, the result cache off (the same photos go round).
 */
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { readGroundTruth } from './helpers/model-fixtures.js';
import { postClassic, startTestService, tempDataDir } from './helpers/service.js';

test('a burst past what one worker answers in 5 s: the excess is refused at once with Retry-After; the rest is answered in time', async (t) => {
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
  t.log(
    `sent ${count} in ${((performance.now() - started) / 1000).toFixed(1)} s: ${answered.length} answered, ${refused.length} refused, slowest answer ${(Math.max(...answered.map((r) => r.ms)) / 1000).toFixed(1)} s, slowest refusal ${(Math.max(...refused.map((r) => r.ms)) / 1000).toFixed(2)} s`,
  );
  t.is(
    answered.length + refused.length,
    count,
    JSON.stringify(results.filter((r) => r.status !== 200 && r.status !== 503).slice(0, 2)),
  );
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
  // images answered (the four first, and the burst's), none of the refused.
  let stored = 0;
  for await (const _key of service.store.keys('input')) stored++;
  t.is(stored, 4 + answered.length, `${stored} inputs stored for ${answered.length} + 4 answered`);
});
