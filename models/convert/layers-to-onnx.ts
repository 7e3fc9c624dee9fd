/**
 * TF.js layers model → ONNX graph, for ONNX Runtime.
 *
 * Keras tensors are channels-last; the graph runs NCHW, which ONNX Runtime's CPU kernels (and its
 * NCHWc layout pass) are built for. So every rank-4 tensor (batch, height, width, channels) is kept
 * as (batch, channels, height, width): kernels are transposed once here, and a Reshape that would
 * see the difference gets a Transpose around it. The layers are first turned into a small list of
 * operations, then BatchNormalization is folded into the convolution before it (scaled weights, a
 * new bias) and ZeroPadding2D into the convolution after it (its pads); ReLU6 becomes Clip(0, 6),
 * which ONNX Runtime fuses into the convolution.
 *
 * Refused, with `UNSUPPORTED_LAYER` naming the layer's class, its name and what is unsupported:
 * every layer class but the ones in `LAYERS`, and every attribute value they do not implement.
 */
import { ModelError } from '../errors.js';
import { type KerasLayer, readTopology, readWeights, type Weight } from './keras.js';
import {
  type Attribute,
  encodeModel,
  int,
  ints,
  type ModelInfo,
  OnnxGraph,
  type OnnxValue,
  string,
  UniqueNames,
} from './onnx-model.js';

export interface ConvertOptions {
  /** Layout of the ONNX input: `NCHW` feeds the first convolution as is; `NHWC` (Keras') adds a Transpose. */
  readonly inputLayout: 'NCHW' | 'NHWC';
  /** What is converted, for messages (the model.json path). */
  readonly source: string;
  /** Stored in the ONNX file's metadata. */
  readonly metadata?: Readonly<Record<string, string>>;
  readonly producerVersion: string;
}

export interface ConversionResult {
  readonly onnx: Uint8Array;
  /** Layer classes converted, with counts. */
  readonly layers: Readonly<Record<string, number>>;
  /** ONNX operators emitted, with counts. */
  readonly nodes: Readonly<Record<string, number>>;
  readonly foldedBatchNorms: number;
  readonly foldedPaddings: number;
}

/** `weightFiles`: the bytes of the files `weightFiles(modelJson)` lists, in that order. */
export function convertLayersModel(
  modelJson: unknown,
  weightFiles: readonly Uint8Array[],
  options: ConvertOptions,
): ConversionResult {
  const { layers } = readTopology(modelJson, options.source);
  const input = layers[0]!;
  if (input.className !== 'InputLayer') {
    throw new ModelError(
      'UNSUPPORTED_TOPOLOGY',
      `cannot convert ${options.source}: the model starts at ${input.className} layer '${input.name}', not an InputLayer`,
      {
        source: options.source,
        layer: input.name,
        className: input.className,
      },
    );
  }
  // Every class first: an unsupported layer is named before any weight is looked at.
  const converters = layers.slice(1).map((layer) => {
    const convert = Object.hasOwn(LAYERS, layer.className) ? LAYERS[layer.className] : undefined;
    if (convert === undefined) {
      throw unsupported(
        layer,
        `the layer class ${layer.className} is not supported (supported: ${['InputLayer', ...Object.keys(LAYERS)].join(', ')})`,
        {},
      );
    }
    return [layer, convert] as const;
  });
  const builder = new Builder(
    readWeights(modelJson, weightFiles, options.source),
    options.source,
    input,
    options.inputLayout,
  );
  let value = builder.start;
  const counts: Record<string, number> = { InputLayer: 1 };
  for (const [layer, convert] of converters) {
    value = convert(layer, value, builder);
    counts[layer.className] = (counts[layer.className] ?? 0) + 1;
  }
  const output = builder.output(value, layers.at(-1)!.name);
  const foldedPaddings = builder.foldPaddings();
  const foldedBatchNorms = builder.foldBatchNorms();
  const graph = builder.emit(output);
  const info: ModelInfo = {
    graphName: layers.at(-1)!.name,
    producerVersion: options.producerVersion,
    docString: `converted from the TF.js layers model ${options.source}`,
    metadata: options.metadata ?? {},
  };
  const nodes: Record<string, number> = {};
  for (const node of graph.nodes) nodes[node.op] = (nodes[node.op] ?? 0) + 1;
  return { onnx: encodeModel(graph, info), layers: counts, nodes, foldedBatchNorms, foldedPaddings };
}

// ---------------------------------------------------------------- values and operations

/** A Keras shape without the batch dimension; `null` where unknown. Rank 3 (h, w, c) is stored NCHW. */
type Shape = readonly (number | null)[];

interface Value {
  readonly name: string;
  readonly shape: Shape;
}

const isSpatial = (shape: Shape) => shape.length === 3;

/** top, left, bottom, right */
type Pads = [number, number, number, number];

type Op = { layer: string; input: string; output: string } & (
  | {
      op: 'Conv';
      weight: Float32Array;
      dims: [number, number, number, number];
      bias: Float32Array | undefined;
      group: number;
      strides: readonly number[];
      dilations: readonly number[];
      pads: Pads | 'SAME_UPPER';
    }
  /** y = x * scale + shift, per channel: an unfolded BatchNormalization. */
  | { op: 'Affine'; scale: Float64Array; shift: Float64Array; spatial: boolean }
  | { op: 'Relu' }
  | { op: 'Clip'; min: number; max: number }
  | { op: 'Softmax'; axis: number }
  | { op: 'Pad'; pads: Pads }
  | { op: 'GlobalAveragePool' }
  | { op: 'Flatten' }
  | { op: 'Reshape'; shape: readonly number[] }
  | { op: 'Transpose'; perm: readonly number[] }
  | { op: 'Identity' }
);

type OpFields<K extends Op['op']> = Omit<Extract<Op, { op: K }>, 'layer' | 'input' | 'output' | 'op'>;

const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];

class Builder {
  private ops: Op[] = [];
  /** Tensor names: each layer's output is named after the layer (with a suffix for the steps inside it). */
  private readonly names = new UniqueNames();
  /** The ONNX graph's input, as declared. */
  private readonly graphInput: OnnxValue;
  /** The value the first layer after the InputLayer reads: NCHW for a rank-4 input. */
  readonly start: Value;

  constructor(
    private readonly weights: ReadonlyMap<string, Weight>,
    readonly source: string,
    input: KerasLayer,
    layout: 'NCHW' | 'NHWC',
  ) {
    const shape = input.config.batch_input_shape ?? input.config.batch_shape;
    if (
      !Array.isArray(shape) ||
      shape.length < 2 ||
      !shape.slice(1).every((d) => d === null || (Number.isInteger(d) && d > 0))
    ) {
      throw unsupported(
        input,
        `batch_input_shape ${JSON.stringify(shape)} is not [batch, dims...] with positive or null dims`,
        { attribute: 'batch_input_shape', value: shape },
      );
    }
    const dtype = input.config.dtype ?? 'float32';
    if (dtype !== 'float32')
      throw unsupported(input, `dtype ${JSON.stringify(dtype)} is not supported (float32)`, {
        attribute: 'dtype',
        value: dtype,
      });
    for (const flag of ['sparse', 'ragged'] as const) {
      if (input.config[flag] === true)
        throw unsupported(input, `${flag} inputs are not supported`, { attribute: flag, value: true });
    }
    const keras = shape.slice(1) as (number | null)[];
    const dims = keras.map((d, i) => d ?? `d${i + 1}`);
    const name = this.names.take(input.name);
    const [h, w, c] = dims as [number | string, number | string, number | string];
    const nchw = isSpatial(keras) && layout === 'NCHW';
    this.graphInput = { name, dims: ['N', ...(nchw ? [c, h, w] : dims)] };
    this.start =
      isSpatial(keras) && !nchw
        ? this.push(input, { name, shape: keras }, 'Transpose', keras, { perm: TO_NCHW }, 'nchw')
        : { name, shape: keras };
  }

  /** The graph output: back to Keras' channels-last when it is a rank-4 tensor. */
  output(value: Value, layerName: string): Value {
    if (isSpatial(value.shape))
      return this.push({ name: layerName }, value, 'Transpose', value.shape, { perm: TO_NHWC }, 'nhwc');
    if (value.name === this.graphInput.name)
      return this.push({ name: layerName }, value, 'Identity', value.shape, {}, 'output');
    return value;
  }

  /** Appends an operation reading `from`; returns its output value. */
  push<K extends Op['op']>(
    layer: { name: string },
    from: Value,
    op: K,
    shape: Shape,
    fields: OpFields<K>,
    suffix?: string,
  ): Value {
    const output = this.names.take(suffix === undefined ? layer.name : `${layer.name}/${suffix}`);
    this.ops.push({ layer: layer.name, input: from.name, output, op, ...fields } as Op);
    return { name: output, shape };
  }

  /** A weight of `layer`, checked against the shape the layer's config implies. */
  weight(layer: KerasLayer, param: string, shape: readonly number[]): Float32Array {
    const name = `${layer.name}/${param}`;
    const found = this.weights.get(name) ?? this.weights.get(`${name}:0`);
    if (found === undefined) {
      throw new ModelError(
        'INVALID_MODEL_FILE',
        `cannot convert ${this.source}: ${layer.className} layer '${layer.name}' needs the weight ${name}, which the weightsManifest does not list`,
        {
          source: this.source,
          layer: layer.name,
          className: layer.className,
          weight: name,
        },
      );
    }
    if (found.shape.length !== shape.length || found.shape.some((d, i) => d !== shape[i])) {
      throw new ModelError(
        'INVALID_MODEL_FILE',
        `cannot convert ${this.source}: weight ${name} is [${found.shape.join(',')}], ${layer.className} layer '${layer.name}' needs [${shape.join(',')}]`,
        {
          source: this.source,
          layer: layer.name,
          className: layer.className,
          weight: name,
          shape: found.shape,
          expected: shape,
        },
      );
    }
    return found.values;
  }

  /** ZeroPadding2D into the convolution that alone reads it. */
  foldPaddings(): number {
    return this.fold(
      'Conv',
      'Pad',
      (conv, pad) => {
        if (conv.pads === 'SAME_UPPER') return false;
        conv.pads = conv.pads.map((p, i) => p + pad.pads[i]!) as Pads;
        conv.input = pad.input;
        return true;
      },
      'producer',
    );
  }

  /** BatchNormalization into the convolution that it alone reads: W' = W·s, b' = b·s + shift per output channel. */
  foldBatchNorms(): number {
    return this.fold(
      'Affine',
      'Conv',
      (affine, conv) => {
        const perChannel = conv.weight.length / conv.dims[0];
        const weight = new Float32Array(conv.weight.length);
        const bias = new Float32Array(conv.dims[0]);
        for (let o = 0; o < conv.dims[0]; o++) {
          const s = affine.scale[o]!;
          for (let j = o * perChannel; j < (o + 1) * perChannel; j++) weight[j] = conv.weight[j]! * s;
          bias[o] = (conv.bias?.[o] ?? 0) * s + affine.shift[o]!;
        }
        conv.weight = weight;
        conv.bias = bias;
        conv.output = affine.output;
        return true;
      },
      'consumer',
    );
  }

  /**
   * Merges each `consumer` op with the `producer` op it reads when nothing else reads the
   * producer's output; `merge` updates one of them, and the other (`drop`) leaves the list.
   */
  private fold<C extends Op['op'], P extends Op['op']>(
    consumerOp: C,
    producerOp: P,
    merge: (consumer: Extract<Op, { op: C }>, producer: Extract<Op, { op: P }>) => boolean,
    drop: 'consumer' | 'producer',
  ): number {
    const readers = new Map<string, number>();
    for (const op of this.ops) readers.set(op.input, (readers.get(op.input) ?? 0) + 1);
    const byOutput = new Map(this.ops.map((op) => [op.output, op]));
    const dropped = new Set<Op>();
    for (const op of this.ops) {
      if (op.op !== consumerOp) continue;
      const producer = byOutput.get(op.input);
      if (producer?.op !== producerOp || readers.get(producer.output) !== 1 || dropped.has(producer)) continue;
      if (merge(op as Extract<Op, { op: C }>, producer as Extract<Op, { op: P }>))
        dropped.add(drop === 'producer' ? producer : op);
    }
    this.ops = this.ops.filter((op) => !dropped.has(op));
    return dropped.size;
  }

  emit(output: Value): OnnxGraph {
    const graph = new OnnxGraph(this.names);
    graph.inputs.push(this.graphInput);
    for (const op of this.ops) emitOp(graph, op);
    // The output is in Keras' order (output() transposed a rank-4 one back to channels-last).
    graph.outputs.push({ name: output.name, dims: ['N', ...output.shape.map((d, i) => d ?? `o${i + 1}`)] });
    return graph;
  }
}

function emitOp(graph: OnnxGraph, op: Op): void {
  const io = (...inputs: string[]) => [[op.input, ...inputs], [op.output]] as const;
  const name = `${op.layer}/${op.op}`;
  switch (op.op) {
    case 'Conv': {
      const w = graph.initializer(`${op.layer}/W`, op.dims, op.weight);
      const b = op.bias === undefined ? [] : [graph.initializer(`${op.layer}/B`, [op.dims[0]], op.bias)];
      const attributes: Record<string, Attribute> = {
        kernel_shape: ints(op.dims.slice(2)),
        strides: ints(op.strides),
        dilations: ints(op.dilations),
        group: int(op.group),
      };
      if (op.pads === 'SAME_UPPER') attributes.auto_pad = string('SAME_UPPER');
      else attributes.pads = ints([op.pads[0], op.pads[1], op.pads[2], op.pads[3]]);
      graph.node('Conv', name, ...io(w, ...b), attributes);
      return;
    }
    case 'Affine': {
      const dims = op.spatial ? [op.scale.length, 1, 1] : [op.scale.length];
      const scaled = `${op.output}/scaled`;
      graph.node(
        'Mul',
        `${op.layer}/Mul`,
        [op.input, graph.initializer(`${op.layer}/scale`, dims, Float32Array.from(op.scale))],
        [scaled],
      );
      graph.node(
        'Add',
        `${op.layer}/Add`,
        [scaled, graph.initializer(`${op.layer}/shift`, dims, Float32Array.from(op.shift))],
        [op.output],
      );
      return;
    }
    case 'Clip':
      graph.node('Clip', name, ...io(graph.scalar(op.min), graph.scalar(op.max)));
      return;
    case 'Softmax':
      graph.node('Softmax', name, ...io(), { axis: int(op.axis) });
      return;
    case 'Pad': {
      const [t, l, b, r] = op.pads;
      graph.node(
        'Pad',
        name,
        ...io(graph.initializer(`${op.layer}/pads`, [8], BigInt64Array.from([0, 0, t, l, 0, 0, b, r], BigInt))),
      );
      return;
    }
    case 'Flatten':
      graph.node('Flatten', name, ...io(), { axis: int(1) });
      return;
    case 'Reshape':
      graph.node(
        'Reshape',
        name,
        ...io(graph.initializer(`${op.layer}/shape`, [op.shape.length], BigInt64Array.from(op.shape, BigInt))),
      );
      return;
    case 'Transpose':
      graph.node('Transpose', name, ...io(), { perm: ints(op.perm) });
      return;
    case 'Relu':
    case 'GlobalAveragePool':
    case 'Identity':
      graph.node(op.op, name, ...io());
      return;
  }
}

// ---------------------------------------------------------------- layers

type LayerConverter = (layer: KerasLayer, x: Value, b: Builder) => Value;

function unsupported(layer: KerasLayer, what: string, context: Record<string, unknown>): ModelError {
  return new ModelError('UNSUPPORTED_LAYER', `cannot convert ${layer.className} layer '${layer.name}': ${what}`, {
    layer: layer.name,
    className: layer.className,
    ...context,
  });
}

/** A config value that must be one of `allowed` (`fallback` when absent). */
function choice<T>(layer: KerasLayer, key: string, allowed: readonly T[], fallback: T): T {
  const value = layer.config[key] ?? fallback;
  if (!allowed.includes(value as T)) {
    throw unsupported(
      layer,
      `${key} ${JSON.stringify(value)} is not supported (${allowed.map((a) => JSON.stringify(a)).join(', ')})`,
      { attribute: key, value },
    );
  }
  return value as T;
}

/** `kernel_size`, `strides`, `dilation_rate`: an int or a pair of positive ints. */
function pair(layer: KerasLayer, key: string, fallback?: number): [number, number] {
  const raw = layer.config[key] ?? fallback;
  const value = typeof raw === 'number' ? [raw, raw] : raw;
  if (!Array.isArray(value) || value.length !== 2 || !value.every((v) => Number.isInteger(v) && v > 0)) {
    throw unsupported(layer, `${key} ${JSON.stringify(raw)} is not a positive integer or a pair of them`, {
      attribute: key,
      value: raw,
    });
  }
  return value as [number, number];
}

function positiveInt(layer: KerasLayer, key: string, fallback?: number): number {
  const value = layer.config[key] ?? fallback;
  if (!Number.isInteger(value) || (value as number) < 1)
    throw unsupported(layer, `${key} ${JSON.stringify(value)} is not a positive integer`, { attribute: key, value });
  return value as number;
}

function requireSpatial(layer: KerasLayer, x: Value): [number | null, number | null, number] {
  const [h, w, c] = x.shape;
  if (!isSpatial(x.shape) || typeof c !== 'number') {
    throw unsupported(
      layer,
      `its input has shape [batch,${x.shape.join(',')}]; it needs [batch, height, width, channels] with known channels`,
      { inputShape: x.shape },
    );
  }
  return [h ?? null, w ?? null, c];
}

const channelsLast = (layer: KerasLayer) => choice(layer, 'data_format', ['channels_last'], 'channels_last');

/** TF's `same` (extra padding at the bottom/right, as ONNX's SAME_UPPER) and `valid`, per spatial dim. */
function convGeometry(
  layer: KerasLayer,
  size: number | null,
  kernel: number,
  stride: number,
  dilation: number,
  padding: 'same' | 'valid',
): { out: number | null; begin: number; end: number } {
  const span = (kernel - 1) * dilation + 1;
  if (size === null) return { out: null, begin: 0, end: 0 };
  if (padding === 'same') {
    const out = Math.ceil(size / stride);
    const total = Math.max((out - 1) * stride + span - size, 0);
    return { out, begin: Math.floor(total / 2), end: total - Math.floor(total / 2) };
  }
  const out = Math.floor((size - span) / stride) + 1;
  if (out < 1)
    throw unsupported(layer, `its ${span}-wide kernel does not fit its input of ${size} with padding 'valid'`, {
      attribute: 'padding',
      value: padding,
      size,
    });
  return { out, begin: 0, end: 0 };
}

/** Conv2D and DepthwiseConv2D: OIHW weights, TF padding, the layer's activation after. */
function convolution(layer: KerasLayer, x: Value, b: Builder, depthwise: boolean): Value {
  channelsLast(layer);
  const [h, w, cin] = requireSpatial(layer, x);
  const [kh, kw] = pair(layer, 'kernel_size');
  const strides = pair(layer, 'strides', 1);
  const dilations = pair(layer, 'dilation_rate', 1);
  const padding = choice(layer, 'padding', ['same', 'valid'] as const, 'valid');
  const activation = activationOf(layer, layer.config.activation ?? 'linear');
  const useBias = choice(layer, 'use_bias', [true, false], true);

  let weight: Float32Array;
  let dims: [number, number, number, number];
  let group: number;
  if (depthwise) {
    const multiplier = positiveInt(layer, 'depth_multiplier', 1);
    const kernel = b.weight(layer, 'depthwise_kernel', [kh, kw, cin, multiplier]);
    // TF's output channel c·multiplier + m is ONNX's group c, filter m.
    dims = [cin * multiplier, 1, kh, kw];
    weight = new Float32Array(kernel.length);
    for (let y = 0; y < kh; y++)
      for (let xx = 0; xx < kw; xx++)
        for (let c = 0; c < cin; c++)
          for (let m = 0; m < multiplier; m++) {
            weight[(c * multiplier + m) * kh * kw + y * kw + xx] = kernel[((y * kw + xx) * cin + c) * multiplier + m]!;
          }
    group = cin;
  } else {
    if ((layer.config.groups ?? 1) !== 1)
      throw unsupported(layer, `groups ${JSON.stringify(layer.config.groups)} is not supported (1)`, {
        attribute: 'groups',
        value: layer.config.groups,
      });
    const filters = positiveInt(layer, 'filters');
    const kernel = b.weight(layer, 'kernel', [kh, kw, cin, filters]);
    // HWIO → OIHW
    dims = [filters, cin, kh, kw];
    weight = new Float32Array(kernel.length);
    for (let y = 0; y < kh; y++)
      for (let xx = 0; xx < kw; xx++)
        for (let c = 0; c < cin; c++)
          for (let o = 0; o < filters; o++) {
            weight[((o * cin + c) * kh + y) * kw + xx] = kernel[((y * kw + xx) * cin + c) * filters + o]!;
          }
    group = 1;
  }
  const bias = useBias ? b.weight(layer, 'bias', [dims[0]]) : undefined;
  const gh = convGeometry(layer, h, kh, strides[0], dilations[0], padding);
  const gw = convGeometry(layer, w, kw, strides[1], dilations[1], padding);
  const pads: Pads | 'SAME_UPPER' =
    padding === 'same' && (h === null || w === null) ? 'SAME_UPPER' : [gh.begin, gw.begin, gh.end, gw.end];
  const shape = [gh.out, gw.out, dims[0]];
  const conv = b.push(
    layer,
    x,
    'Conv',
    shape,
    { weight, dims, bias, group, strides, dilations, pads },
    activation === 'linear' ? undefined : 'linear',
  );
  return activate(layer, conv, b, activation);
}

const ACTIVATIONS = ['linear', 'relu', 'relu6', 'softmax'] as const;
type Activation = (typeof ACTIVATIONS)[number];

function activationOf(layer: KerasLayer, value: unknown): Activation {
  if (!ACTIVATIONS.includes(value as Activation)) {
    throw unsupported(layer, `activation ${JSON.stringify(value)} is not supported (${ACTIVATIONS.join(', ')})`, {
      attribute: 'activation',
      value,
    });
  }
  return value as Activation;
}

function activate(layer: KerasLayer, x: Value, b: Builder, activation: Activation): Value {
  switch (activation) {
    case 'linear':
      return x;
    case 'relu':
      return b.push(layer, x, 'Relu', x.shape, {});
    case 'relu6':
      return b.push(layer, x, 'Clip', x.shape, { min: 0, max: 6 });
    case 'softmax':
      // Keras: over the last axis, which is the channel axis (1) of an NCHW tensor.
      return b.push(layer, x, 'Softmax', x.shape, { axis: isSpatial(x.shape) ? 1 : x.shape.length });
  }
}

const LAYERS: Readonly<Record<string, LayerConverter>> = {
  Conv2D: (layer, x, b) => convolution(layer, x, b, false),

  DepthwiseConv2D: (layer, x, b) => convolution(layer, x, b, true),

  BatchNormalization: (layer, x, b) => {
    const rawAxis = layer.config.axis ?? -1;
    const axis = Array.isArray(rawAxis) && rawAxis.length === 1 ? rawAxis[0] : rawAxis;
    const channels = x.shape.at(-1);
    if ((axis !== -1 && axis !== x.shape.length) || typeof channels !== 'number') {
      throw unsupported(
        layer,
        `axis ${JSON.stringify(rawAxis)} on an input of shape [batch,${x.shape.join(',')}] is not supported (the last axis, with a known size)`,
        { attribute: 'axis', value: rawAxis },
      );
    }
    const epsilon = layer.config.epsilon ?? 1e-3;
    if (typeof epsilon !== 'number' || !(epsilon >= 0))
      throw unsupported(layer, `epsilon ${JSON.stringify(epsilon)} is not a number >= 0`, {
        attribute: 'epsilon',
        value: epsilon,
      });
    const scaled = choice(layer, 'scale', [true, false], true);
    const centered = choice(layer, 'center', [true, false], true);
    const gamma = scaled ? b.weight(layer, 'gamma', [channels]) : undefined;
    const beta = centered ? b.weight(layer, 'beta', [channels]) : undefined;
    const mean = b.weight(layer, 'moving_mean', [channels]);
    const variance = b.weight(layer, 'moving_variance', [channels]);
    const scale = new Float64Array(channels);
    const shift = new Float64Array(channels);
    for (let c = 0; c < channels; c++) {
      scale[c] = (gamma?.[c] ?? 1) / Math.sqrt(variance[c]! + epsilon);
      shift[c] = (beta?.[c] ?? 0) - mean[c]! * scale[c]!;
    }
    return b.push(layer, x, 'Affine', x.shape, { scale, shift, spatial: isSpatial(x.shape) });
  },

  ReLU: (layer, x, b) => {
    for (const key of ['negative_slope', 'threshold'] as const) {
      const value = layer.config[key] ?? 0;
      if (value !== 0)
        throw unsupported(layer, `${key} ${JSON.stringify(value)} is not supported (0)`, { attribute: key, value });
    }
    const max = layer.config.max_value ?? null;
    if (max === null) return b.push(layer, x, 'Relu', x.shape, {});
    if (typeof max !== 'number' || !(max >= 0))
      throw unsupported(layer, `max_value ${JSON.stringify(max)} is not a number >= 0`, {
        attribute: 'max_value',
        value: max,
      });
    return b.push(layer, x, 'Clip', x.shape, { min: 0, max });
  },

  Activation: (layer, x, b) => activate(layer, x, b, activationOf(layer, layer.config.activation)),

  ZeroPadding2D: (layer, x, b) => {
    channelsLast(layer);
    const [h, w, c] = requireSpatial(layer, x);
    const raw = layer.config.padding ?? 1;
    // An int, [vertical, horizontal], or [[top, bottom], [left, right]].
    const value =
      typeof raw === 'number'
        ? [
            [raw, raw],
            [raw, raw],
          ]
        : Array.isArray(raw) && raw.every((v) => typeof v === 'number')
          ? raw.map((v) => [v, v])
          : raw;
    if (
      !Array.isArray(value) ||
      value.length !== 2 ||
      !value.every((p) => Array.isArray(p) && p.length === 2 && p.every((v) => Number.isInteger(v) && v >= 0))
    ) {
      throw unsupported(
        layer,
        `padding ${JSON.stringify(raw)} is not an int, a pair, or a pair of pairs of ints >= 0`,
        { attribute: 'padding', value: raw },
      );
    }
    const [[top, bottom], [left, right]] = value as [[number, number], [number, number]];
    const shape = [h === null ? null : h + top + bottom, w === null ? null : w + left + right, c];
    return b.push(layer, x, 'Pad', shape, { pads: [top, left, bottom, right] });
  },

  GlobalAveragePooling2D: (layer, x, b) => {
    channelsLast(layer);
    const [, , c] = requireSpatial(layer, x);
    const keepdims = choice(layer, 'keepdims', [true, false], false);
    const pooled = b.push(layer, x, 'GlobalAveragePool', [1, 1, c], {}, keepdims ? undefined : 'pooled');
    return keepdims ? pooled : b.push(layer, pooled, 'Flatten', [c], {});
  },

  Reshape: (layer, x, b) => reshape(layer, x, b),

  // Inference: the identity.
  Dropout: (_layer, x) => x,
};

/**
 * Keras reshapes in channels-last order. A rank-4 tensor is NCHW here, so it goes through NHWC
 * around the Reshape — except where height and width are 1, where both orders are the same.
 */
function reshape(layer: KerasLayer, x: Value, b: Builder): Value {
  const raw = layer.config.target_shape;
  if (
    !Array.isArray(raw) ||
    raw.length === 0 ||
    !raw.every((d) => Number.isInteger(d) && (d > 0 || d === -1)) ||
    raw.filter((d) => d === -1).length > 1
  ) {
    throw unsupported(layer, `target_shape ${JSON.stringify(raw)} is not a list of positive ints with at most one -1`, {
      attribute: 'target_shape',
      value: raw,
    });
  }
  const known = x.shape.every((d) => d !== null) ? (x.shape as number[]).reduce((a, d) => a * d, 1) : undefined;
  const fixed = (raw as number[]).reduce((a, d) => (d === -1 ? a : a * d), 1);
  if (known !== undefined && (raw.includes(-1) ? known % fixed !== 0 : known !== fixed)) {
    throw unsupported(
      layer,
      `target_shape ${JSON.stringify(raw)} does not hold the ${known} values of its input [batch,${x.shape.join(',')}]`,
      { attribute: 'target_shape', value: raw },
    );
  }
  const target = (raw as number[]).map((d) => (d === -1 && known !== undefined ? known / fixed : d));
  const shape: Shape = target.map((d) => (d === -1 ? null : d));
  const pointwise = (s: Shape) => isSpatial(s) && s[0] === 1 && s[1] === 1;

  let from = x;
  if (isSpatial(x.shape) && !pointwise(x.shape))
    from = b.push(layer, from, 'Transpose', x.shape, { perm: TO_NHWC }, 'nhwc');
  if (!isSpatial(shape)) return b.push(layer, from, 'Reshape', shape, { shape: [0, ...target] });
  if (pointwise(shape)) return b.push(layer, from, 'Reshape', shape, { shape: [0, target[2]!, 1, 1] });
  const nhwc = b.push(layer, from, 'Reshape', shape, { shape: [0, ...target] }, 'nhwc');
  return b.push(layer, nhwc, 'Transpose', shape, { perm: TO_NCHW });
}
