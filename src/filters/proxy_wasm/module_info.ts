/**
 * Reads a core module's declared function imports with their result types straight from the
 * binary (type and import sections). `WebAssembly.Module.imports()` gives names only, and a stub
 * that answers UNIMPLEMENTED must return a BigInt for an i64 result or the call throws.
 */

export type ValType = "i32" | "i64" | "f32" | "f64" | "other";

export interface FunctionImport {
  readonly module: string;
  readonly name: string;
  readonly results: readonly ValType[];
}

const VALTYPES: Record<number, ValType> = { 0x7f: "i32", 0x7e: "i64", 0x7d: "f32", 0x7c: "f64" };

class Reader {
  pos = 0;
  constructor(readonly b: Uint8Array) {}
  byte(): number {
    if (this.pos >= this.b.length) throw new RangeError("unexpected end of module");
    return this.b[this.pos++]!;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const x = this.byte();
      result |= (x & 0x7f) << shift;
      if ((x & 0x80) === 0) return result >>> 0;
      shift += 7;
      if (shift > 35) throw new RangeError("bad LEB128");
    }
  }
  name(): string {
    const n = this.u32();
    const s = new TextDecoder().decode(this.b.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
  limits(): void {
    const flags = this.byte();
    this.u32();
    if (flags & 1) this.u32();
  }
}

/** Function imports with result types; throws RangeError on a malformed binary (the compiler
 * would have refused it first). */
export function functionImports(bytes: Uint8Array): FunctionImport[] {
  const r = new Reader(bytes);
  r.pos = 8; // magic + version
  const types: ValType[][] = [];
  const out: FunctionImport[] = [];
  while (r.pos < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    const end = r.pos + size;
    if (id === 1) {
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        if (r.byte() !== 0x60) throw new RangeError("unsupported type form");
        const np = r.u32();
        for (let j = 0; j < np; j++) r.byte();
        const nr = r.u32();
        const res: ValType[] = [];
        for (let j = 0; j < nr; j++) res.push(VALTYPES[r.byte()] ?? "other");
        types.push(res);
      }
    } else if (id === 2) {
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const module = r.name();
        const name = r.name();
        const kind = r.byte();
        if (kind === 0) out.push({ module, name, results: types[r.u32()] ?? [] });
        else if (kind === 1) {
          r.byte();
          r.limits();
        } else if (kind === 2) r.limits();
        else if (kind === 3) {
          r.byte();
          r.byte();
        } else throw new RangeError(`unsupported import kind ${kind}`);
      }
      return out;
    }
    r.pos = end;
  }
  return out;
}
