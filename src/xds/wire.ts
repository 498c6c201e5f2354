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
    if (e - start <= 32) {
      let s = "";
      let i = start;
      for (; i < e; i++) {
        const c = buf[i]!;
        if (c > 0x7f) break;
        s += String.fromCharCode(c);
      }
      if (i === e) return s;
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

/** An own property even for the key "__proto__" (map keys are untrusted). */
export function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === "__proto__") {
    Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  } else o[k] = v;
}

// --- google.protobuf.Struct ⇄ JSON: protobuf-es represents Struct fields as JSON objects. ---

type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };
interface ValueMsg {
  $typeName: "google.protobuf.Value";
  kind: { case: string | undefined; value?: unknown };
}
interface StructMsg {
  $typeName: "google.protobuf.Struct";
  fields: Record<string, ValueMsg>;
}

export function structToJson(s: StructMsg): { [k: string]: JsonValue } {
  const out: { [k: string]: JsonValue } = {};
  for (const k of Object.keys(s.fields)) setOwn(out, k, valueToJson(s.fields[k]!));
  return out;
}

function valueToJson(v: ValueMsg): JsonValue {
  switch (v.kind.case) {
    case "structValue":
      return structToJson(v.kind.value as StructMsg);
    case "listValue":
      return (v.kind.value as { values: ValueMsg[] }).values.map(valueToJson);
    case "nullValue":
    case undefined:
      return null;
    default:
      return v.kind.value as JsonValue;
  }
}

export function jsonToStruct(json: unknown): StructMsg {
  const s: StructMsg = { $typeName: "google.protobuf.Struct", fields: {} };
  if (json !== null && typeof json === "object" && !Array.isArray(json)) {
    const o = json as Record<string, unknown>;
    for (const k of Object.keys(o)) setOwn(s.fields, k, jsonToValue(o[k]));
  }
  return s;
}

function jsonToValue(json: unknown): ValueMsg {
  const v: ValueMsg = { $typeName: "google.protobuf.Value", kind: { case: undefined } };
  switch (typeof json) {
    case "number":
      v.kind = { case: "numberValue", value: json };
      break;
    case "string":
      v.kind = { case: "stringValue", value: json };
      break;
    case "boolean":
      v.kind = { case: "boolValue", value: json };
      break;
    case "object":
      if (json === null) v.kind = { case: "nullValue", value: 0 };
      else if (Array.isArray(json)) {
        v.kind = {
          case: "listValue",
          value: { $typeName: "google.protobuf.ListValue", values: json.map(jsonToValue) },
        };
      } else v.kind = { case: "structValue", value: jsonToStruct(json) };
      break;
  }
  return v;
}

// --- Writer ---

const utf8Encoder = new TextEncoder();

export class Writer {
  private buf = new Uint8Array(256);
  private pos = 0;
  /** Start offsets of the open length-delimited values (fork/join). */
  private stack: number[] = [];

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  tag(field: number, wireType: number): this {
    return this.uint32(((field << 3) | wireType) >>> 0);
  }

  uint32(v: number): this {
    this.room(5);
    v >>>= 0;
    while (v > 0x7f) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
    return this;
  }

  int32(v: number): this {
    return v < 0 ? this.int64(BigInt(v)) : this.uint32(v);
  }

  sint32(v: number): this {
    return this.uint32((v << 1) ^ (v >> 31));
  }

  bool(v: boolean): this {
    return this.uint32(v ? 1 : 0);
  }

  /** int64/uint64 (two's complement, 10 bytes when negative). */
  int64(v: bigint | string | number): this {
    let u = BigInt.asUintN(64, BigInt(v));
    this.room(10);
    while (u > 0x7fn) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
    return this;
  }

  sint64(v: bigint | string | number): this {
    const b = BigInt.asIntN(64, BigInt(v));
    return this.int64(BigInt.asUintN(64, (b << 1n) ^ (b >> 63n)));
  }

  private dv(n: number): DataView {
    this.room(n);
    return new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, n);
  }

  fixed32(v: number): this {
    this.dv(4).setUint32(0, v, true);
    this.pos += 4;
    return this;
  }

  sfixed32(v: number): this {
    this.dv(4).setInt32(0, v, true);
    this.pos += 4;
    return this;
  }

  fixed64(v: bigint | string | number): this {
    this.dv(8).setBigUint64(0, BigInt.asUintN(64, BigInt(v)), true);
    this.pos += 8;
    return this;
  }

  sfixed64(v: bigint | string | number): this {
    this.dv(8).setBigInt64(0, BigInt.asIntN(64, BigInt(v)), true);
    this.pos += 8;
    return this;
  }

  float(v: number): this {
    this.dv(4).setFloat32(0, v, true);
    this.pos += 4;
    return this;
  }

  double(v: number): this {
    this.dv(8).setFloat64(0, v, true);
    this.pos += 8;
    return this;
  }

  bytes(v: Uint8Array): this {
    this.uint32(v.length);
    this.room(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
    return this;
  }

  string(v: string): this {
    return this.bytes(utf8Encoder.encode(v));
  }

  /** Open a length-delimited value; `join` writes its length in front of it. */
  fork(): this {
    this.stack.push(this.pos);
    return this;
  }

  join(): this {
    const start = this.stack.pop()!;
    const body = this.buf.slice(start, this.pos);
    this.pos = start;
    return this.bytes(body);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}
