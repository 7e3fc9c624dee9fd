/**
 * End to end through the real HTTP server, the real endpoint, real worker processes, the real
 * default model and real ImageNet photos. Registered by `e2e.test.ts` (embedded endpoint) and
 * `external-endpoint.test.ts` (an endpoint reached only through the standard AWS variables).
 * Every answer is also checked against the service's OpenAPI document: its status documented for
 * the route, its content type, and its body against the schema.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import test, { type ExecutionContext } from 'ava';
import sharp from 'sharp';
import { childEnv, projectRoot } from '../../lib/config.js';
import { type Classifier, DEFAULT_MODEL_ID, loadClassifier } from '../../models/index.js';
import { resultKey } from '../../pipeline/contract/keys.js';
import { decodeImage } from '../../pipeline/images.js';
import type { Service } from '../../service/service.js';
import { type GroundTruth, readGroundTruth } from '../helpers/model-fixtures.js';
import { type Answer, answerOf, OpenApiChecker } from '../helpers/openapi.js';
import { mapLimit, postClassic, postForm, shortLabel } from '../helpers/service.js';

const run = promisify(execFile);

export interface PipelineOptions {
  /** Also classify all 250 sample photos through the classic protocol and check the accuracy. */
  readonly fullSample: boolean;
}

export function pipelineScenarios(mode: string, options: PipelineOptions, start: () => Promise<Service>): void {
  let service: Service;
  let url: string;
  let photos: GroundTruth[];
  let api: OpenApiChecker;

  test.before(async () => {
    photos = await readGroundTruth();
    service = await start();
    url = service.web.url;
    api = await OpenApiChecker.load(url);
  });

  /** The answer is what the OpenAPI document says `method path` answers. */
  function documented(t: ExecutionContext, method: 'get' | 'post', path: string, answer: Answer, what = ''): void {
    t.deepEqual(api.problems(method, path, answer), [], `${method.toUpperCase()} ${path} ${what}`);
  }

  /** `fetch`, its answer read and checked against the document. */
  async function call(
    t: ExecutionContext,
    method: 'get' | 'post',
    path: string,
    url: string,
    init: RequestInit = {},
  ): Promise<Answer & { json: any }> {
    const answer = await answerOf(await fetch(url, { method: method.toUpperCase(), ...init }));
    documented(t, method, path, answer);
    return { ...answer, json: answer.contentType.startsWith('application/json') ? JSON.parse(answer.body) : undefined };
  }

  test.after.always(async () => {
    await service?.stop();
  });

  async function getText(bucket: string, key: string): Promise<string> {
    const object = await service.clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return object.Body!.transformToString();
  }

  if (options.fullSample)
    test.serial(
      `${mode}: classic protocol: all 250 sample photos answered <name>,<label>, top-1 >= 70% against ground truth`,
      async (t) => {
        const sample = photos; // the model is deterministic: the whole sample makes the figure exact, not a draw
        const answers = await mapLimit(sample, 8, (photo) => postClassic(url, photo.path, photo.file));
        let correct = 0;
        for (const [i, photo] of sample.entries()) {
          const answer = answers[i]!;
          const name = photo.file.replace(/\.JPEG$/, '');
          t.is(answer.status, 200, answer.body);
          t.regex(answer.type, /^text\/plain/);
          documented(
            t,
            'post',
            '/',
            { status: answer.status, contentType: answer.type, body: answer.body },
            photo.file,
          );
          const [answeredName, label] = answer.body.split(',');
          t.is(answeredName, name);
          t.truthy(label);
          if (label === shortLabel(photo.label)) correct++;
          // The classic result object is in the output bucket: key = name, body = the answer.
          t.is(await getText(service.config.names.outputBucket, name), answer.body);
        }
        const accuracy = correct / sample.length;
        t.log(`top-1 ${correct}/${sample.length} = ${(accuracy * 100).toFixed(1)}%`);
        t.true(accuracy >= 0.7, `top-1 accuracy ${accuracy}`);
      },
    );

  test.serial(`${mode}: 100 concurrent uploads: every client gets the answer for its own photo`, async (t) => {
    // Names that say nothing about the content, and a reference label per photo computed here with
    // the same model and decoder: an answer only matches if it was computed from this very upload.
    const sample = photos
      .slice(0, 250)
      .filter((_, i) => i % 5 !== 0)
      .slice(0, 100);
    const classifier: Classifier = await loadClassifier(service.config.model.source, {
      modelsDir: service.config.model.modelsDir,
    });
    const reference: string[] = [];
    try {
      for (let i = 0; i < sample.length; i += 10) {
        const batch = sample.slice(i, i + 10);
        const images = await Promise.all(
          batch.map(async (p) => decodeImage(await readFile(p.path), classifier.manifest.input)),
        );
        for (const prediction of await classifier.classify(images)) reference.push(prediction.label);
      }
    } finally {
      await classifier.dispose();
    }
    const names = sample.map(
      (_, i) => `upload-${String(i).padStart(3, '0')}-${Math.random().toString(36).slice(2, 8)}`,
    );
    const answers = await Promise.all(sample.map((photo, i) => postClassic(url, photo.path, `${names[i]}.jpg`)));
    for (const [i, answer] of answers.entries()) {
      t.is(answer.status, 200, answer.body);
      t.is(answer.body, `${names[i]},${reference[i]}`, `upload ${i} (${sample[i]!.file})`);
      documented(t, 'post', '/', { status: answer.status, contentType: answer.type, body: answer.body }, names[i]);
    }
    const stored = await mapLimit(names, 10, (name) => getText(service.config.names.outputBucket, name));
    t.deepEqual(
      stored,
      answers.map((a) => a.body),
    );
  });

  test(`${mode}: JSON API: several images in one multipart request`, async (t) => {
    const [a, b] = [photos[10]!, photos[20]!];
    const body = new FormData();
    // Bytes of their own, so that the images go through a worker rather than the result cache.
    for (const photo of [a, b])
      body.append('images', new Blob([withComment(await readFile(photo.path), randomUUID())]), photo.file);
    const { status, json } = await call(t, 'post', '/api/v1/classify', `${url}/api/v1/classify`, { body });
    t.is(status, 200, JSON.stringify(json));
    t.is(json.results.length, 2);
    for (const [i, photo] of [a, b].entries()) {
      const r = json.results[i];
      t.is(r.file, photo.file);
      t.regex(r.id, /^[0-9a-f-]{36}$/);
      t.is(r.model, DEFAULT_MODEL_ID);
      t.true(r.score > 0 && r.score <= 1);
      t.is(r.top5.length, 5);
      t.is(r.label, shortLabel(r.top5[0].label));
      t.true(
        r.top5.every(
          (c: { index: number; score: number }) => Number.isInteger(c.index) && c.index >= 0 && c.index < 1000,
        ),
      );
      for (const stage of ['upload', 's3Put', 'enqueue', 'queueWait', 's3Get', 'decode', 'infer', 'total']) {
        t.is(typeof r.timings[stage], 'number', `timing ${stage}`);
      }
      const stored = JSON.parse(await getText(service.config.names.outputBucket, resultKey(r.id)));
      t.is(stored.label, r.label);
    }
  });

  test(`${mode}: JSON API: a raw image body`, async (t) => {
    const photo = photos[30]!;
    const response = await call(
      t,
      'post',
      '/api/v1/classify',
      `${url}/api/v1/classify?name=${encodeURIComponent('../../etc/passwd.jpg')}`,
      {
        headers: { 'content-type': 'image/jpeg' },
        body: await readFile(photo.path),
      },
    );
    t.is(response.status, 200);
    const json = response.json as { results: { file: string; label: string; id: string }[] };
    t.is(json.results[0]!.file, 'passwd.jpg'); // never a client path
    const input = await service.clients.s3.send(
      new HeadObjectCommand({ Bucket: service.config.names.inputBucket, Key: `${json.results[0]!.id}/passwd.jpg` }),
    );
    t.is(input.ContentType, 'image/jpeg');
  });

  test(`${mode}: bad input is refused with a 4xx JSON error and the service keeps serving`, async (t) => {
    const jpeg = await readFile(photos[40]!.path);
    const cases: { what: string; send: () => Promise<Response>; status: number; code: string }[] = [
      {
        what: 'text named .jpg',
        status: 415,
        code: 'NOT_AN_IMAGE',
        send: () =>
          fetch(`${url}/`, { method: 'POST', body: form('myfile', 'notes.jpg', Buffer.from('hello, not an image')) }),
      },
      {
        what: 'zero-byte file',
        status: 400,
        code: 'EMPTY_FILE',
        send: () => fetch(`${url}/`, { method: 'POST', body: form('myfile', 'empty.jpg', Buffer.alloc(0)) }),
      },
      {
        what: 'wrong field name',
        status: 400,
        code: 'NO_FILE',
        send: () => fetch(`${url}/`, { method: 'POST', body: form('file', 'a.jpg', jpeg) }),
      },
      {
        what: 'not multipart',
        status: 415,
        code: 'UNSUPPORTED_MEDIA_TYPE',
        send: () => fetch(`${url}/`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: jpeg }),
      },
      {
        what: 'empty body',
        status: 415,
        code: 'UNSUPPORTED_MEDIA_TYPE',
        send: () => fetch(`${url}/api/v1/classify`, { method: 'POST' }),
      },
      {
        what: 'SVG',
        status: 415,
        code: 'UNSUPPORTED_IMAGE_TYPE',
        send: () =>
          fetch(`${url}/`, {
            method: 'POST',
            body: form(
              'myfile',
              'x.jpg',
              Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><image href="http://127.0.0.2/x"/></svg>'),
            ),
          }),
      },
      {
        what: 'over the size limit',
        status: 413,
        code: 'TOO_LARGE',
        send: () =>
          fetch(`${url}/`, {
            method: 'POST',
            body: form('myfile', 'big.jpg', Buffer.concat([jpeg, Buffer.alloc(5 * 1024 * 1024)])),
          }),
      },
      {
        what: 'truncated JPEG',
        status: 422,
        code: 'UNDECODABLE_IMAGE',
        send: () =>
          fetch(`${url}/`, {
            method: 'POST',
            body: form('myfile', 'cut.jpg', jpeg.subarray(0, Math.floor(jpeg.length / 3))),
          }),
      },
      { what: 'unknown route', status: 404, code: 'NOT_FOUND', send: () => fetch(`${url}/nope`) },
    ];
    for (const c of cases) {
      const answer = await answerOf(await c.send());
      t.is(answer.status, c.status, c.what);
      t.regex(answer.contentType, /application\/json/, c.what);
      const body = JSON.parse(answer.body) as { error: { code: string; message: string } };
      t.is(body.error.code, c.code, `${c.what}: ${body.error.message}`);
      t.true(body.error.message.length > 10, c.what);
      // An unknown route has no operation: its body is still the one error shape.
      if (c.code === 'NOT_FOUND') t.true(api.validator('components', 'schemas', 'Error')(body), c.what);
      else documented(t, 'post', c.what === 'empty body' ? '/api/v1/classify' : '/', answer, c.what);
    }
    const after = await postClassic(url, photos[41]!.path, photos[41]!.file);
    t.is(after.status, 200);
  });

  /** The same JPEG (same pixels) with a comment segment after its start marker: other bytes, another hash. */
  function withComment(jpeg: Buffer, comment: string): Buffer {
    const text = Buffer.from(comment, 'latin1');
    const segment = Buffer.concat([Buffer.from([0xff, 0xfe, (text.length + 2) >> 8, (text.length + 2) & 0xff]), text]);
    return Buffer.concat([jpeg.subarray(0, 2), segment, jpeg.subarray(2)]);
  }

  function form(field: string, name: string, bytes: Buffer): FormData {
    const data = new FormData();
    data.append(field, new Blob([bytes]), name);
    return data;
  }

  test(`${mode}: jobs, thumbnails, recent results, the page and the document answer as documented`, async (t) => {
    const photo = photos[60]!;
    const body = new FormData();
    body.append('image', new Blob([await readFile(photo.path)]), photo.file);
    const classified = await call(t, 'post', '/api/v1/classify', `${url}/api/v1/classify`, { body });
    const id: string = classified.json.results[0].id;

    const job = await call(t, 'get', '/api/v1/jobs/{id}', `${url}/api/v1/jobs/${id}`);
    t.is(job.json.status, 'done');
    t.is(job.json.result.label, classified.json.results[0].label);
    t.is(
      (await call(t, 'get', '/api/v1/jobs/{id}', `${url}/api/v1/jobs/${randomUUID()}`)).json.error.code,
      'NO_SUCH_JOB',
    );
    t.is((await call(t, 'get', '/api/v1/jobs/{id}', `${url}/api/v1/jobs/not-a-job`)).json.error.code, 'BAD_JOB_ID');

    const thumbnail = await fetch(`${url}/api/v1/jobs/${id}/thumbnail`);
    const jpeg = Buffer.from(await thumbnail.arrayBuffer());
    documented(t, 'get', '/api/v1/jobs/{id}/thumbnail', {
      status: thumbnail.status,
      contentType: thumbnail.headers.get('content-type') ?? '',
      body: '',
    });
    t.is(thumbnail.status, 200);
    t.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff], 'a JPEG');
    t.deepEqual(
      await sharp(jpeg)
        .metadata()
        .then((m) => [m.width, m.height]),
      [192, 192],
    );
    t.is(
      (await call(t, 'get', '/api/v1/jobs/{id}/thumbnail', `${url}/api/v1/jobs/${randomUUID()}/thumbnail`)).status,
      404,
    );

    // Other tests of this file classify at the same time: the new result is among the 5 most recent
    // unless 5 that completed after it are (the list is newest first).
    const recent = await call(t, 'get', '/api/v1/results', `${url}/api/v1/results?limit=5`);
    const listed = recent.json.results as { id: string; completedAt: string }[];
    t.true(listed.length <= 5);
    t.deepEqual(
      listed.map((r) => r.completedAt),
      listed
        .map((r) => r.completedAt)
        .sort()
        .reverse(),
      'newest first',
    );
    const completedAt = (await service.store.getResult(id))!.completedAt;
    t.true(
      listed.some((r) => r.id === id) || (listed.length === 5 && listed.every((r) => r.completedAt >= completedAt)),
      `the new result (${completedAt}) is among the most recent: ${JSON.stringify(listed)}`,
    );
    t.is((await call(t, 'get', '/api/v1/results', `${url}/api/v1/results?limit=0`)).json.error.code, 'BAD_PARAMETER');

    const page = await call(t, 'get', '/', `${url}/`);
    t.regex(page.body, /<title>Image recognition<\/title>/);
    const css = await call(t, 'get', '/assets/{name}', `${url}/assets/app.css`);
    t.regex(css.contentType, /^text\/css/);
    t.is((await call(t, 'get', '/assets/{name}', `${url}/assets/..%2Fapp.ts`)).status, 404);
    t.is((await call(t, 'get', '/api/v1/openapi.json', `${url}/api/v1/openapi.json`)).json.openapi, '3.1.0');

    // The event stream: its hello (and any status event within 3 s) against the document's schemas.
    const abort = new AbortController();
    const events = await fetch(`${url}/api/v1/events`, { signal: abort.signal });
    documented(t, 'get', '/api/v1/events', {
      status: events.status,
      contentType: events.headers.get('content-type') ?? '',
      body: '',
    });
    const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const deadline = setTimeout(() => abort.abort(), 3_000);
    try {
      for (;;) text += (await reader.read()).value ?? '';
    } catch {
      // aborted after 3 s
    } finally {
      clearTimeout(deadline);
    }
    const frames = text.split('\n\n').filter((f) => f.startsWith('event: '));
    t.regex(frames[0] ?? '', /^event: hello\n/);
    let statuses = 0;
    for (const frame of frames) {
      const [, name, data] = /^event: (\w+)\ndata: (.*)$/s.exec(frame) ?? [];
      const validate = api.validator(
        'paths',
        '/api/v1/events',
        'get',
        'responses',
        '200',
        'content',
        'text/event-stream',
        'x-event-data',
        name ?? '',
      );
      t.true(validate(JSON.parse(data ?? 'null')), `${name}: ${JSON.stringify(validate.errors)}`);
      if (name === 'status') statuses++;
    }
    t.true(statuses > 0 || /"status":\{/.test(frames[0] ?? ''), 'the status came, in the hello or an event');
  });

  test(`${mode}: every process runs on Node.js 24 or newer: this one, the web tier and each worker`, async (t) => {
    const major = (version: string) => Number(/^v(\d+)\./.exec(version)?.[1]);
    t.true(major(process.version) >= 24, process.version);
    const status = (await call(t, 'get', '/api/v1/status', `${url}/api/v1/status`)).json as {
      runtime: { node: string; workers: string[] };
    };
    t.true(major(status.runtime.node) >= 24, status.runtime.node);
    t.is(status.runtime.workers.length, 2);
    for (const version of status.runtime.workers) t.true(major(version) >= 24, version);
  });

  test(`${mode}: health and readiness`, async (t) => {
    t.deepEqual((await call(t, 'get', '/healthz', `${url}/healthz`)).json, { status: 'ok' });
    const ready = await call(t, 'get', '/readyz', `${url}/readyz`);
    t.is(ready.status, 200);
  });

  test.serial(`${mode}: replay --missing re-creates a deleted result`, async (t) => {
    const photo = photos[50]!;
    const { json } = await postForm(url, '/api/v1/classify', [
      { field: 'image', name: photo.file, bytes: await readFile(photo.path) },
    ]);
    const id: string = json.results[0].id;
    const bucket = service.config.names.outputBucket;
    await service.clients.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: resultKey(id) }));
    await t.throwsAsync(service.clients.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: resultKey(id) })));

    const { stdout } = await run(
      process.execPath,
      ['--import', './scripts/lib/preload.mjs', 'scripts/replay.ts', '--missing'],
      {
        cwd: projectRoot,
        env: childEnv(service.config, { LOG_LEVEL: 'warn' }),
      },
    );
    t.regex(stdout, /replaying 1\b/);
    t.regex(stdout, /1 classified, 0 failed/);
    const replayed = JSON.parse(await getText(bucket, resultKey(id)));
    t.is(replayed.id, id);
    t.is(replayed.label, json.results[0].label);
  });
}
