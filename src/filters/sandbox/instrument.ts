/**
 * Sandbox rewriter for core wasm modules (shared by the component host and the proxy-wasm host).
 *
 * - Time budget: adds a mutable i32 "fuel" global and, at every function entry and `loop` header,
 *   decrements it; when it reaches zero the code calls an imported `() -> i32` check function
 *   (default `weft:sandbox`.`check`). The host's check traps (throws) when the call's wall-clock
 *   deadline passed, else returns the refill. Cost: a few instructions per entry/iteration and
 *   one host call per `fuel` ticks.
 * - Memory cap: the maximum of every memory the module defines is clamped to `maxMemoryPages`,
 *   so `memory.grow` past the cap returns -1 inside the guest (no host bookkeeping needed).
 *
 * Adding a function import shifts defined function indices by one; calls, `ref.func`, exports,
 * the start function and element segments are renumbered, and the (now stale) `name` section is
 * dropped.
 */
import { WeftError } from "../../core/mod.ts";
import {
  malformed,
  Reader,
  readSections,
  type Section,
  skipLimits,
  skipValType,
  walkExpr,
  writeModule,
  Writer,
} from "./wasm_binary.ts";

export const SANDBOX_IMPORT_MODULE = "weft:sandbox";
export const SANDBOX_CHECK_NAME = "check";
/** Ticks between host checks; also what a check should return to refill. */
export const DEFAULT_FUEL = 20_000;

export interface InstrumentOptions {
  /** Import module of the check function (default "weft:sandbox"). */
  readonly checkModule?: string;
  /** Import name of the check function (default "check"). */
  readonly checkName?: string;
  /** Clamp every defined memory's maximum to this many 64 KiB pages. */
  readonly maxMemoryPages?: number;
  /** Initial fuel (default DEFAULT_FUEL). */
  readonly initialFuel?: number;
}

interface Ctx {
  funcImports: number;
  fuelGlobal: number;
  checkFunc: number;
}

type Patch = { start: number; end: number; bytes: Uint8Array };

/** Returns the instrumented module bytes. Throws WeftError("wasm_malformed") on bad input. */
export function instrumentModule(
  bytes: Uint8Array,
  opts: InstrumentOptions = {},
): Uint8Array<ArrayBuffer> {
  const sections = readSections(bytes).filter((s) => !isNameSection(s));
  const typeIdx = countEntries(sections, 1);
  const imports = scanImports(sections.find((s) => s.id === 2)?.body);
  const definedGlobals = countEntries(sections, 6);
  const ctx: Ctx = {
    funcImports: imports.funcs,
    fuelGlobal: imports.globals + definedGlobals,
    checkFunc: imports.funcs,
  };
  const out: Section[] = [];
  const put = (id: number, body: Uint8Array): void => {
    // Known sections keep their canonical order; custom sections stay where they were.
    const order = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];
    const rank = order.indexOf(id);
    let at = out.findIndex((s) => s.id !== 0 && order.indexOf(s.id) > rank);
    if (at < 0) {
      const lastKnown = out.findLastIndex((s) => s.id !== 0);
      at = lastKnown + 1;
    }
    out.splice(at, 0, { id, body });
  };
  for (const s of sections) out.push(s);
  replaceOrAdd(out, 1, appendEntry(out, 1, Uint8Array.of(0x60, 0x00, 0x01, 0x7f)), put);
  const importEntry = new Writer().name(opts.checkModule ?? SANDBOX_IMPORT_MODULE)
    .name(opts.checkName ?? SANDBOX_CHECK_NAME).byte(0x00).u32(typeIdx).finish();
  replaceOrAdd(out, 2, appendEntry(out, 2, importEntry), put);
  const globalsBody = out.find((s) => s.id === 6)?.body;
  const fuelEntry = new Writer().byte(0x7f).byte(0x01).byte(0x41).s32(
    opts.initialFuel ?? DEFAULT_FUEL,
  )
    .byte(0x0b).finish();
  const rewrittenGlobals = globalsBody ? rewriteGlobals(globalsBody, ctx) : Uint8Array.of(0);
  replaceOrAdd(out, 6, appendEntryTo(rewrittenGlobals, fuelEntry), put);
  for (let i = 0; i < out.length; i++) {
    const s = out[i]!;
    if (s.id === 7) out[i] = { id: 7, body: rewriteExports(s.body, ctx) };
    else if (s.id === 8) {
      out[i] = { id: 8, body: new Writer().u32(shift(new Reader(s.body).u32(), ctx)).finish() };
    } else if (s.id === 9) out[i] = { id: 9, body: rewriteElements(s.body, ctx) };
    else if (s.id === 10) out[i] = { id: 10, body: rewriteCode(s.body, ctx) };
    else if (s.id === 5 && opts.maxMemoryPages !== undefined) {
      out[i] = { id: 5, body: capMemories(s.body, opts.maxMemoryPages) };
    }
  }
  return writeModule(out);
}

/** The memory cap alone (section 5, nothing else touched) on a module `instrumentModule` already
 * rewrote without `maxMemoryPages`: `capMemory(instrumentModule(m), n)` equals
 * `instrumentModule(m, { maxMemoryPages: n })` byte for byte (the prebuilt path, prebuilt.ts). */
export function capMemory(bytes: Uint8Array, maxMemoryPages: number): Uint8Array<ArrayBuffer> {
  const sections = readSections(bytes).map((s) =>
    s.id === 5 ? { id: 5, body: capMemories(s.body, maxMemoryPages) } : s
  );
  return writeModule(sections);
}

function isNameSection(s: Section): boolean {
  if (s.id !== 0) return false;
  const r = new Reader(s.body);
  return r.name() === "name";
}

function shift(idx: number, ctx: Ctx): number {
  return idx >= ctx.funcImports ? idx + 1 : idx;
}

function countEntries(sections: readonly Section[], id: number): number {
  const s = sections.find((x) => x.id === id);
  if (!s) return 0;
  if (id === 1 && s.body.length > 0) {
    const r = new Reader(s.body);
    const n = r.u32();
    // Rec groups would change the index arithmetic: refuse rather than miscount.
    for (let i = 0; i < n; i++) {
      if (r.byte() !== 0x60) throw malformed("only function types are supported");
      for (let k = 0; k < 2; k++) {
        const m = r.u32();
        for (let j = 0; j < m; j++) skipValType(r);
      }
    }
    return n;
  }
  return new Reader(s.body).u32();
}

function appendEntry(sections: readonly Section[], id: number, entry: Uint8Array): Uint8Array {
  const s = sections.find((x) => x.id === id);
  return appendEntryTo(s ? s.body : Uint8Array.of(0), entry);
}

function appendEntryTo(body: Uint8Array, entry: Uint8Array): Uint8Array {
  const r = new Reader(body);
  const n = r.u32();
  return new Writer().u32(n + 1).raw(body.subarray(r.pos)).raw(entry).finish();
}

function replaceOrAdd(
  out: Section[],
  id: number,
  body: Uint8Array,
  put: (id: number, body: Uint8Array) => void,
): void {
  const i = out.findIndex((s) => s.id === id);
  if (i >= 0) out[i] = { id, body };
  else put(id, body);
}

function scanImports(body: Uint8Array | undefined): { funcs: number; globals: number } {
  let funcs = 0;
  let globals = 0;
  if (!body) return { funcs, globals };
  const r = new Reader(body);
  const n = r.u32();
  for (let i = 0; i < n; i++) {
    r.name();
    r.name();
    const kind = r.byte();
    if (kind === 0) {
      funcs++;
      r.skipLeb();
    } else if (kind === 1) {
      skipValType(r);
      skipLimits(r);
    } else if (kind === 2) skipLimits(r);
    else if (kind === 3) {
      globals++;
      skipValType(r);
      r.byte();
    } else if (kind === 4) {
      r.byte();
      r.skipLeb();
    } else throw malformed(`unknown import kind ${kind}`);
  }
  return { funcs, globals };
}

/** Copies `buf[from, to)` applying patches (sorted, non-overlapping). */
function applyPatches(buf: Uint8Array, from: number, to: number, patches: Patch[]): Uint8Array {
  const w = new Writer();
  let cursor = from;
  for (const p of patches) {
    w.raw(buf.subarray(cursor, p.start)).raw(p.bytes);
    cursor = p.end;
  }
  return w.raw(buf.subarray(cursor, to)).finish();
}

function exprPatches(r: Reader, ctx: Ctx, patches: Patch[], fuel: Uint8Array | null): void {
  walkExpr(r, {
    funcIndex: (start, end, idx) => {
      patches.push({ start, end, bytes: new Writer().u32(shift(idx, ctx)).finish() });
    },
    loopBody: (pos) => {
      if (fuel) patches.push({ start: pos, end: pos, bytes: fuel });
    },
  });
}

function rewriteGlobals(body: Uint8Array, ctx: Ctx): Uint8Array {
  const r = new Reader(body);
  const n = r.u32();
  const patches: Patch[] = [];
  for (let i = 0; i < n; i++) {
    skipValType(r);
    r.byte();
    exprPatches(r, ctx, patches, null);
  }
  return applyPatches(body, 0, body.length, patches);
}

function rewriteExports(body: Uint8Array, ctx: Ctx): Uint8Array {
  const r = new Reader(body);
  const n = r.u32();
  const w = new Writer().u32(n);
  for (let i = 0; i < n; i++) {
    const name = r.name();
    const kind = r.byte();
    const idx = r.u32();
    w.name(name).byte(kind).u32(kind === 0 ? shift(idx, ctx) : idx);
  }
  return w.finish();
}

function rewriteElements(body: Uint8Array, ctx: Ctx): Uint8Array {
  const r = new Reader(body);
  const n = r.u32();
  const patches: Patch[] = [];
  for (let i = 0; i < n; i++) {
    const flags = r.u32();
    if (flags & 2 && !(flags & 1)) r.skipLeb(); // explicit table index (flags 2, 6)
    if (!(flags & 1)) exprPatches(r, ctx, patches, null); // active: offset expr
    if (flags & 3) {
      if (flags & 4) skipValType(r);
      else r.byte(); // elemkind
    }
    const m = r.u32();
    for (let j = 0; j < m; j++) {
      if (flags & 4) exprPatches(r, ctx, patches, null);
      else {
        const start = r.pos;
        const idx = r.u32();
        patches.push({ start, end: r.pos, bytes: new Writer().u32(shift(idx, ctx)).finish() });
      }
    }
  }
  return applyPatches(body, 0, body.length, patches);
}

function fuelCode(ctx: Ctx): Uint8Array {
  // global.get F; i32.eqz; if; call check; global.set F; end; global.get F; i32.const 1;
  // i32.sub; global.set F
  return new Writer()
    .byte(0x23).u32(ctx.fuelGlobal).byte(0x45).byte(0x04).byte(0x40)
    .byte(0x10).u32(ctx.checkFunc).byte(0x24).u32(ctx.fuelGlobal).byte(0x0b)
    .byte(0x23).u32(ctx.fuelGlobal).byte(0x41).byte(0x01).byte(0x6b).byte(0x24).u32(ctx.fuelGlobal)
    .finish();
}

function rewriteCode(body: Uint8Array, ctx: Ctx): Uint8Array {
  const fuel = fuelCode(ctx);
  const r = new Reader(body);
  const n = r.u32();
  const w = new Writer().u32(n);
  for (let i = 0; i < n; i++) {
    const size = r.u32();
    const start = r.pos;
    const end = start + size;
    const fr = new Reader(body, start, end);
    const locals = fr.u32();
    for (let j = 0; j < locals; j++) {
      fr.skipLeb();
      skipValType(fr);
    }
    const patches: Patch[] = [{ start: fr.pos, end: fr.pos, bytes: fuel }];
    exprPatches(fr, ctx, patches, fuel);
    if (fr.pos !== end) throw malformed(`function ${i} body size mismatch`);
    const out = applyPatches(body, start, end, patches);
    w.u32(out.length).raw(out);
    r.pos = end;
  }
  return w.finish();
}

function capMemories(body: Uint8Array, maxPages: number): Uint8Array {
  const r = new Reader(body);
  const n = r.u32();
  const w = new Writer().u32(n);
  for (let i = 0; i < n; i++) {
    const flags = r.byte();
    if (flags & 4) throw malformed("memory64 is not supported");
    const min = r.u32();
    const max = flags & 1 ? r.u32() : Infinity;
    if (min > maxPages) {
      throw new WeftError(
        "filter_memory_cap",
        `Cannot load filter: its memory needs ${min} pages at start, over the cap of ${maxPages}`,
        { hint: "raise the filter's memory cap or shrink the module's initial memory" },
      );
    }
    w.byte(flags | 1).u32(min).u32(Math.min(max, maxPages));
  }
  return w.finish();
}
