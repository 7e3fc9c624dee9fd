/**
 * Writes a tiny real ONNX model (protobuf encoded by hand, no dependency) with a FIXED batch
 * dimension: `logits[n, k] = sum_c mean_hw(x[n, c]) * W[c, k]`, W = [I3 | 0]. So a pure red image is
 * class 0, green 1, blue 2: it checks NCHW channel planes and the fixed-batch (pad and drop) path
 * that the shared int8 model, whose batch dimension is symbolic, never takes.
 */

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

const key = (field: number, wire: number): number[] => varint((field << 3) | wire);
const int = (field: number, value: number): number[] => [...key(field, 0), ...varint(value)];
const bytes = (field: number, body: readonly number[] | Uint8Array): number[] => [
  ...key(field, 2),
  ...varint(body.length),
  ...body,
];
const str = (field: number, text: string): number[] => bytes(field, new TextEncoder().encode(text));

function valueInfo(name: string, dims: readonly number[]): number[] {
  const shape = dims.flatMap((d) => bytes(1, int(1, d)));
  const tensorType = [...int(1, 1 /* FLOAT */), ...bytes(2, shape)];
  return [...str(1, name), ...bytes(2, bytes(1, tensorType))];
}

export function fixedBatchOnnxModel(batch: number, size: number, classes: number): Uint8Array {
  const weights = new Float32Array(3 * classes);
  for (let c = 0; c < 3; c++) weights[c * classes + c] = 1;
  const initializer = [
    ...int(1, 3),
    ...int(1, classes),
    ...int(2, 1 /* FLOAT */),
    ...str(8, 'W'),
    ...bytes(9, new Uint8Array(weights.buffer)),
  ];
  const axes = [...str(1, 'axes'), ...int(8, 2), ...int(8, 3), ...int(20, 7 /* INTS */)];
  const keepdims = [...str(1, 'keepdims'), ...int(3, 0), ...int(20, 2 /* INT */)];
  const reduce = [
    ...str(1, 'input'),
    ...str(2, 'pooled'),
    ...str(3, 'reduce'),
    ...str(4, 'ReduceMean'),
    ...bytes(5, axes),
    ...bytes(5, keepdims),
  ];
  const matmul = [...str(1, 'pooled'), ...str(1, 'W'), ...str(2, 'output'), ...str(3, 'matmul'), ...str(4, 'MatMul')];
  const graph = [
    ...bytes(1, reduce),
    ...bytes(1, matmul),
    ...str(2, 'fixed-batch'),
    ...bytes(5, initializer),
    ...bytes(11, valueInfo('input', [batch, 3, size, size])),
    ...bytes(12, valueInfo('output', [batch, classes])),
  ];
  const model = [...int(1, 7 /* ir_version */), ...bytes(8, [...str(1, ''), ...int(2, 13)]), ...bytes(7, graph)];
  return Uint8Array.from(model);
}
