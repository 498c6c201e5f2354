/** The protobuf writer of the node's codec (requests it sends): protobuf-es's encoding rules. */
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
