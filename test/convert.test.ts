/**
 * TF.js layers models converted to ONNX and run on ONNX Runtime (models/convert/): the same
 * predictions as tfjs on every sample photo, hand-written topologies for what MobileNet does not
 * use and for what is refused, the conversion cache, downloads and the registry entries.
 */
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import {
  builtinManifest,
  type Classifier,
  convertedOnnxModel,
  loadClassifier,
  ModelError,
  type ModelManifest,
  type Prediction,
  publicUrl,
  type RgbImage,
  resolveModel,
  validateManifest,
} from '../models/index.js';
import { decodeForModel, readGroundTruth, SHARED_MODELS_DIR } from './helpers/model-fixtures.js';
import { startModelServer } from './helpers/model-server.js';

const V075 = 'mobilenet-v1-0.75-224';
const V025 = 'mobilenet-v1-0.25-224';
const BATCH = 8;

const tempDirs: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `convert-test-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}
test.after.always(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function classifyAll(classifier: Classifier, images: readonly RgbImage[], batch: number): Promise<Prediction[]> {
  const out: Prediction[] = [];
  for (let i = 0; i < images.length; i += batch) out.push(...(await classifier.classify(images.slice(i, i + batch))));
  return out;
}

/**
 * Same top-1, and every class in either top-5 within `tolerance`: where both list it, the two
 * scores; where only one does, the other's 5th score bounds it from above. Returns the largest
 * difference between two listed scores.
 */
function assertSamePredictions(
  t: ExecutionContext,
  a: readonly Prediction[],
  b: readonly Prediction[],
  tolerance: number,
  names: readonly string[],
): number {
  t.is(a.length, b.length);
  let max = 0;
  a.forEach((p, i) => {
    const q = b[i]!;
    t.is(p.top5[0]!.index, q.top5[0]!.index, `${names[i]}: top-1 ${p.label} vs ${q.label}`);
    for (const [x, y] of [
      [p, q],
      [q, p],
    ] as const) {
      for (const c of x.top5) {
        const other = y.top5.find((d) => d.index === c.index);
        if (other !== undefined) max = Math.max(max, Math.abs(other.score - c.score));
        else
          t.true(
            c.score <= y.top5[4]!.score + tolerance,
            `${names[i]}: class ${c.index} ${c.score} is not in the other top-5`,
          );
      }
    }
  });
  t.true(max < tolerance, `max |Δp| ${max}`);
  return max;
}

// ---------------------------------------------------------------- the real models

/** A width's converted model (with a cache of its own) and its tfjs model, disposed after the test. */
async function onBothRuntimes(t: ExecutionContext, width: string): Promise<[onnx: Classifier, tfjs: Classifier]> {
  const onnx = await loadClassifier(`${width}-onnx`, { cacheDir: await tempDir(width) });
  t.teardown(() => onnx.dispose());
  const tfjs = await loadClassifier(`${width}-tfjs`);
  t.teardown(() => tfjs.dispose());
  return [onnx, tfjs];
}

test('v1 0.75 on ONNX Runtime: the same top-1 as tfjs on every second photo (125), probabilities within 1e-3, in batches', async (t) => {
  const [onnx, tfjs] = await onBothRuntimes(t, V075);
  t.is(onnx.backend, 'onnxruntime-node (converted from tfjs)');
  t.like(onnx.manifest, { format: 'tfjs-layers', runtime: 'onnxruntime', input: { layout: 'NCHW', resize: 'fill' } });
  t.deepEqual(onnx.manifest.input.normalization, tfjs.manifest.input.normalization);

  // Every second photo: tfjs runs in plain JavaScript here, the slowest thing in the suite; the
  // bench (npm run bench) gives both runtimes' top-1 on all 250.
  const all = await readGroundTruth();
  t.is(all.length, 250);
  const truth = all.filter((_, i) => i % 2 === 0);
  const images = await Promise.all(truth.map((g) => decodeForModel(g.path, onnx.manifest)));
  const [a, b] = [await classifyAll(onnx, images, BATCH), await classifyAll(tfjs, images, BATCH)];
  const max = assertSamePredictions(
    t,
    a,
    b,
    1e-3,
    truth.map((g) => g.file),
  );
  const top1 = a.filter((p, i) => p.top5[0]!.index === truth[i]!.classIndex).length / truth.length;
  t.log(`top-1 ${(100 * top1).toFixed(1)}% on ${truth.length} photos, max |Δp| against tfjs ${max.toExponential(2)}`);
  t.true(top1 >= 0.8, `top-1 ${top1}`);
});

test('v1 0.25 on ONNX Runtime: the same predictions as tfjs on sampled photos, batch == single', async (t) => {
  const [onnx, tfjs] = await onBothRuntimes(t, V025);
  const truth = (await readGroundTruth()).filter((_, i) => i % 5 === 0);
  const images = await Promise.all(truth.map((g) => decodeForModel(g.path, onnx.manifest)));
  const names = truth.map((g) => g.file);
  const batched = await classifyAll(onnx, images, BATCH);
  assertSamePredictions(t, batched, await classifyAll(tfjs, images, BATCH), 1e-3, names);
  assertSamePredictions(t, batched, await classifyAll(onnx, images, 1), 1e-5, names);
});

// ---------------------------------------------------------------- hand-written topologies

interface LayerSpec {
  readonly className: string;
  readonly name: string;
  readonly config?: Record<string, unknown>;
  /** Weight name suffix → shape, in the order Keras lists them. */
  readonly weights?: Readonly<Record<string, readonly number[]>>;
}

type Quantization = 'uint8' | 'float16';

/** Deterministic pseudo-random numbers in [-1, 1) (mulberry32). */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return (((x ^ (x >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

function float16(value: number): number {
  const f = new DataView(new ArrayBuffer(4));
  f.setFloat32(0, value);
  const bits = f.getUint32(0);
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  if (exponent <= 0) return sign; // tiny: zero is near enough for test weights
  return sign | (exponent << 10) | ((bits >>> 13) & 0x3ff);
}

/**
 * Writes a Keras 2 topology (a chain: each layer reads the one before) as a TF.js layers model with
 * random weights, one weight file per layer; `quantize` stores some weights as tfjs' uint8 or float16.
 */
async function writeLayersModel(
  dir: string,
  layers: readonly LayerSpec[],
  options: { sequential?: boolean; seed?: number; quantize?: Readonly<Record<string, Quantization>> } = {},
): Promise<string> {
  const next = random(options.seed ?? 1);
  const weightsManifest = [];
  for (const layer of layers) {
    const specs = [];
    const parts: Uint8Array[] = [];
    for (const [param, shape] of Object.entries(layer.weights ?? {})) {
      const name = `${layer.name}/${param}`;
      const values = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () =>
        param === 'moving_variance' ? 0.5 + 0.5 * Math.abs(next()) : next(),
      );
      const quantize = options.quantize?.[name];
      if (quantize === 'uint8') {
        const min = Math.min(...values);
        const scale = (Math.max(...values) - min) / 255;
        parts.push(Uint8Array.from(values, (v) => Math.round((v - min) / scale)));
        specs.push({ name, shape, dtype: 'float32', quantization: { dtype: 'uint8', min, scale } });
      } else if (quantize === 'float16') {
        parts.push(new Uint8Array(Uint16Array.from(values, float16).buffer));
        specs.push({ name, shape, dtype: 'float32', quantization: { dtype: 'float16' } });
      } else {
        parts.push(new Uint8Array(values.buffer));
        specs.push({ name, shape, dtype: 'float32' });
      }
    }
    if (specs.length === 0) continue;
    const file = `${layer.name}.bin`;
    await writeFile(path.join(dir, file), Buffer.concat(parts));
    weightsManifest.push({ paths: [file], weights: specs });
  }
  const kerasLayers = layers.map((l, i) => ({
    class_name: l.className,
    name: l.name,
    config: { name: l.name, trainable: true, ...l.config },
    ...(options.sequential ? {} : { inbound_nodes: i === 0 ? [] : [[[layers[i - 1]!.name, 0, 0, {}]]] }),
  }));
  const modelConfig = options.sequential
    ? { class_name: 'Sequential', config: { name: 'tiny', layers: kerasLayers } }
    : {
        class_name: 'Model',
        config: {
          name: 'tiny',
          layers: kerasLayers,
          input_layers: [[layers[0]!.name, 0, 0]],
          output_layers: [[layers.at(-1)!.name, 0, 0]],
        },
      };
  const file = path.join(dir, 'model.json');
  await writeFile(
    file,
    JSON.stringify({
      modelTopology: { keras_version: '2.1.4', backend: 'tensorflow', model_config: modelConfig },
      weightsManifest,
    }),
  );
  return file;
}

const SIZE = 9;
const CLASSES = 5;
const LABELS = ['zero', 'one', 'two', 'three', 'four'];

function tinyManifest(
  location: string,
  runtime: 'tfjs' | 'onnxruntime',
  layout: 'NCHW' | 'NHWC' = runtime === 'tfjs' ? 'NHWC' : 'NCHW',
): ModelManifest {
  return validateManifest({
    id: 'tiny',
    format: 'tfjs-layers',
    runtime,
    location,
    input: {
      width: SIZE,
      height: SIZE,
      layout,
      resize: 'fill',
      normalization: { scale: 127.5, mean: [1, 1, 1], std: [1, 1, 1] },
    },
    output: { kind: 'probabilities', offset: 0 },
    labels: LABELS,
  });
}

const input = (size = SIZE): LayerSpec => ({
  className: 'InputLayer',
  name: 'input_1',
  config: { batch_input_shape: [null, size, size, 3], dtype: 'float32', sparse: false },
});
const conv = (name: string, config: Record<string, unknown>, cin: number): LayerSpec => {
  const [kh, kw] =
    typeof config.kernel_size === 'number'
      ? [config.kernel_size, config.kernel_size]
      : (config.kernel_size as number[]);
  const filters = config.filters as number;
  return {
    className: 'Conv2D',
    name,
    config: {
      strides: [1, 1],
      padding: 'valid',
      data_format: 'channels_last',
      dilation_rate: [1, 1],
      activation: 'linear',
      use_bias: true,
      ...config,
    },
    weights: { kernel: [kh!, kw!, cin, filters], ...(config.use_bias === false ? {} : { bias: [filters] }) },
  };
};
const batchNorm = (name: string, channels: number, config: Record<string, unknown> = {}): LayerSpec => ({
  className: 'BatchNormalization',
  name,
  config: { axis: -1, epsilon: 0.001, center: true, scale: true, momentum: 0.99, ...config },
  weights: {
    ...(config.scale === false ? {} : { gamma: [channels] }),
    ...(config.center === false ? {} : { beta: [channels] }),
    moving_mean: [channels],
    moving_variance: [channels],
  },
});
const head = (channels: number): LayerSpec[] => [
  { className: 'GlobalAveragePooling2D', name: 'gap', config: { data_format: 'channels_last' } },
  { className: 'Dropout', name: 'dropout', config: { rate: 0.5 } },
  { className: 'Reshape', name: 'to_pixel', config: { target_shape: [1, 1, channels] } },
  conv('logits', { filters: CLASSES, kernel_size: 1 }, channels),
  { className: 'Activation', name: 'softmax', config: { activation: 'softmax' } },
  { className: 'Reshape', name: 'flat', config: { target_shape: [CLASSES] } },
];

/**
 * Everything MobileNet v1 does not use: ZeroPadding2D (folded into a 'valid', stride-2 conv),
 * uint8 and float16 weights, depth_multiplier 2, BatchNormalization after an activation (not
 * foldable) without beta, ReLU and ReLU(max_value), a Reshape that reorders pixels, dilation, a
 * conv without bias with its own relu.
 */
const TINY: readonly LayerSpec[] = [
  input(),
  {
    className: 'ZeroPadding2D',
    name: 'pad',
    config: {
      padding: [
        [1, 2],
        [0, 1],
      ],
      data_format: 'channels_last',
    },
  },
  conv('conv_a', { filters: 4, kernel_size: 3, strides: [2, 2] }, 3), // 12x10 → 5x4
  batchNorm('bn_a', 4, { epsilon: 0.01 }),
  { className: 'ReLU', name: 'relu_a', config: { max_value: null } },
  {
    className: 'DepthwiseConv2D',
    name: 'dw',
    config: {
      kernel_size: [3, 3],
      strides: [1, 1],
      padding: 'same',
      depth_multiplier: 2,
      data_format: 'channels_last',
      dilation_rate: [1, 1],
      activation: 'relu6',
      use_bias: true,
    },
    weights: { depthwise_kernel: [3, 3, 4, 2], bias: [8] },
  },
  batchNorm('bn_b', 8, { center: false }),
  { className: 'ReLU', name: 'relu_b', config: { max_value: 4.5, negative_slope: 0, threshold: 0 } },
  { className: 'Reshape', name: 'reorder', config: { target_shape: [10, 2, 8] } },
  conv(
    'conv_b',
    { filters: 6, kernel_size: [3, 2], padding: 'same', dilation_rate: [2, 1], activation: 'relu', use_bias: false },
    8,
  ),
  ...head(6),
];
const TINY_QUANTIZE: Record<string, Quantization> = { 'conv_a/kernel': 'uint8', 'dw/depthwise_kernel': 'float16' };

function randomImages(count: number, seed: number): RgbImage[] {
  const next = random(seed);
  return Array.from({ length: count }, () => ({
    data: Uint8Array.from({ length: SIZE * SIZE * 3 }, () => Math.floor((next() + 1) * 128)),
    width: SIZE,
    height: SIZE,
  }));
}

/** Every class's probability (5 labels: the top-5 lists them all), in class order. */
const probabilities = (p: Prediction) => [...p.top5].sort((a, b) => a.index - b.index).map((c) => c.score);

async function assertMatchesTfjs(
  t: ExecutionContext,
  location: string,
  layouts: readonly ('NCHW' | 'NHWC')[],
): Promise<void> {
  const cacheDir = await tempDir('tiny');
  const images = randomImages(6, 7);
  const tfjs = await loadClassifier(tinyManifest(location, 'tfjs'));
  t.teardown(() => tfjs.dispose());
  const expected = (await tfjs.classify(images)).map(probabilities);
  // The model must tell the images apart, or agreeing would prove little.
  t.true(
    expected.some((p) => Math.max(...p) > 0.3),
    JSON.stringify(expected),
  );
  for (const layout of layouts) {
    const onnx = await loadClassifier(tinyManifest(location, 'onnxruntime', layout), { cacheDir });
    t.teardown(() => onnx.dispose());
    const actual = (await onnx.classify(images)).map(probabilities);
    for (const [i, p] of actual.entries()) {
      for (const [k, v] of p.entries())
        t.true(Math.abs(v - expected[i]![k]!) < 1e-5, `${layout} image ${i} class ${k}: ${v} vs ${expected[i]![k]}`);
    }
  }
}

test('hand-written: padding, strides, dilation, quantized weights, unfoldable BatchNormalization and a reordering Reshape match tfjs, NCHW and NHWC input', async (t) => {
  const file = await writeLayersModel(await tempDir('tiny-model'), TINY, { quantize: TINY_QUANTIZE });
  await assertMatchesTfjs(t, file, ['NCHW', 'NHWC']);
  const result = await convertedOnnxModel(tinyManifest(file, 'onnxruntime'), file, {
    cacheDir: await tempDir('tiny-stats'),
  });
  // bn_a folded into conv_a; pad folded too; bn_b (after an activation) stays as Mul + Add.
  t.like(result.conversion, {
    foldedBatchNorms: 1,
    foldedPaddings: 1,
    nodes: { Conv: 4, Mul: 1, Add: 1, Relu: 2, Clip: 2, Transpose: 2 },
  });
  t.is(result.conversion?.nodes.Pad, undefined);
  t.is(result.conversion?.nodes.BatchNormalization, undefined);
});

test('hand-written: a Sequential model whose first layer carries the input shape matches tfjs', async (t) => {
  const first = conv(
    'conv_s',
    {
      filters: 3,
      kernel_size: 3,
      padding: 'same',
      strides: [2, 2],
      activation: 'relu6',
      batch_input_shape: [null, SIZE, SIZE, 3],
    },
    3,
  );
  const file = await writeLayersModel(await tempDir('sequential'), [first, batchNorm('bn_s', 3), ...head(3)], {
    sequential: true,
    seed: 3,
  });
  await assertMatchesTfjs(t, file, ['NCHW']);
});

const REFUSED: readonly {
  readonly what: string;
  readonly layer: LayerSpec;
  readonly attribute?: string;
  readonly message: RegExp;
}[] = [
  {
    what: 'a layer class',
    layer: { className: 'MaxPooling2D', name: 'pool', config: { pool_size: [2, 2] } },
    message:
      /MaxPooling2D layer 'pool': the layer class MaxPooling2D is not supported \(supported: InputLayer, Conv2D, /u,
  },
  {
    what: 'an activation',
    layer: { className: 'Activation', name: 'squash', config: { activation: 'sigmoid' } },
    attribute: 'activation',
    message: /Activation layer 'squash': activation "sigmoid" is not supported \(linear, relu, relu6, softmax\)/u,
  },
  {
    what: 'a data format',
    layer: conv('conv_cf', { filters: 2, kernel_size: 1, data_format: 'channels_first' }, 3),
    attribute: 'data_format',
    message: /Conv2D layer 'conv_cf': data_format "channels_first" is not supported/u,
  },
  {
    what: 'a padding',
    layer: conv('conv_causal', { filters: 2, kernel_size: 1, padding: 'causal' }, 3),
    attribute: 'padding',
    message: /Conv2D layer 'conv_causal': padding "causal" is not supported \("same", "valid"\)/u,
  },
  {
    what: 'a leaky ReLU',
    layer: { className: 'ReLU', name: 'leaky', config: { negative_slope: 0.1 } },
    attribute: 'negative_slope',
    message: /ReLU layer 'leaky': negative_slope 0.1 is not supported \(0\)/u,
  },
  {
    what: 'a conv activation',
    layer: conv('conv_tanh', { filters: 2, kernel_size: 1, activation: 'tanh' }, 3),
    attribute: 'activation',
    message: /Conv2D layer 'conv_tanh': activation "tanh"/u,
  },
];

for (const { what, layer, attribute, message } of REFUSED) {
  test(`hand-written: ${what} the converter does not implement is refused with a typed error naming the layer`, async (t) => {
    const file = await writeLayersModel(await tempDir('refused'), [
      input(),
      conv('conv_ok', { filters: 3, kernel_size: 1 }, 3),
      layer,
      ...head(3),
    ]);
    const cacheDir = await tempDir('refused-cache');
    const error = await t.throwsAsync(loadClassifier(tinyManifest(file, 'onnxruntime'), { cacheDir }), {
      instanceOf: ModelError,
    });
    t.is(error?.code, 'UNSUPPORTED_LAYER');
    t.regex(error!.message, message);
    t.like(error?.context, {
      layer: layer.name,
      className: layer.className,
      ...(attribute === undefined ? {} : { attribute }),
    });
    t.deepEqual(
      await readdir(path.join(cacheDir, 'converted')).catch(() => []),
      [],
      'nothing is cached for a refused model',
    );
  });
}

test('hand-written: topologies outside a chain of single-input layers are refused as UNSUPPORTED_TOPOLOGY', async (t) => {
  const dir = await tempDir('topology');
  const file = await writeLayersModel(dir, [input(), conv('conv_ok', { filters: 3, kernel_size: 1 }, 3), ...head(3)]);
  const json = JSON.parse(await readFile(file, 'utf8')) as {
    modelTopology: { model_config: { config: { layers: { name: string; inbound_nodes: unknown[] }[] } } };
  };
  const gap = json.modelTopology.model_config.config.layers.find((l) => l.name === 'gap')!;
  gap.inbound_nodes = [
    [
      ['conv_ok', 0, 0, {}],
      ['input_1', 0, 0, {}],
    ],
  ];
  await writeFile(file, JSON.stringify(json));
  const error = await t.throwsAsync(loadClassifier(tinyManifest(file, 'onnxruntime'), { cacheDir: dir }), {
    instanceOf: ModelError,
  });
  t.is(error?.code, 'UNSUPPORTED_TOPOLOGY');
  t.like(error?.context, { layer: 'gap', className: 'GlobalAveragePooling2D' });
  t.regex(error!.message, /GlobalAveragePooling2D layer 'gap' takes 2 inputs/u);
});

// ---------------------------------------------------------------- the cache

test('cache: a second load reuses the converted file; a changed model.json or weight file is converted again', async (t) => {
  const modelDir = await tempDir('cache-model');
  await cp(path.join(SHARED_MODELS_DIR, `${V025}-tfjs`), modelDir, { recursive: true });
  const cacheDir = await tempDir('cache');
  const file = path.join(modelDir, 'model.json');
  const manifest = validateManifest({ ...(await builtinManifest(`${V025}-onnx`)), location: file });
  const convertedDir = path.join(cacheDir, 'converted');

  const first = await convertedOnnxModel(manifest, file, { cacheDir });
  t.is(first.origin, 'converted');
  t.true(first.path.startsWith(convertedDir + path.sep) && first.path.endsWith('.onnx'));
  const written = await stat(first.path);
  const again = await convertedOnnxModel(manifest, file, { cacheDir });
  t.deepEqual([again.origin, again.path], ['cache', first.path]);

  const image = await decodeForModel((await readGroundTruth())[0]!.path, manifest);
  const classifier = await loadClassifier(manifest, { cacheDir });
  const [before] = await classifier.classify([image]);
  await classifier.dispose();
  t.deepEqual(await readdir(convertedDir), [path.basename(first.path)]);
  t.is((await stat(first.path)).mtimeMs, written.mtimeMs, 'loadClassifier reused the file');

  // model.json: a larger epsilon in the first BatchNormalization changes the model a little.
  const json = await readFile(file, 'utf8');
  t.true(json.includes('"epsilon":0.001'));
  await writeFile(file, json.replace('"epsilon":0.001', '"epsilon":0.5'));
  const changed = await loadClassifier(manifest, { cacheDir });
  const [after] = await changed.classify([image]);
  await changed.dispose();
  const [second] = await readdir(convertedDir);
  t.not(second, path.basename(first.path));
  t.deepEqual(await readdir(convertedDir), [second], 'the previous conversion was removed');
  t.not(after!.score, before!.score);

  // A weight file.
  const shard = path.join(modelDir, 'group1-shard1of1');
  const bytes = await readFile(shard);
  bytes.writeFloatLE(bytes.readFloatLE(0) + 0.5, 0);
  await writeFile(shard, bytes);
  const third = await convertedOnnxModel(manifest, file, { cacheDir });
  t.is(third.origin, 'converted');
  t.deepEqual(await readdir(convertedDir), [path.basename(third.path)]);
  t.not(path.basename(third.path), second);
});

// ---------------------------------------------------------------- downloads and registry

test('download: a converted model whose tfjs files are not local is downloaded once, converted, then loaded from the cache', async (t) => {
  const server = await startModelServer(SHARED_MODELS_DIR);
  t.teardown(() => server.close());
  const cacheDir = await tempDir('download');
  const manifest = validateManifest({
    ...(await builtinManifest(`${V025}-onnx`)),
    location: `${server.url}${V025}-tfjs/model.json`,
  });
  const downloaded = await loadClassifier(manifest, { cacheDir });
  t.teardown(() => downloaded.dispose());
  const requests = server.requests.length;
  t.true(requests > 50, `${requests} requests: model.json and its 55 weight files`);
  t.is(downloaded.backend, 'onnxruntime-node (converted from tfjs)');
  t.is((await readdir(path.join(cacheDir, 'converted'))).length, 1);

  const again = await loadClassifier(manifest, { cacheDir });
  t.teardown(() => again.dispose());
  t.is(server.requests.length, requests, 'no request the second time');
  const local = await loadClassifier(`${V025}-onnx`, { cacheDir: await tempDir('download-local') });
  t.teardown(() => local.dispose());
  const image = await decodeForModel((await readGroundTruth())[3]!.path, manifest);
  const [[a], [b]] = await Promise.all([again.classify([image]), local.classify([image])]);
  t.is(a!.top5[0]!.index, b!.top5[0]!.index);
  t.true(Math.abs(a!.score - b!.score) < 1e-6);
});

test('registry: the converted ids read the tfjs files with the tfjs preprocessing, NCHW, or their public URL', async (t) => {
  for (const width of [V075, V025]) {
    const onnx = await resolveModel(`${width}-onnx`);
    const tfjs = await resolveModel(`${width}-tfjs`);
    t.is(onnx.location, tfjs.location);
    t.is(onnx.location, path.join(SHARED_MODELS_DIR, `${width}-tfjs`, 'model.json'));
    t.like(onnx, {
      format: 'tfjs-layers',
      runtime: 'onnxruntime',
      output: tfjs.output,
      input: { layout: 'NCHW', resize: 'fill', width: 224, height: 224 },
    });
    t.deepEqual(onnx.input.normalization, tfjs.input.normalization);
    t.is(publicUrl(`${width}-onnx`), publicUrl(`${width}-tfjs`));
    t.is(
      (await resolveModel(`${width}-onnx`, { modelsDir: await tempDir('empty') })).location,
      publicUrl(`${width}-tfjs`),
    );
  }
  // A location of the tfjs files still means the tfjs model.
  t.is((await resolveModel(publicUrl(`${V075}-tfjs`))).id, `${V075}-tfjs`);

  const base = JSON.parse(JSON.stringify(await builtinManifest('mobilenet-v2-int8-onnx'))) as Record<string, unknown>;
  const bad = t.throws(() => validateManifest({ ...base, runtime: 'tfjs' }), { instanceOf: ModelError });
  t.is(bad?.code, 'INVALID_MANIFEST');
  t.deepEqual(bad?.context.issues, [{ path: 'runtime', message: "must be one of 'onnxruntime'" }]);
  const graph = JSON.parse(JSON.stringify(await builtinManifest('mobilenet-v1-0.25-224-tfjs-graph'))) as Record<
    string,
    unknown
  >;
  t.throws(() => validateManifest({ ...graph, runtime: 'onnxruntime' }), {
    instanceOf: ModelError,
    message: /runtime must be one of 'tfjs'/u,
  });
});
