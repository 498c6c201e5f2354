/**
 * Minimal WebAssembly binary reading/writing for the sandbox rewriter: LEB128, sections, value
 * types and instruction immediates (MVP, sign-ext, sat-trunc, bulk memory, reference types,
 * SIMD, threads, tail calls, exceptions). GC-prefixed instructions are rejected.
 */
import { WeftError } from "../../core/mod.ts";

export class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array, start = 0, readonly end = buf.length) {
    this.pos = start;
  }
  get done(): boolean {
    return this.pos >= this.end;
  }
  byte(): number {
    if (this.pos >= this.end) throw malformed("unexpected end");
    return this.buf[this.pos++]!;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 35) throw malformed("LEB128 too long");
    }
  }
  /** Skips a signed or unsigned LEB of any width (immediates we only copy). */
  skipLeb(): void {
    for (let i = 0; i < 10; i++) if ((this.byte() & 0x80) === 0) return;
    throw malformed("LEB128 too long");
  }
  bytes(n: number): Uint8Array {
    if (this.pos + n > this.end) throw malformed("unexpected end");
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  name(): string {
    return new TextDecoder().decode(this.bytes(this.u32()));
  }
}

export class Writer {
  private chunks: number[] = [];
  private parts: Uint8Array[] = [];
  private length = 0;
  byte(b: number): this {
    this.chunks.push(b & 0xff);
    return this;
  }
  u32(v: number): this {
    do {
      let b = v % 128;
      v = Math.floor(v / 128);
      if (v !== 0) b |= 0x80;
      this.chunks.push(b);
    } while (v !== 0);
    return this;
  }
  /** Small signed constants only (|v| < 2^31). */
  s32(v: number): this {
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      const done = (v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0);
      this.chunks.push(done ? b : b | 0x80);
      if (done) return this;
    }
  }
  raw(bytes: Uint8Array): this {
    this.flush();
    this.parts.push(bytes);
    this.length += bytes.length;
    return this;
  }
  name(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.u32(b.length).raw(b);
  }
  private flush(): void {
    if (this.chunks.length === 0) return;
    this.parts.push(Uint8Array.from(this.chunks));
    this.length += this.chunks.length;
    this.chunks = [];
  }
  finish(): Uint8Array<ArrayBuffer> {
    this.flush();
    const out = new Uint8Array(this.length);
    let off = 0;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

export function malformed(reason: string): WeftError {
  return new WeftError("wasm_malformed", `Cannot rewrite wasm module: ${reason}`);
}

export interface Section {
  readonly id: number;
  readonly body: Uint8Array;
}

export function readSections(bytes: Uint8Array): Section[] {
  const magic = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  if (bytes.length < 8 || magic.some((b, i) => bytes[i] !== b)) {
    throw malformed("not a core wasm module (bad magic or version)");
  }
  const r = new Reader(bytes, 8);
  const out: Section[] = [];
  while (!r.done) {
    const id = r.byte();
    const size = r.u32();
    out.push({ id, body: r.bytes(size) });
  }
  return out;
}

export function writeModule(sections: readonly Section[]): Uint8Array<ArrayBuffer> {
  const w = new Writer().raw(Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00));
  for (const s of sections) w.byte(s.id).u32(s.body.length).raw(s.body);
  return w.finish();
}

/** Skips a value type (number, vector or reference type with optional heap type). */
export function skipValType(r: Reader): void {
  const b = r.byte();
  if (b === 0x63 || b === 0x64) r.skipLeb();
}

/** Skips a block type: empty, a value type, or a type index (s33). */
export function skipBlockType(r: Reader): void {
  const b = r.buf[r.pos];
  if (b === 0x63 || b === 0x64) {
    r.pos++;
    r.skipLeb();
    return;
  }
  r.skipLeb();
}

export function skipLimits(r: Reader): void {
  const flags = r.byte();
  r.skipLeb();
  if (flags & 1) r.skipLeb();
}

function skipMemArg(r: Reader): void {
  const align = r.u32();
  if (align & 0x40) r.skipLeb(); // multi-memory: explicit memory index
  r.skipLeb();
}

/** Instruction visitor hooks used by the rewriter; immediates are skipped otherwise. */
export interface InstrHooks {
  /** A function index immediate (call, return_call, ref.func) at [start, end). */
  funcIndex(start: number, end: number, index: number): void;
  /** Position just after a `loop` block type. */
  loopBody(pos: number): void;
}

/** Walks the instructions of an expression or function body until its final `end`. */
export function walkExpr(r: Reader, hooks: InstrHooks): void {
  let depth = 1;
  while (depth > 0) {
    const op = r.byte();
    switch (op) {
      case 0x02:
      case 0x04:
      case 0x06: // block, if, try
        skipBlockType(r);
        depth++;
        break;
      case 0x03: // loop
        skipBlockType(r);
        depth++;
        hooks.loopBody(r.pos);
        break;
      case 0x1f: { // try_table
        skipBlockType(r);
        depth++;
        const n = r.u32();
        for (let i = 0; i < n; i++) {
          const kind = r.byte();
          if (kind < 2) r.skipLeb();
          r.skipLeb();
        }
        break;
      }
      case 0x0b:
        depth--;
        break;
      case 0x10:
      case 0x12:
      case 0xd2: { // call, return_call, ref.func
        const start = r.pos;
        const idx = r.u32();
        hooks.funcIndex(start, r.pos, idx);
        break;
      }
      case 0x07:
      case 0x08:
      case 0x09:
      case 0x18:
      case 0x0c:
      case 0x0d:
      case 0x14:
      case 0x15:
      case 0x20:
      case 0x21:
      case 0x22:
      case 0x23:
      case 0x24:
      case 0x25:
      case 0x26:
      case 0x3f:
      case 0x40:
      case 0x41:
      case 0x42:
      case 0xd0:
      case 0xd5:
      case 0xd6:
        r.skipLeb();
        break;
      case 0x0e: { // br_table
        const n = r.u32();
        for (let i = 0; i <= n; i++) r.skipLeb();
        break;
      }
      case 0x11:
      case 0x13:
        r.skipLeb();
        r.skipLeb();
        break;
      case 0x1c: {
        const n = r.u32();
        for (let i = 0; i < n; i++) skipValType(r);
        break;
      }
      case 0x43:
        r.pos += 4;
        break;
      case 0x44:
        r.pos += 8;
        break;
      case 0xfc:
        skipFc(r);
        break;
      case 0xfd:
        skipSimd(r);
        break;
      case 0xfe: {
        const sub = r.u32();
        if (sub === 0x03) r.byte();
        else skipMemArg(r);
        break;
      }
      default:
        if (op >= 0x28 && op <= 0x3e) skipMemArg(r);
        else if (op === 0xfb) throw malformed("GC instructions are not supported");
        else if (!isPlainOpcode(op)) throw malformed(`unknown opcode 0x${op.toString(16)}`);
    }
  }
}

function isPlainOpcode(op: number): boolean {
  return op === 0x00 || op === 0x01 || op === 0x05 || op === 0x0a || op === 0x0f ||
    op === 0x19 || op === 0x1a || op === 0x1b || (op >= 0x45 && op <= 0xc4) || op === 0xd1 ||
    op === 0xd3 || op === 0xd4;
}

function skipFc(r: Reader): void {
  const sub = r.u32();
  if (sub <= 7) return;
  if (sub === 8 || sub === 10 || sub === 12 || sub === 14) {
    r.skipLeb();
    r.skipLeb();
  } else if (sub <= 17) r.skipLeb();
  else throw malformed(`unknown 0xfc opcode ${sub}`);
}

function skipSimd(r: Reader): void {
  const sub = r.u32();
  if (sub <= 11 || sub === 92 || sub === 93) skipMemArg(r);
  else if (sub === 12 || sub === 13) r.pos += 16;
  else if (sub >= 21 && sub <= 34) r.pos += 1;
  else if (sub >= 84 && sub <= 91) {
    skipMemArg(r);
    r.pos += 1;
  }
}
