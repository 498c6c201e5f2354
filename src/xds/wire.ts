/**
 * The protobuf wire format for the node's generated codec (gen/node_codec.ts): a strict reader
 * and a small writer, no descriptors. The reader checks every length and varint against the end
 * of the enclosing message, so truncated, overlong or mis-typed input throws a WireError (the
 * caller NACKs or drops the stream); it never reads past the buffer or loops without progress.
 * Values take protobuf-es's local shapes (int64 as bigint, Struct fields as JSON, wrappers
 * unboxed), so code written against protobuf-es types reads them unchanged.
 */

export class WireError extends Error {
  constructor(message: string) {
    super(`malformed protobuf: ${message}`);
    this.name = "WireError";
  }
}

/** protobuf-es's default recursion limit. */
export const MAX_DEPTH = 100;

const ON_JSC = "Bun" in globalThis;
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Lossy = new TextDecoder("utf-8", { ignoreBOM: true });

export class Reader {
  pos = 0;
  readonly len: number;
  private view: DataView | undefined;

  constructor(readonly buf: Uint8Array) {
    this.len = buf.length;
  }

  /** A field's tag (number << 3 | wire type): a uint32 varint, field number ≥ 1. */
  tag(): number {
    const start = this.pos;
    const t = this.varint32();
    const n = this.pos - start;
    if (n > 5 || (n === 5 && this.buf[this.pos - 1]! > 0x0f) || t >>> 3 === 0 || (t & 7) > 5) {
      throw new WireError(`illegal tag at byte ${start}`);
    }
    return t;
  }

  /** The low 32 bits of a varint of up to 10 bytes, unsigned. */
  varint32(): number {
    const buf = this.buf;
    let pos = this.pos;
    let b = buf[pos++]!;
    let v = b & 0x7f;
    if (b >= 0x80) {
      b = buf[pos++]!;
      v |= (b & 0x7f) << 7;
      if (b >= 0x80) {
        b = buf[pos++]!;
        v |= (b & 0x7f) << 14;
        if (b >= 0x80) {
          b = buf[pos++]!;
          v |= (b & 0x7f) << 21;
          if (b >= 0x80) {
            b = buf[pos++]!;
            v |= (b & 0x0f) << 28;
            for (let n = 5; b >= 0x80; n++) {
              if (n >= 10) throw new WireError(`varint longer than 10 bytes at byte ${this.pos}`);
              b = buf[pos++]!;
            }
          }
        }
      }
    }
    if (pos > this.len) throw new WireError("truncated varint");
    this.pos = pos;
    return v >>> 0;
  }

  uint32(): number {
    return this.varint32();
  }

  int32(): number {
    return this.varint32() | 0;
  }

  sint32(): number {
    const z = this.varint32();
    return (z >>> 1) ^ -(z & 1);
  }

  bool(): boolean {
    const b = this.buf[this.pos];
    if (b !== undefined && b < 0x80) {
      this.pos++;
      return b !== 0;
    }
    const [lo, hi] = this.varint64();
    return lo !== 0 || hi !== 0;
  }

  /** A varint of up to 10 bytes as [low 32 bits, high 32 bits]. */
  varint64(): [number, number] {
    const buf = this.buf;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    let b = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      b = buf[pos++]!;
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) return this.end64(pos, lo, hi);
    }
    b = buf[pos++]!;
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x70) >> 4;
    if (b < 0x80) return this.end64(pos, lo, hi);
    for (let shift = 3; shift <= 31; shift += 7) {
      b = buf[pos++]!;
      hi |= (b & 0x7f) << shift;
      if (b < 0x80) return this.end64(pos, lo, hi);
    }
    throw new WireError(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  private end64(pos: number, lo: number, hi: number): [number, number] {
    if (pos > this.len) throw new WireError("truncated varint");
    this.pos = pos;
    return [lo, hi];
  }

  int64(): bigint {
    const [lo, hi] = this.varint64();
    return BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
  }

  uint64(): bigint {
    const [lo, hi] = this.varint64();
    return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  }

  sint64(): bigint {
    const [lo, hi] = this.varint64();
    const s = -(lo & 1);
    const l = ((lo >>> 1) | ((hi & 1) << 31)) ^ s;
    const h = (hi >>> 1) ^ s;
    return BigInt.asIntN(64, (BigInt(h >>> 0) << 32n) | BigInt(l >>> 0));
  }

  private fixed(n: number): DataView {
    if (this.pos + n > this.len) throw new WireError("truncated fixed-width value");
    return this.view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  fixed32(): number {
    const v = this.fixed(4).getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  sfixed32(): number {
    const v = this.fixed(4).getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  fixed64(): bigint {
    const v = this.fixed(8).getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  sfixed64(): bigint {
    const v = this.fixed(8).getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }

  float(): number {
    const v = this.fixed(4).getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  double(): number {
    const v = this.fixed(8).getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A length prefix: the end of what follows, which must lie within `end`. */
  delimited(end: number): number {
    const n = this.varint32();
    const e = this.pos + n;
    if (e > end) throw new WireError(`length ${n} at byte ${this.pos} runs past its message`);
    return e;
  }

  bytes(end: number): Uint8Array {
    const e = this.delimited(end);
    const v = this.buf.subarray(this.pos, e);
    this.pos = e;
    return v;
  }

  string(end: number, strict: boolean): string {
    const e = this.delimited(end);
    const buf = this.buf;
    const start = this.pos;
    this.pos = e;
    // Every string is built flat: a `+=` chain leaves JSC a rope cell per character until the string
    // is read, which held ~60 MB more on a node with a 10 000-workload mesh. On V8 a short ASCII
    // string is fastest from its char codes; JSC's TextDecoder is as fast for every length.
    if (!ON_JSC && e - start <= 64) {
      let i = start;
      while (i < e && buf[i]! < 0x80) i++;
      if (i === e) {
        return String.fromCharCode.apply(null, buf.subarray(start, e) as unknown as number[]);
      }
    }
    try {
      return (strict ? utf8Strict : utf8Lossy).decode(buf.subarray(start, e));
    } catch {
      throw new WireError(`invalid UTF-8 in a string at byte ${start}`);
    }
  }

  /** Skip one field of an unknown number (groups included, to `depthLeft` levels). */
  skip(tag: number, end: number, depthLeft: number): void {
    switch (tag & 7) {
      case 0:
        this.varint64();
        return;
      case 1:
        return this.advance(8, end);
      case 2:
        this.pos = this.delimited(end);
        return;
      case 5:
        return this.advance(4, end);
      case 3: {
        if (depthLeft <= 0) throw new WireError("groups nested too deeply");
        for (;;) {
          if (this.pos >= end) throw new WireError("unterminated group");
          const t = this.tag();
          if ((t & 7) === 4) {
            if (t >>> 3 !== tag >>> 3) throw new WireError("mismatched end-group tag");
            return;
          }
          this.skip(t, end, depthLeft - 1);
        }
      }
      default:
        throw new WireError(`unexpected wire type ${tag & 7} for field ${tag >>> 3}`);
    }
  }

  private advance(n: number, end: number): void {
    if (this.pos + n > end) throw new WireError("truncated fixed-width value");
    this.pos += n;
  }

  /** A message must end exactly at its length. */
  done(end: number): void {
    if (this.pos !== end) throw new WireError(`a value runs past its message at byte ${end}`);
  }
}

/** Throw unless a known field arrived with its declared wire type. */
export function wt(tag: number, want: number): void {
  if ((tag & 7) !== want) {
    throw new WireError(`field ${tag >>> 3} has wire type ${tag & 7}, expected ${want}`);
  }
}

/** Descend one message level (protobuf-es's recursion limit). */
export function deeper(depth: number): number {
  if (depth >= MAX_DEPTH) throw new WireError(`messages nested deeper than ${MAX_DEPTH}`);
  return depth + 1;
}

export { jsonToStruct, setOwn, structToJson } from "./wire_struct.ts";
export { Writer } from "./wire_writer.ts";
