/**
 * Which objects of a batch have been answered, and which of those failed: two bits per object, so
 * an answer delivered twice (a redelivered message, a worker killed after it answered) is counted
 * once. 250 KB for a million objects; stored beside the batch's record, whose counts it backs.
 *
 *   bytes 0-3 "EIRP", 4 version (1), 5-7 reserved, 8-15 objects covered (u64 LE), then the answered
 *   bits and the failed bits, each ceil(covered / 8) bytes
 */
const MAGIC = 'EIRP';
const HEADER = 16;

export class Progress {
  private answered = new Uint8Array(0);
  private failedBits = new Uint8Array(0);
  private doneCount = 0;
  private failedCount = 0;

  get done(): number {
    return this.doneCount;
  }

  get failed(): number {
    return this.failedCount;
  }

  /** Records object `seq`'s answer; false when it was answered already (the count does not move). */
  mark(seq: number, ok: boolean): boolean {
    if (!Number.isInteger(seq) || seq < 0) throw new RangeError(`not an object number: ${seq}`);
    const byte = seq >> 3;
    const bit = 1 << (seq & 7);
    if (byte >= this.answered.length) this.grow(byte + 1);
    if (this.answered[byte]! & bit) return false;
    this.answered[byte]! |= bit;
    if (ok) this.doneCount++;
    else {
      this.failedBits[byte]! |= bit;
      this.failedCount++;
    }
    return true;
  }

  has(seq: number): boolean {
    const byte = seq >> 3;
    return byte < this.answered.length && (this.answered[byte]! & (1 << (seq & 7))) !== 0;
  }

  encode(): Uint8Array {
    const length = this.answered.length;
    const out = new Uint8Array(HEADER + 2 * length);
    out.set(new TextEncoder().encode(MAGIC), 0);
    out[4] = 1;
    new DataView(out.buffer).setBigUint64(8, BigInt(length * 8), true);
    out.set(this.answered, HEADER);
    out.set(this.failedBits, HEADER + length);
    return out;
  }

  static decode(bytes: Uint8Array): Progress {
    if (bytes.length < HEADER || new TextDecoder().decode(bytes.subarray(0, 4)) !== MAGIC || bytes[4] !== 1) {
      throw new Error('not a batch progress object (EIRP v1)');
    }
    const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(8, true)) / 8;
    if (bytes.length !== HEADER + 2 * length)
      throw new Error(`a batch progress object of ${bytes.length} bytes covers ${length * 8} objects`);
    const progress = new Progress();
    progress.answered = bytes.slice(HEADER, HEADER + length);
    progress.failedBits = bytes.slice(HEADER + length);
    for (let i = 0; i < length; i++) {
      progress.doneCount += popcount(progress.answered[i]! & ~progress.failedBits[i]!);
      progress.failedCount += popcount(progress.failedBits[i]!);
    }
    return progress;
  }

  private grow(bytes: number): void {
    const size = Math.max(bytes, this.answered.length * 2, 128);
    const answered = new Uint8Array(size);
    answered.set(this.answered);
    const failed = new Uint8Array(size);
    failed.set(this.failedBits);
    this.answered = answered;
    this.failedBits = failed;
  }
}

function popcount(byte: number): number {
  let n = 0;
  for (let b = byte & 0xff; b; b &= b - 1) n++;
  return n;
}
