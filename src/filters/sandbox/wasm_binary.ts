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

/** What follows an opcode byte, for walkExpr's fast path (0: anything else, the general path). */
const PLAIN = 1;
const LEB = 2;
const BLOCK = 3;
const LOOP = 4;
const END = 5;
const MEMARG = 6;
const FUNC = 7;
const KIND = ((): Uint8Array => {
  const k = new Uint8Array(256);
  for (const op of [0x00, 0x01, 0x05, 0x0a, 0x0f, 0x19, 0x1a, 0x1b, 0xd1, 0xd3, 0xd4]) {
    k[op] = PLAIN;
  }
  for (let op = 0x45; op <= 0xc4; op++) k[op] = PLAIN;
  for (
    const op of [
      0x07,
      0x08,
      0x09,
      0x18,
      0x0c,
      0x0d,
      0x14,
      0x15,
      0x20,
      0x21,
      0x22,
      0x23,
      0x24,
      0x25,
      0x26,
      0x3f,
      0x40,
      0x41,
      0x42,
      0xd0,
      0xd5,
      0xd6,
    ]
  ) k[op] = LEB;
  k[0x02] = k[0x04] = k[0x06] = BLOCK; // block, if, try
  k[0x03] = LOOP;
  k[0x0b] = END;
  for (let op = 0x28; op <= 0x3e; op++) k[op] = MEMARG;
  k[0x10] = k[0x12] = k[0xd2] = FUNC; // call, return_call, ref.func
  return k;
})();

/**
 * Walks the instructions of an expression or function body until its final `end`.
 * The common instructions are decoded inline on local variables, without a call per byte or
 * immediate: the walk runs once per instruction of every component a node loads at run time, and
 * with a call per byte JavaScriptCore compiled the reader with its top tier (FTL), which maps
 * ~2 MB of compiler code into an idle node (bench:idle, third-party builds row). The rarer
 * instructions take the general path (`walkOther`), which uses the Reader.
 */
export function walkExpr(r: Reader, hooks: InstrHooks): void {
  const buf = r.buf;
  const end = r.end;
  let pos = r.pos;
  let depth = 1;
  while (depth > 0) {
    if (pos >= end) throw malformed("unexpected end");
    const op = buf[pos++]!;
    const kind = KIND[op]!;
    if (kind === PLAIN) continue;
    if (kind === END) {
      depth--;
      continue;
    }
    if (kind === MEMARG && pos < end && (buf[pos]! & 0xc0) === 0) pos++; // one-byte align
    else if (kind === MEMARG || kind === 0) {
      r.pos = pos;
      depth += walkOther(op, r);
      pos = r.pos;
      continue;
    } else if (kind === FUNC) {
      const start = pos;
      let value = 0;
      for (let shift = 0;; shift += 7) {
        if (shift > 35) throw malformed("LEB128 too long");
        if (pos >= end) throw malformed("unexpected end");
        const b = buf[pos++]!;
        value += (b & 0x7f) * 2 ** shift;
        if ((b & 0x80) === 0) break;
      }
      hooks.funcIndex(start, pos, value);
      continue;
    } else if (kind !== LEB) { // BLOCK, LOOP: a block type (s33, or a ref type and heap type)
      depth++;
      if (buf[pos] === 0x63 || buf[pos] === 0x64) pos++;
    }
    // One LEB immediate (signed or unsigned, any width): LEB, a block type, a memarg's offset.
    for (let i = 0;; i++) {
      if (i === 10) throw malformed("LEB128 too long");
      if (pos >= end) throw malformed("unexpected end");
      if ((buf[pos++]! & 0x80) === 0) break;
    }
    if (kind === LOOP) hooks.loopBody(pos);
  }
  r.pos = pos;
}

/** The instructions walkExpr does not decode inline; returns the change of block depth. */
function walkOther(op: number, r: Reader): number {
  switch (op) {
    case 0x1f: { // try_table
      skipBlockType(r);
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const kind = r.byte();
        if (kind < 2) r.skipLeb();
        r.skipLeb();
      }
      return 1;
    }
    case 0x0e: { // br_table
      const n = r.u32();
      for (let i = 0; i <= n; i++) r.skipLeb();
      return 0;
    }
    case 0x11:
    case 0x13:
      r.skipLeb();
      r.skipLeb();
      return 0;
    case 0x1c: {
      const n = r.u32();
      for (let i = 0; i < n; i++) skipValType(r);
      return 0;
    }
    case 0x43:
      r.pos += 4;
      return 0;
    case 0x44:
      r.pos += 8;
      return 0;
    case 0xfc:
      skipFc(r);
      return 0;
    case 0xfd:
      skipSimd(r);
      return 0;
    case 0xfe: {
      const sub = r.u32();
      if (sub === 0x03) r.byte();
      else skipMemArg(r);
      return 0;
    }
  }
  if (op >= 0x28 && op <= 0x3e) {
    skipMemArg(r);
    return 0;
  }
  if (op === 0xfb) throw malformed("GC instructions are not supported");
  throw malformed(`unknown opcode 0x${op.toString(16)}`);
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
