/**
 * Reads a TF.js layers model (`model.json` as written by tensorflowjs' Keras converter) into what
 * the ONNX converter needs: the layers on the path from the input to the output, each with the one
 * layer it reads, and the weights by name, as float32 (quantized weights are dequantized the way
 * tfjs does it).
 */
import { ModelError, type ModelErrorCode } from '../errors.js';

export interface KerasLayer {
  readonly className: string;
  readonly name: string;
  readonly config: Readonly<Record<string, unknown>>;
  /** The layer whose output this one reads; undefined for the input layer. */
  readonly input: string | undefined;
}

export interface KerasModel {
  /** Layers from the input layer (first) to the output layer (last), each after the layer it reads. */
  readonly layers: readonly KerasLayer[];
}

export interface Weight {
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function topologyError(code: ModelErrorCode, source: string, message: string, context: Json = {}): ModelError {
  return new ModelError(code, `cannot convert ${source}: ${message}`, { source, ...context });
}

/** The model's layers in the order they run. Functional (`Model`, `Functional`) and `Sequential` models. */
export function readTopology(modelJson: unknown, source: string): KerasModel {
  const topology = isObject(modelJson) ? modelJson.modelTopology : undefined;
  const modelConfig = isObject(topology) && isObject(topology.model_config) ? topology.model_config : topology;
  if (!isObject(modelConfig) || typeof modelConfig.class_name !== 'string') {
    throw topologyError(
      'INVALID_MODEL_FILE',
      source,
      'model.json has no modelTopology with a class_name (is it a TF.js layers model?)',
    );
  }
  const className = modelConfig.class_name;
  const config = modelConfig.config;
  if (className === 'Sequential') {
    const list = Array.isArray(config) ? config : isObject(config) ? config.layers : undefined;
    return sequential(parseLayers(list, source, false), source);
  }
  if (className === 'Model' || className === 'Functional') {
    if (!isObject(config))
      throw topologyError('INVALID_MODEL_FILE', source, `the ${className} topology has no config object`);
    return functional(
      parseLayers(config.layers, source, true),
      endpoint(config.input_layers, 'input', source),
      endpoint(config.output_layers, 'output', source),
      source,
    );
  }
  throw topologyError(
    'UNSUPPORTED_TOPOLOGY',
    source,
    `a ${className} model is not supported (Model, Functional or Sequential)`,
    { className },
  );
}

interface ParsedLayer extends KerasLayer {
  readonly inputCount: number;
}

function parseLayers(list: unknown, source: string, withInbound: boolean): ParsedLayer[] {
  if (!Array.isArray(list) || list.length === 0)
    throw topologyError('INVALID_MODEL_FILE', source, 'the topology has no layers');
  return list.map((entry: unknown, index) => {
    if (!isObject(entry) || typeof entry.class_name !== 'string' || !isObject(entry.config)) {
      throw topologyError('INVALID_MODEL_FILE', source, `layer ${index} has no class_name or config`, { index });
    }
    const name = typeof entry.name === 'string' ? entry.name : entry.config.name;
    if (typeof name !== 'string' || name === '')
      throw topologyError('INVALID_MODEL_FILE', source, `layer ${index} (${entry.class_name}) has no name`, { index });
    if (!withInbound)
      return { className: entry.class_name, name, config: entry.config, input: undefined, inputCount: 0 };
    const [input, inputCount] = inboundLayer(entry.inbound_nodes, entry.class_name, name, source);
    return { className: entry.class_name, name, config: entry.config, input, inputCount };
  });
}

/**
 * Keras 2 `inbound_nodes`: one node per call of the layer, each a list of `[layer, node, tensor,
 * kwargs]`. A layer called twice (shared) or another node format is refused.
 */
function inboundLayer(nodes: unknown, className: string, name: string, source: string): [string | undefined, number] {
  const context = { layer: name, className };
  if (!Array.isArray(nodes) || nodes.length === 0) return [undefined, 0];
  if (nodes.length > 1) {
    throw topologyError(
      'UNSUPPORTED_TOPOLOGY',
      source,
      `${className} layer '${name}' is called ${nodes.length} times (shared layers are not supported)`,
      context,
    );
  }
  const node: unknown = nodes[0];
  if (!Array.isArray(node) || !node.every((t) => Array.isArray(t) && typeof t[0] === 'string')) {
    throw topologyError(
      'UNSUPPORTED_TOPOLOGY',
      source,
      `${className} layer '${name}' has inbound nodes in a format other than Keras 2's [[layer, node, tensor, kwargs]]`,
      context,
    );
  }
  const tensors = node as [string, unknown, unknown][];
  if (tensors.some(([, n, t]) => n !== 0 || t !== 0)) {
    throw topologyError(
      'UNSUPPORTED_TOPOLOGY',
      source,
      `${className} layer '${name}' reads a layer's second call or output (only single-output, unshared layers are supported)`,
      context,
    );
  }
  return [tensors[0]?.[0], tensors.length];
}

function endpoint(value: unknown, what: 'input' | 'output', source: string): string {
  // [[name, 0, 0]], or a single [name, 0, 0].
  const list = Array.isArray(value) && typeof value[0] === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || !list.every((e) => Array.isArray(e) && typeof e[0] === 'string')) {
    throw topologyError('INVALID_MODEL_FILE', source, `the topology has no ${what}_layers`);
  }
  if (list.length > 1) {
    throw topologyError('UNSUPPORTED_TOPOLOGY', source, `the model has ${list.length} ${what}s (one is supported)`, {
      [`${what}s`]: list.map((e: unknown[]) => e[0]),
    });
  }
  return (list[0] as [string])[0];
}

function functional(layers: readonly ParsedLayer[], inputName: string, outputName: string, source: string): KerasModel {
  const byName = new Map(layers.map((l) => [l.name, l]));
  const ordered: KerasLayer[] = [];
  // Walk back from the output: every layer here reads exactly one other, so the path is a chain.
  for (let name: string | undefined = outputName, seen = new Set<string>(); name !== undefined; ) {
    const layer = byName.get(name);
    if (layer === undefined)
      throw topologyError('INVALID_MODEL_FILE', source, `the topology names a layer '${name}' it does not define`, {
        layer: name,
      });
    if (seen.has(name))
      throw topologyError('INVALID_MODEL_FILE', source, `the topology has a cycle through '${name}'`, { layer: name });
    seen.add(name);
    if (layer.inputCount > 1) {
      throw topologyError(
        'UNSUPPORTED_TOPOLOGY',
        source,
        `${layer.className} layer '${layer.name}' takes ${layer.inputCount} inputs (only chains of single-input layers are supported)`,
        {
          layer: layer.name,
          className: layer.className,
        },
      );
    }
    ordered.push(layer);
    name = layer.input;
  }
  ordered.reverse();
  if (ordered[0]!.name !== inputName) {
    throw topologyError(
      'INVALID_MODEL_FILE',
      source,
      `the output '${outputName}' does not depend on the input '${inputName}'`,
      { input: inputName, output: outputName },
    );
  }
  return { layers: ordered };
}

function sequential(layers: readonly ParsedLayer[], source: string): KerasModel {
  const chain: KerasLayer[] = [];
  const first = layers[0]!;
  if (first.className !== 'InputLayer') {
    // Keras puts the input shape on the first layer of a Sequential model without an InputLayer.
    const shape = first.config.batch_input_shape ?? first.config.batch_shape;
    if (shape === undefined)
      throw topologyError(
        'INVALID_MODEL_FILE',
        source,
        `the first layer '${first.name}' of the Sequential model has no batch_input_shape`,
        { layer: first.name },
      );
    chain.push({
      className: 'InputLayer',
      name: `${first.name}_input`,
      config: { batch_input_shape: shape, dtype: first.config.dtype ?? 'float32' },
      input: undefined,
    });
  }
  for (const layer of layers) chain.push({ ...layer, input: chain.at(-1)?.name });
  return { layers: chain };
}

// ---------------------------------------------------------------- weights

interface WeightSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: string;
  readonly quantization?: { readonly dtype: string; readonly scale?: number; readonly min?: number };
}

const DTYPE_BYTES: Readonly<Record<string, number>> = {
  float32: 4,
  int32: 4,
  bool: 1,
  uint8: 1,
  uint16: 2,
  float16: 2,
};

/**
 * Every float32 weight by name. `files` holds the bytes of the files `weightFiles(modelJson)` lists,
 * in that order; a group's weights are laid end to end over the concatenation of its files.
 */
export function readWeights(modelJson: unknown, files: readonly Uint8Array[], source: string): Map<string, Weight> {
  const groups = isObject(modelJson) && Array.isArray(modelJson.weightsManifest) ? modelJson.weightsManifest : [];
  const weights = new Map<string, Weight>();
  let fileIndex = 0;
  for (const group of groups as unknown[]) {
    if (!isObject(group) || !Array.isArray(group.paths))
      throw topologyError('INVALID_MODEL_FILE', source, 'a weightsManifest group has no paths array');
    const parts = files.slice(fileIndex, fileIndex + group.paths.length);
    fileIndex += group.paths.length;
    const bytes = concat(parts);
    let offset = 0;
    for (const spec of (Array.isArray(group.weights) ? group.weights : []) as WeightSpec[]) {
      const bad = (problem: string) =>
        topologyError('INVALID_MODEL_FILE', source, `weight ${JSON.stringify(spec?.name)} ${problem}`, {
          weight: spec?.name,
          files: group.paths,
        });
      if (
        !isObject(spec) ||
        typeof spec.name !== 'string' ||
        !Array.isArray(spec.shape) ||
        !spec.shape.every((d) => Number.isInteger(d) && d >= 0)
      ) {
        throw bad('has no name or shape');
      }
      const count = spec.shape.reduce((a, b) => a * b, 1);
      const stored = spec.quantization?.dtype ?? spec.dtype;
      const size = DTYPE_BYTES[stored];
      if (size === undefined) throw bad(`has dtype '${stored}', which this converter does not read`);
      const end = offset + count * size;
      if (end > bytes.byteLength) throw bad(`ends at byte ${end} of its group, which has ${bytes.byteLength}`);
      if (spec.dtype === 'float32')
        weights.set(spec.name, { shape: spec.shape, values: decode(bytes.subarray(offset, end), spec, bad) });
      offset = end;
    }
  }
  return weights;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function decode(bytes: Uint8Array, spec: WeightSpec, bad: (problem: string) => ModelError): Float32Array {
  // A copy: offsets after a 1- or 2-byte weight need not be aligned for a typed-array view.
  const view = new DataView(bytes.slice().buffer);
  const q = spec.quantization;
  if (q === undefined) {
    const out = new Float32Array(bytes.byteLength / 4);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  if (q.dtype === 'float16') {
    const out = new Float32Array(bytes.byteLength / 2);
    for (let i = 0; i < out.length; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
    return out;
  }
  if (typeof q.scale !== 'number' || typeof q.min !== 'number')
    throw bad(`is quantized to ${q.dtype} without a scale and min`);
  const out = new Float32Array(bytes.byteLength / DTYPE_BYTES[q.dtype]!);
  for (let i = 0; i < out.length; i++)
    out[i] = (q.dtype === 'uint8' ? view.getUint8(i) : view.getUint16(i * 2, true)) * q.scale + q.min;
  return out;
}

/** IEEE 754 half to float (subnormals, infinities and NaN included). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}
