/**
 * String traffic between the host and one guest's linear memory, tuned for the host-import hot
 * path (measured with host_call_bench.ts):
 * - one cached Uint8Array/DataView over `memory.buffer`, rebuilt only when a `memory.grow` has
 *   detached the old buffer (a detached view reads as length 0), instead of new views per call;
 * - names (property, header, counter, state keys) are mostly literals at fixed addresses in the
 *   guest's data segment: `name()` keeps the decoded string per address and re-checks the bytes on
 *   every use (no allocation, and the same string object each time, so the Map/switch lookups
 *   that follow hit its cached hash); a changed byte replaces the entry, so the result is always
 *   exactly what decoding would give;
 * - short ASCII strings decode and encode by hand (TextDecoder/encodeInto have per-call setup).
 */

const dec = new TextDecoder("utf-8", { fatal: false });
const enc = new TextEncoder();

/** Longest string handled by the hand-written ASCII paths and the name cache. */
const SHORT = 48;
/** Names cached per guest instance; past this the cache starts over (names at changing
 * addresses never grow it without bound). */
const MAX_NAMES = 512;
const EMPTY = new Uint8Array(0);

export type Realloc = (old: number, oldSize: number, align: number, size: number) => number;

/** A cached name and what callers derived from it (all per guest instance, so per bridge). */
export interface NameEntry {
  readonly s: string;
  readonly ptr: number;
  /** The name's bytes when cached (EMPTY otherwise). */
  bytes: Uint8Array;
  /** `s` lower-cased (header names), filled on first use. */
  lc: string | undefined;
  /** A bound metric or resolved property getter, by the import that uses the name. */
  counter: ((by: number) => void) | undefined;
  property: (() => string | undefined) | undefined;
}

export class GuestMemory {
  u8: Uint8Array;
  dv: DataView;
  /** By address: a changed byte just replaces the entry. (Not direct-mapped: two names sharing
   * a slot made every request miss twice, a string decode and a byte copy each.) */
  private readonly names = new Map<number, NameEntry>();

  constructor(readonly memory: WebAssembly.Memory, private readonly realloc: Realloc) {
    this.u8 = new Uint8Array(memory.buffer);
    this.dv = new DataView(memory.buffer);
  }

  /** Re-binds the views if the buffer was replaced (memory.grow detaches the old one). */
  refresh(): void {
    if (this.u8.length === 0 || this.u8.buffer !== this.memory.buffer) {
      this.u8 = new Uint8Array(this.memory.buffer);
      this.dv = new DataView(this.memory.buffer);
    }
  }

  /** The views, current: call after anything that may have run guest code (realloc). */
  view(): Uint8Array {
    if (this.u8.length === 0) this.refresh();
    return this.u8;
  }

  dataView(): DataView {
    if (this.u8.length === 0) this.refresh();
    return this.dv;
  }

  /** Decodes UTF-8 (lossy, like TextDecoder without `fatal`). */
  str(ptr: number, len: number): string {
    if (len === 0) return "";
    const u8 = this.view();
    checkRange(u8, ptr, len);
    if (len > SHORT) return dec.decode(u8.subarray(ptr, ptr + len));
    let s = "";
    for (let i = ptr, end = ptr + len; i < end; i++) {
      const c = u8[i]!;
      if (c >= 0x80) return dec.decode(u8.subarray(ptr, ptr + len));
      s += String.fromCharCode(c);
    }
    return s;
  }

  /** Like `str`, through the per-address cache; for names a guest passes again and again. */
  name(ptr: number, len: number): string {
    return this.nameEntry(ptr, len).s;
  }

  /** A header name, lower-cased (cached with the name). */
  headerName(ptr: number, len: number): string {
    const e = this.nameEntry(ptr, len);
    return e.lc ??= e.s.toLowerCase();
  }

  /** The cache entry of a name (an uncached name gets a fresh entry each time). */
  nameEntry(ptr: number, len: number): NameEntry {
    const e = this.names.get(ptr);
    if (e !== undefined && e.ptr === ptr && e.bytes.length === len) {
      const u8 = this.view();
      if (ptr + len <= u8.length) {
        const b = e.bytes;
        let i = 0;
        while (i < len && u8[ptr + i] === b[i]) i++;
        if (i === len) return e;
      }
    }
    const s = this.str(ptr, len);
    const fresh: NameEntry = {
      s,
      ptr,
      bytes: EMPTY,
      lc: undefined,
      counter: undefined,
      property: undefined,
    };
    // Only short ASCII names are cached (then the bytes are the string's char codes).
    if (len > 0 && len <= SHORT && s.length === len && !hasNonAscii(s)) {
      fresh.bytes = this.u8.slice(ptr, ptr + len);
      if (this.names.size >= MAX_NAMES && !this.names.has(ptr)) this.names.clear();
      this.names.set(ptr, fresh);
    }
    return fresh;
  }

  /** Copies `s` into memory from the guest's cabi_realloc; returns the pointer, length in `lastLen`. */
  lower(s: string): number {
    const n = s.length;
    if (n <= SHORT) {
      const ptr = this.realloc(0, 0, 1, n);
      const u8 = this.view();
      checkRange(u8, ptr, n);
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        u8[ptr + i] = c;
      }
      if (i === n) {
        this.lastLen = n;
        return ptr;
      }
    }
    const max = n * 3;
    const ptr = this.realloc(0, 0, 1, max);
    checkRange(this.view(), ptr, max);
    this.lastLen = enc.encodeInto(s, this.view().subarray(ptr, ptr + max)).written;
    return ptr;
  }
  lastLen = 0;

  /** Writes `option<string>` at `ret` (tag byte, then ptr and len at +4/+8). */
  writeOption(ret: number, v: string | undefined): void {
    if (v === undefined) {
      this.dataView().setUint8(ret, 0);
      return;
    }
    const p = this.lower(v);
    const dv = this.dataView();
    dv.setUint8(ret, 1);
    dv.setUint32(ret + 4, p, true);
    dv.setUint32(ret + 8, this.lastLen, true);
  }

  /** Copies bytes into memory from cabi_realloc; returns the pointer. */
  lowerBytes(b: Uint8Array): number {
    const ptr = this.realloc(0, 0, 1, b.length);
    checkRange(this.view(), ptr, b.length);
    this.view().set(b, ptr);
    return ptr;
  }
}

/** Out-of-bounds guest pointers throw (as constructing a view over them would), never clamp. */
function checkRange(u8: Uint8Array, ptr: number, len: number): void {
  if (ptr < 0 || len < 0 || ptr + len > u8.length) {
    throw new RangeError(`guest range ${ptr}+${len} is outside linear memory (${u8.length})`);
  }
}

function hasNonAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return true;
  return false;
}
