/**
 * An ONNX graph held in memory and written as an ONNX `ModelProto` (onnx/onnx.proto, IR version 7,
 * default domain at opset 13). Only what the converter emits: float32 and int64 tensors, int / ints /
 * string attributes, inputs and outputs with a symbolic batch dimension.
 */
import os from 'node:os';
import { ProtoMessage } from './protobuf.js';

export const IR_VERSION = 7;
export const OPSET = 13;

/** onnx.TensorProto.DataType */
const FLOAT = 1;
const INT64 = 7;

/** onnx.AttributeProto.AttributeType */
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_INTS = 7;

export type Attribute =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'string'; readonly value: string };

export const int = (value: number): Attribute => ({ kind: 'int', value });
export const ints = (value: readonly number[]): Attribute => ({ kind: 'ints', value });
export const string = (value: string): Attribute => ({ kind: 'string', value });

export interface OnnxNode {
  readonly op: string;
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: Readonly<Record<string, Attribute>>;
}

export interface OnnxTensor {
  readonly name: string;
  readonly dims: readonly number[];
  readonly data: Float32Array | BigInt64Array;
}

/** A graph input or output, float32; a string dimension is symbolic (`N` for the batch). */
export interface OnnxValue {
  readonly name: string;
  readonly dims: readonly (number | string)[];
}

/** Names that are not taken yet: `base`, else `base_1`, `base_2`... */
export class UniqueNames {
  private readonly taken = new Set<string>();

  take(base: string): string {
    let name = base;
    for (let i = 1; this.taken.has(name); i++) name = `${base}_${i}`;
    this.taken.add(name);
    return name;
  }
}

export class OnnxGraph {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  readonly inputs: OnnxValue[] = [];
  readonly outputs: OnnxValue[] = [];
  private readonly nodeNames = new UniqueNames();
  private readonly tensorNames: UniqueNames;
  private readonly scalars = new Map<number, string>();

  /** `tensorNames`: the names the graph's values already use, so no initializer takes one of them. */
  constructor(tensorNames: UniqueNames) {
    this.tensorNames = tensorNames;
  }

  node(
    op: string,
    name: string,
    inputs: readonly string[],
    outputs: readonly string[],
    attributes: Record<string, Attribute> = {},
  ): void {
    this.nodes.push({ op, name: this.nodeNames.take(name), inputs, outputs, attributes });
  }

  /** Adds a constant and returns its (unique) name. */
  initializer(name: string, dims: readonly number[], data: Float32Array | BigInt64Array): string {
    const unique = this.tensorNames.take(name);
    this.initializers.push({ name: unique, dims, data });
    return unique;
  }

  /** A float32 scalar constant, one per value (Clip's bounds). */
  scalar(value: number): string {
    let name = this.scalars.get(value);
    if (name === undefined) {
      name = this.initializer(`const/${value}`, [], Float32Array.of(value));
      this.scalars.set(value, name);
    }
    return name;
  }
}

export interface ModelInfo {
  readonly graphName: string;
  readonly producerVersion: string;
  readonly docString: string;
  readonly metadata: Readonly<Record<string, string>>;
}

export function encodeModel(graph: OnnxGraph, info: ModelInfo): Uint8Array {
  const g = new ProtoMessage();
  for (const node of graph.nodes) g.message(1, encodeNode(node));
  g.string(2, info.graphName);
  for (const tensor of graph.initializers) g.message(5, encodeTensor(tensor));
  for (const value of graph.inputs) g.message(11, encodeValueInfo(value));
  for (const value of graph.outputs) g.message(12, encodeValueInfo(value));

  const model = new ProtoMessage()
    .varint(1, IR_VERSION)
    .string(2, 'image-recognition models/convert')
    .string(3, info.producerVersion)
    .string(6, info.docString)
    .message(7, g)
    .message(8, new ProtoMessage().string(1, '').varint(2, OPSET));
  for (const [key, value] of Object.entries(info.metadata))
    model.message(14, new ProtoMessage().string(1, key).string(2, value));
  return model.finish();
}

function encodeNode(node: OnnxNode): ProtoMessage {
  const m = new ProtoMessage();
  for (const input of node.inputs) m.string(1, input);
  for (const output of node.outputs) m.string(2, output);
  m.string(3, node.name).string(4, node.op);
  for (const [name, attribute] of Object.entries(node.attributes)) m.message(5, encodeAttribute(name, attribute));
  return m;
}

function encodeAttribute(name: string, attribute: Attribute): ProtoMessage {
  const m = new ProtoMessage().string(1, name);
  switch (attribute.kind) {
    case 'int':
      return m.varint(3, attribute.value).varint(20, ATTR_INT);
    case 'string':
      return m.string(4, attribute.value).varint(20, ATTR_STRING);
    case 'ints':
      for (const v of attribute.value) m.varint(8, v);
      return m.varint(20, ATTR_INTS);
  }
}

const LITTLE_ENDIAN = os.endianness() === 'LE';

function encodeTensor(tensor: OnnxTensor): ProtoMessage {
  const m = new ProtoMessage();
  for (const d of tensor.dims) m.varint(1, d);
  m.varint(2, tensor.data instanceof Float32Array ? FLOAT : INT64).string(8, tensor.name);
  return m.bytes(9, littleEndianBytes(tensor.data));
}

/** `raw_data` is little-endian whatever the machine. */
function littleEndianBytes(data: Float32Array | BigInt64Array): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN) return view;
  const out = new Uint8Array(view);
  const size = data.BYTES_PER_ELEMENT;
  for (let i = 0; i < out.length; i += size) out.subarray(i, i + size).reverse();
  return out;
}

function encodeValueInfo(value: OnnxValue): ProtoMessage {
  const shape = new ProtoMessage();
  for (const d of value.dims)
    shape.message(1, typeof d === 'string' ? new ProtoMessage().string(2, d) : new ProtoMessage().varint(1, d));
  const tensorType = new ProtoMessage().varint(1, FLOAT).message(2, shape);
  return new ProtoMessage().string(1, value.name).message(2, new ProtoMessage().message(1, tensorType));
}
