/**
 * The few protobuf wire-format writes an ONNX file needs (varint, fixed32 float, length-delimited),
 * with no dependency. A message keeps its encoded parts in a list: nesting a child appends the
 * child's parts after its tag and length, so megabytes of weights are copied once, by `finish`.
 */

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

/** Base-128 varint; negative int64 values as their 64-bit two's complement (ten bytes), as protobuf does. */
export function varint(value: number | bigint): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

export class ProtoMessage {
  private readonly parts: Uint8Array[] = [];
  private length = 0;

  get byteLength(): number {
    return this.length;
  }

  /** An int32/int64/enum/bool field (wire type 0). */
  varint(field: number, value: number | bigint): this {
    return this.key(field, WIRE_VARINT).push(varint(value));
  }

  /** A `float` field (wire type 5, little-endian). */
  float(field: number, value: number): this {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    return this.key(field, WIRE_FIXED32).push(bytes);
  }

  bytes(field: number, body: Uint8Array): this {
    return this.key(field, WIRE_LENGTH_DELIMITED).push(varint(body.byteLength)).push(body);
  }

  string(field: number, text: string): this {
    return this.bytes(field, new TextEncoder().encode(text));
  }

  /** An embedded message; `child` must not change afterwards (its parts are shared, not copied). */
  message(field: number, child: ProtoMessage): this {
    this.key(field, WIRE_LENGTH_DELIMITED).push(varint(child.length));
    for (const part of child.parts) this.push(part);
    return this;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const part of this.parts) {
      out.set(part, offset);
      offset += part.byteLength;
    }
    return out;
  }

  private key(field: number, wire: number): this {
    return this.push(varint(field * 8 + wire));
  }

  private push(part: Uint8Array): this {
    this.parts.push(part);
    this.length += part.byteLength;
    return this;
  }
}
