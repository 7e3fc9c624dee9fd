import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath as fileURLToPathOf } from 'node:url';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { startEmbeddedEndpoint } from '../endpoint/embedded.js';
import { createEmbeddedS3Client } from '../lib/aws/clients.js';
import {
  BUILTIN_MODEL_IDS,
  builtinManifest,
  type Classifier,
  DEFAULT_MODEL_ID,
  fetchModel,
  loadClassifier,
  ModelError,
  type ModelManifest,
  type Prediction,
  publicUrl,
  type RgbImage,
  resolveModel,
  shortLabel,
  softmax,
  topK,
  validateManifest,
} from '../models/index.js';
import { decodeForModel, type GroundTruth, readGroundTruth, SHARED_MODELS_DIR } from './helpers/model-fixtures.js';
import { fixedBatchOnnxModel } from './helpers/model-onnx.js';
import { type ModelServer, startModelServer } from './helpers/model-server.js';

/** Top-1 floors on the sampled photos: well under the README's figures (82%, 55%, 74%), so only a real regression fails. */
const TOP1_FLOOR: Record<string, number> = {
  'mobilenet-v1-0.75-224-tfjs': 0.65,
  'mobilenet-v1-0.25-224-tfjs': 0.35,
  'mobilenet-v1-0.25-224-tfjs-graph': 0.35,
  'mobilenet-v2-int8-onnx': 0.55,
  'mobilenet-v1-0.75-224-onnx': 0.65,
  'mobilenet-v1-0.25-224-onnx': 0.35,
};
const EXPECTED_BACKEND: Record<string, RegExp> = {
  'mobilenet-v1-0.75-224-tfjs': /^tfjs-(wasm|node)$/,
  'mobilenet-v1-0.25-224-tfjs': /^tfjs-(wasm|node)$/,
  'mobilenet-v1-0.25-224-tfjs-graph': /^tfjs-(wasm|node)$/,
  'mobilenet-v2-int8-onnx': /^onnxruntime-node$/,
  'mobilenet-v1-0.75-224-onnx': /^onnxruntime-node \(converted from tfjs\)$/,
  'mobilenet-v1-0.25-224-onnx': /^onnxruntime-node \(converted from tfjs\)$/,
};
const ONNX_SHA256 = 'cc028fe6cae7bc11a4ff53cfc9b79c920e8be65ce33a904ec3e2a8f66d77f95f';
const BATCH = 8;

let samples: GroundTruth[] = [];
const tempDirs: string[] = [];

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `models-test-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

test.before(async () => {
  const all = await readGroundTruth();
  // Every 8th of the 250 photos: 32 classes spread over the whole label range.
  samples = all.filter((_, i) => i % 8 === 0);
});

test.after.always(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

function assertWellFormed(t: import('ava').ExecutionContext, prediction: Prediction, manifest: ModelManifest): void {
  t.is(prediction.top5.length, 5);
  const [best] = prediction.top5;
  t.is(prediction.score, best!.score);
  t.is(prediction.label, shortLabel(best!.label));
  t.is(manifest.labels[best!.index], best!.label);
  for (let i = 1; i < 5; i++) t.true(prediction.top5[i - 1]!.score >= prediction.top5[i]!.score);
  t.true(prediction.top5.every((c) => c.score >= 0 && c.score <= 1 && c.index >= 0 && c.index < 1000));
}

// ---------------------------------------------------------------- accuracy on real photos

for (const id of BUILTIN_MODEL_IDS) {
  test(`${id}: top-1 on sampled photos, batch == per-image`, async (t) => {
    const classifier = await loadClassifier(id);
    t.teardown(() => classifier.dispose());
    t.regex(classifier.backend, EXPECTED_BACKEND[id]!);
    const images = await Promise.all(samples.map((s) => decodeForModel(s.path, classifier.manifest)));

    const batched: Prediction[] = [];
    for (let i = 0; i < images.length; i += BATCH)
      batched.push(...(await classifier.classify(images.slice(i, i + BATCH))));
    const single: Prediction[] = [];
    for (const image of images) single.push(...(await classifier.classify([image])));

    t.is(batched.length, samples.length);
    let correct = 0;
    batched.forEach((prediction, i) => {
      assertWellFormed(t, prediction, classifier.manifest);
      if (prediction.top5[0]!.index === samples[i]!.classIndex) correct++;
      const alone = single[i]!;
      t.is(alone.top5[0]!.index, prediction.top5[0]!.index, `${samples[i]!.file}: batch and single top-1 differ`);
      t.true(
        Math.abs(alone.score - prediction.score) < 1e-3,
        `${samples[i]!.file}: ${alone.score} vs ${prediction.score}`,
      );
    });
    const top1 = correct / samples.length;
    t.log(`${id} [${classifier.backend}] top-1 ${(100 * top1).toFixed(1)}% on ${samples.length} photos`);
    t.true(top1 >= TOP1_FLOOR[id]!, `top-1 ${top1} below floor ${TOP1_FLOOR[id]}`);
  });
}

// Serial: runs before the concurrent tests, so no other model is allocating tensors meanwhile.
test.serial('tfjs: classify leaves no tensors behind, dispose frees the weights', async (t) => {
  const before = tf.memory().numTensors;
  const classifier = await loadClassifier('mobilenet-v1-0.25-224-tfjs-graph');
  const loaded = tf.memory().numTensors;
  t.true(loaded > before);
  const { width, height } = classifier.manifest.input;
  const images = Array.from({ length: 3 }, () => ({
    data: new Uint8Array(width * height * 3).fill(128),
    width,
    height,
  }));
  await classifier.classify(images);
  await classifier.classify(images.slice(0, 1));
  t.is(tf.memory().numTensors, loaded);
  await classifier.dispose();
  t.is(tf.memory().numTensors, before);
});

test('classifier rejects bad input, returns [] for an empty batch, and dispose is idempotent', async (t) => {
  const classifier = await loadClassifier('mobilenet-v2-int8-onnx');
  t.deepEqual(await classifier.classify([]), []);
  const small: RgbImage = { data: new Uint8Array(10 * 10 * 3), width: 10, height: 10 };
  const bad = await t.throwsAsync(classifier.classify([small]), { instanceOf: ModelError });
  t.is(bad?.code, 'INVALID_INPUT');
  t.is(bad?.context.index, 0);
  const truncated: RgbImage = { data: new Uint8Array(224 * 224), width: 224, height: 224 };
  t.is((await t.throwsAsync(classifier.classify([truncated]), { instanceOf: ModelError }))?.code, 'INVALID_INPUT');
  await classifier.dispose();
  await classifier.dispose();
  const image: RgbImage = { data: new Uint8Array(224 * 224 * 3), width: 224, height: 224 };
  t.is((await t.throwsAsync(classifier.classify([image]), { instanceOf: ModelError }))?.code, 'DISPOSED');
});

test('onnx: a model with a fixed batch dimension runs in padded chunks; channels map to NCHW planes', async (t) => {
  const dir = await tempDir('fixed-batch');
  const file = path.join(dir, 'fixed.onnx');
  await writeFile(file, fixedBatchOnnxModel(2, 8, 4));
  const classifier = await loadClassifier({
    id: 'fixed-batch',
    format: 'onnx',
    location: file,
    input: {
      width: 8,
      height: 8,
      layout: 'NCHW',
      resize: 'fill',
      normalization: { scale: 255, mean: [0, 0, 0], std: [1, 1, 1] },
    },
    output: { kind: 'logits', offset: 0 },
    labels: ['red, rouge', 'green', 'blue', 'none'],
  });
  t.teardown(() => classifier.dispose());
  const solid = (r: number, g: number, b: number): RgbImage => ({
    data: Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) => [r, g, b][i % 3]!),
    width: 8,
    height: 8,
  });
  const images = [solid(255, 0, 0), solid(0, 255, 0), solid(0, 0, 255)];
  const batched = await classifier.classify(images);
  t.deepEqual(
    batched.map((p) => p.label),
    ['red', 'green', 'blue'],
  );
  for (const [i, image] of images.entries()) {
    const [alone] = await classifier.classify([image]);
    t.is(alone!.label, batched[i]!.label);
    t.true(Math.abs(alone!.score - batched[i]!.score) < 1e-6);
  }
  // softmax([1, 0, 0, 0])
  t.true(Math.abs(batched[0]!.score - Math.E / (Math.E + 3)) < 1e-5);
});

test('loadClassifier validates its options once, up front', async (t) => {
  const error = await t.throwsAsync(loadClassifier('mobilenet-v2-int8-onnx', { threads: 0 }), {
    instanceOf: ModelError,
  });
  t.is(error?.code, 'INVALID_OPTIONS');
  t.is(error?.context.field, 'threads');
  const device = await t.throwsAsync(loadClassifier('mobilenet-v2-int8-onnx', { device: 'tpu' as never }), {
    instanceOf: ModelError,
  });
  t.is(device?.context.field, 'device');
});

test("onnx on cuda without ONNX Runtime's CUDA files: a typed error that says how to install them", async (t) => {
  const { existsSync } = await import('node:fs');
  const cudaFiles = path.join(
    path.dirname(fileURLToPathOf(import.meta.resolve('onnxruntime-node'))),
    '..',
    'bin',
    'napi-v6',
    'linux',
    'x64',
    'libonnxruntime_providers_cuda.so',
  );
  if (existsSync(cudaFiles)) return t.pass('the CUDA files are installed here; nothing to refuse');
  const error = await t.throwsAsync(
    loadClassifier('mobilenet-v2-int8-onnx', { modelsDir: SHARED_MODELS_DIR, device: 'cuda' }),
    { instanceOf: ModelError },
  );
  t.is(error?.code, 'BACKEND_UNAVAILABLE');
  t.regex(
    error!.message,
    /CUDA execution provider.*ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install.*MODEL_DEVICE=cpu/,
  );
});

// ---------------------------------------------------------------- shared helpers

test('softmax, topK and shortLabel', (t) => {
  const p = softmax([1, 2, 3, 1000, -1000]);
  t.true(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-6);
  t.true(p[3]! > 0.999);
  t.deepEqual(Array.from(softmax([0, 0, 5, 5], 0, 2)), [0.5, 0.5]);
  t.deepEqual(topK([0.1, 0.5, 0.2, 0.5, 0.9], 3), [4, 1, 3]);
  t.deepEqual(topK([3, 1], 5), [0, 1]);
  t.is(shortLabel('goldfish, Carassius auratus'), 'goldfish');
  t.is(shortLabel('hen'), 'hen');
});

// ---------------------------------------------------------------- manifests and registry

test('registry: the four shared models (and the two converted to ONNX) with the README preprocessing', async (t) => {
  t.is(DEFAULT_MODEL_ID, 'mobilenet-v1-0.75-224-onnx');
  t.deepEqual([...BUILTIN_MODEL_IDS].sort(), Object.keys(TOP1_FLOOR).sort());
  const v1 = await builtinManifest('mobilenet-v1-0.75-224-tfjs');
  t.is(v1.location, path.join(SHARED_MODELS_DIR, 'mobilenet-v1-0.75-224-tfjs', 'model.json'));
  t.deepEqual(v1.input.normalization, { scale: 127.5, mean: [1, 1, 1], std: [1, 1, 1] });
  t.is(v1.input.resize, 'fill');
  t.is(v1.labels.length, 1000);
  t.is(v1.labels[1], 'goldfish, Carassius auratus');
  const graph = await builtinManifest('mobilenet-v1-0.25-224-tfjs-graph');
  t.like(graph, {
    format: 'tfjs-graph',
    input: { name: 'images', normalization: { scale: 255 } },
    output: { kind: 'logits', offset: 1 },
  });
  const labelsFile = path.join(SHARED_MODELS_DIR, 'imagenet-labels.json');
  const onnx = await builtinManifest('mobilenet-v2-int8-onnx', {
    source: 'local',
    modelsDir: '/srv/models',
    labelsFile,
  });
  t.is(onnx.location, path.join('/srv/models', 'mobilenet-v2-int8-onnx', 'mobilenetv2-12-int8.onnx'));
  t.like(onnx, {
    sha256: ONNX_SHA256,
    input: { layout: 'NCHW', resize: 'cover' },
    output: { kind: 'logits', offset: 0 },
  });
  t.is(
    publicUrl('mobilenet-v1-0.75-224-tfjs'),
    'https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_0.75_224/model.json',
  );
  t.regex(
    publicUrl('mobilenet-v2-int8-onnx'),
    /^https:\/\/github\.com\/onnx\/models\/.*validated\/vision\/classification\/mobilenet\/model\/mobilenetv2-12-int8\.onnx$/,
  );
  const remote = await builtinManifest('mobilenet-v2-int8-onnx', { source: 'public', modelsDir: SHARED_MODELS_DIR });
  t.is(remote.location, publicUrl('mobilenet-v2-int8-onnx'));
});

test('resolveModel: ids, locations of known models, manifest files, unknown names', async (t) => {
  t.is((await resolveModel('mobilenet-v2-int8-onnx')).format, 'onnx');
  const s3 = await resolveModel('s3://bucket/models/mobilenet-v1-0.25-224-tfjs-graph/model.json');
  t.like(s3, {
    id: 'mobilenet-v1-0.25-224-tfjs-graph',
    format: 'tfjs-graph',
    location: 's3://bucket/models/mobilenet-v1-0.25-224-tfjs-graph/model.json',
  });
  const byUrl = await resolveModel(publicUrl('mobilenet-v1-0.25-224-tfjs'));
  t.like(byUrl, { id: 'mobilenet-v1-0.25-224-tfjs', location: publicUrl('mobilenet-v1-0.25-224-tfjs') });
  const onnxCopy = await resolveModel('https://models.example.com/v7/mobilenetv2-12-int8.onnx');
  t.like(onnxCopy, { id: 'mobilenet-v2-int8-onnx', sha256: ONNX_SHA256 });

  const dir = await tempDir('manifest');
  const custom = { ...(await builtinManifest('mobilenet-v2-int8-onnx')), id: 'my-model', labels: ['a', 'b'] };
  await writeFile(path.join(dir, 'my-model.json'), JSON.stringify(custom));
  t.like(await resolveModel(path.join(dir, 'my-model.json')), { id: 'my-model', labels: ['a', 'b'] });

  const unknown = await t.throwsAsync(resolveModel('resnet-50'), { instanceOf: ModelError });
  t.is(unknown?.code, 'UNKNOWN_MODEL');
  t.deepEqual(unknown?.context.known, BUILTIN_MODEL_IDS);
  const noLabels = await t.throwsAsync(
    resolveModel(DEFAULT_MODEL_ID, { modelsDir: dir, labelsFile: path.join(dir, 'none.json') }),
    { instanceOf: ModelError },
  );
  t.is(noLabels?.code, 'INVALID_LABELS');
  // A models directory without the model (a fresh clone without ../shared): its public URL, the bundled labels.
  const fresh = await resolveModel(DEFAULT_MODEL_ID, { modelsDir: dir });
  t.is(fresh.location, publicUrl(DEFAULT_MODEL_ID));
  t.deepEqual(fresh.labels, JSON.parse(await readFile(path.join(SHARED_MODELS_DIR, 'imagenet-labels.json'), 'utf8')));
  // The default is converted from the shared tfjs files: it is found under the tfjs model's folder.
  t.is(
    (await resolveModel(DEFAULT_MODEL_ID)).location,
    path.join(SHARED_MODELS_DIR, 'mobilenet-v1-0.75-224-tfjs', 'model.json'),
  );
  t.is(
    (await resolveModel('mobilenet-v2-int8-onnx')).location,
    path.join(SHARED_MODELS_DIR, 'mobilenet-v2-int8-onnx', 'mobilenetv2-12-int8.onnx'),
  );
});

test('validateManifest accepts a good manifest and returns a frozen copy', async (t) => {
  const good = await builtinManifest('mobilenet-v2-int8-onnx');
  const copy = validateManifest(JSON.parse(JSON.stringify(good)));
  t.deepEqual(copy, good);
  t.true(Object.isFrozen(copy) && Object.isFrozen(copy.input.normalization.mean) && Object.isFrozen(copy.labels));
});

test('validateManifest reports every problem with a typed error', async (t) => {
  const good = JSON.parse(JSON.stringify(await builtinManifest('mobilenet-v2-int8-onnx'))) as Record<string, unknown>;
  const broken = {
    ...good,
    format: 'pytorch',
    sha256: 'abc',
    location: 'ftp://example.com/model.onnx',
    input: { ...(good.input as object), width: 0, normalization: { scale: 255, mean: [0, 0], std: [1, 0, 1] } },
    output: { kind: 'logits', offest: 1 },
  };
  const error = t.throws(() => validateManifest(broken), { instanceOf: ModelError });
  t.is(error?.code, 'INVALID_MANIFEST');
  t.is(error?.context.id, 'mobilenet-v2-int8-onnx');
  const paths = (error!.context.issues as { path: string }[]).map((i) => i.path).sort();
  t.deepEqual(paths, [
    'format',
    'input.normalization.mean',
    'input.normalization.std[1]',
    'input.width',
    'location',
    'output.offest',
    'output.offset',
    'sha256',
  ]);
  t.regex(error!.message, /format must be one of/);

  t.is(t.throws(() => validateManifest(null), { instanceOf: ModelError })?.code, 'INVALID_MANIFEST');
  const noLabels = t.throws(() => validateManifest({ ...good, labels: [] }), { instanceOf: ModelError });
  t.deepEqual(
    (noLabels!.context.issues as { path: string }[]).map((i) => i.path),
    ['labels'],
  );
  const badS3 = t.throws(() => validateManifest({ ...good, location: 's3://bucket-only' }), { instanceOf: ModelError });
  t.deepEqual(
    (badS3!.context.issues as { path: string }[]).map((i) => i.path),
    ['location'],
  );
});

// ---------------------------------------------------------------- downloads (http)

let server: ModelServer;
const BROKEN_MODEL_JSON = JSON.stringify({
  modelTopology: {},
  weightsManifest: [{ paths: ['missing-shard'], weights: [] }],
});
const EVIL_MODEL_JSON = JSON.stringify({
  modelTopology: {},
  weightsManifest: [{ paths: ['../../etc/passwd'], weights: [] }],
});

test.before(async () => {
  server = await startModelServer(SHARED_MODELS_DIR, {
    routes: { '/broken/model.json': BROKEN_MODEL_JSON, '/evil/model.json': EVIL_MODEL_JSON },
    flaky: ['/mobilenet-v1-0.25-224-tfjs-graph/group1-shard1of1'],
  });
});
test.after.always(async () => {
  await server?.close();
});

/** Requests the server received from `paths` while running `fn` (tests run concurrently: filter by prefix). */
async function requestsDuring(prefix: string, fn: () => Promise<unknown>): Promise<string[]> {
  const before = server.requests.length;
  await fn();
  return server.requests.slice(before).filter((p) => p.startsWith(prefix));
}

async function httpManifest(id: string, file: string, extra: Partial<ModelManifest> = {}): Promise<ModelManifest> {
  const { sha256: _drop, ...base } = await builtinManifest(id);
  return validateManifest({ ...base, location: `${server.url}${id}/${file}`, ...extra });
}

test('http: a tfjs model is downloaded with all its weight files, then served from the cache', async (t) => {
  const cacheDir = await tempDir('http-tfjs');
  const id = 'mobilenet-v1-0.25-224-tfjs';
  const manifest = await httpManifest(id, 'model.json');
  const expected = (
    JSON.parse(await readFile(path.join(SHARED_MODELS_DIR, id, 'model.json'), 'utf8')) as {
      weightsManifest: { paths: string[] }[];
    }
  ).weightsManifest.flatMap((g) => g.paths);

  let first: Awaited<ReturnType<typeof fetchModel>> | undefined;
  const firstRequests = await requestsDuring(`/${id}/`, async () => (first = await fetchModel(manifest, { cacheDir })));
  t.is(first?.origin, 'downloaded');
  t.is(firstRequests.length, 1 + expected.length);
  t.true(first!.path.startsWith(cacheDir + path.sep));
  const entry = path.dirname(first!.path);
  const onDisk = (await readdir(entry)).filter((f) => !f.startsWith('.'));
  t.deepEqual(onDisk.sort(), ['model.json', ...expected].sort());
  t.false((await readdir(entry)).some((f) => f.endsWith('.tmp')));
  for (const f of expected)
    t.deepEqual(await readFile(path.join(entry, f)), await readFile(path.join(SHARED_MODELS_DIR, id, f)));

  let classifier: Classifier | undefined;
  const secondRequests = await requestsDuring(`/${id}/`, async () => {
    t.is((await fetchModel(manifest, { cacheDir })).origin, 'cache');
    classifier = await loadClassifier(manifest, { cacheDir });
  });
  t.deepEqual(secondRequests, []);
  t.teardown(() => classifier?.dispose());

  // The downloaded copy classifies like the local one.
  const local = await loadClassifier(id);
  t.teardown(() => local.dispose());
  const image = await decodeForModel(samples[0]!.path, manifest);
  const [a] = await classifier!.classify([image]);
  const [b] = await local.classify([image]);
  t.is(a!.top5[0]!.index, b!.top5[0]!.index);
  t.true(Math.abs(a!.score - b!.score) < 1e-6);
});

test('http: the onnx model is downloaded, its sha256 verified, then served from the cache', async (t) => {
  const cacheDir = await tempDir('http-onnx');
  const id = 'mobilenet-v2-int8-onnx';
  const manifest = await httpManifest(id, 'mobilenetv2-12-int8.onnx', { sha256: ONNX_SHA256 });
  const first = await fetchModel(manifest, { cacheDir });
  t.is(first.origin, 'downloaded');
  t.is(path.basename(first.path), 'mobilenetv2-12-int8.onnx');
  t.is(
    createHash('sha256')
      .update(await readFile(first.path))
      .digest('hex'),
    ONNX_SHA256,
  );
  const again = await requestsDuring(`/${id}/`, async () =>
    t.is((await fetchModel(manifest, { cacheDir })).origin, 'cache'),
  );
  t.deepEqual(again, []);
});

test('http: a sha256 mismatch raises CHECKSUM_MISMATCH and caches nothing', async (t) => {
  const cacheDir = await tempDir('http-sha');
  const manifest = await httpManifest('mobilenet-v2-int8-onnx', 'mobilenetv2-12-int8.onnx', { sha256: '0'.repeat(64) });
  const error = await t.throwsAsync(fetchModel(manifest, { cacheDir }), { instanceOf: ModelError });
  t.is(error?.code, 'CHECKSUM_MISMATCH');
  t.like(error?.context, { url: manifest.location, expected: '0'.repeat(64), actual: ONNX_SHA256 });
  t.deepEqual(await readdir(cacheDir), []);
});

test('http: a 404 raises HTTP_ERROR naming the URL and status', async (t) => {
  const cacheDir = await tempDir('http-404');
  const manifest = await httpManifest('mobilenet-v2-int8-onnx', 'no-such-model.onnx');
  const error = await t.throwsAsync(fetchModel(manifest, { cacheDir }), { instanceOf: ModelError });
  t.is(error?.code, 'HTTP_ERROR');
  t.like(error?.context, { url: manifest.location, status: 404 });
  t.true(error!.message.includes(manifest.location));
  t.regex(error!.message, /404/);

  // A missing weight file fails the same way, and leaves no half model in the cache.
  const broken = validateManifest({ ...manifest, format: 'tfjs-graph', location: `${server.url}broken/model.json` });
  const shard = await t.throwsAsync(fetchModel(broken, { cacheDir }), { instanceOf: ModelError });
  t.like(shard?.context, { url: `${server.url}broken/missing-shard`, status: 404 });
  t.deepEqual(await readdir(cacheDir), []);
});

test('http: a connection reset is retried', async (t) => {
  const id = 'mobilenet-v1-0.25-224-tfjs-graph';
  const manifest = await httpManifest(id, 'model.json');
  let origin: string | undefined;
  const requests = await requestsDuring(
    `/${id}/`,
    async () => (origin = (await fetchModel(manifest, { cacheDir: await tempDir('http-flaky') })).origin),
  );
  t.is(origin, 'downloaded');
  t.deepEqual(requests, [`/${id}/model.json`, `/${id}/group1-shard1of1`, `/${id}/group1-shard1of1`]);
});

test('http: weight paths escaping the model directory are refused', async (t) => {
  const manifest = validateManifest({
    ...(await builtinManifest('mobilenet-v1-0.25-224-tfjs-graph')),
    location: `${server.url}evil/model.json`,
  });
  const error = await t.throwsAsync(fetchModel(manifest, { cacheDir: await tempDir('http-evil') }), {
    instanceOf: ModelError,
  });
  t.is(error?.code, 'INVALID_MODEL_FILE');
});

test('local: a missing model path raises MODEL_NOT_FOUND', async (t) => {
  const error = await t.throwsAsync(
    loadClassifier('mobilenet-v2-int8-onnx', {
      source: 'local',
      modelsDir: await tempDir('empty'),
      labelsFile: path.join(SHARED_MODELS_DIR, 'imagenet-labels.json'),
    }),
    { instanceOf: ModelError },
  );
  t.is(error?.code, 'MODEL_NOT_FOUND');
});

// ---------------------------------------------------------------- downloads (s3, against the embedded endpoint)

test('s3: a model is fetched through the injected client, and a missing key is a typed 404', async (t) => {
  const endpoint = await startEmbeddedEndpoint({ host: '127.0.0.1', port: 0, dataDir: await tempDir('s3-endpoint') });
  t.teardown(() => endpoint.stop());
  const s3 = createEmbeddedS3Client(endpoint.url);
  await s3.send(new CreateBucketCommand({ Bucket: 'models' }));
  t.teardown(() => s3.destroy());
  const id = 'mobilenet-v1-0.25-224-tfjs-graph';
  for (const file of ['model.json', 'group1-shard1of1']) {
    await s3.send(
      new PutObjectCommand({
        Bucket: 'models',
        Key: `store/${id}/${file}`,
        Body: await readFile(path.join(SHARED_MODELS_DIR, id, file)),
      }),
    );
  }
  const cacheDir = await tempDir('s3-cache');
  const location = `s3://models/store/${id}/model.json`;

  const noClient = await t.throwsAsync(loadClassifier(location, { cacheDir }), { instanceOf: ModelError });
  t.is(noClient?.code, 'INVALID_OPTIONS');

  const classifier = await loadClassifier(location, { cacheDir, s3 });
  t.teardown(() => classifier.dispose());
  t.is(classifier.manifest.location, location);
  const [prediction] = await classifier.classify([await decodeForModel(samples[0]!.path, classifier.manifest)]);
  assertWellFormed(t, prediction!, classifier.manifest);
  t.is((await fetchModel(classifier.manifest, { cacheDir, s3 })).origin, 'cache');

  const missing = validateManifest({ ...classifier.manifest, location: 's3://models/store/nothing/model.json' });
  const error = await t.throwsAsync(fetchModel(missing, { cacheDir, s3 }), { instanceOf: ModelError });
  t.is(error?.code, 'HTTP_ERROR');
  t.like(error?.context, { url: 's3://models/store/nothing/model.json', status: 404 });
});
