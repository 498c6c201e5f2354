import assert from "node:assert/strict";
import { GuestMemory } from "./guest_memory.ts";

/** A memory with a bump allocator standing in for the guest's cabi_realloc. */
function guestMemory(
  pages = 1,
): { m: GuestMemory; memory: WebAssembly.Memory; put(s: string, at: number): [number, number] } {
  const memory = new WebAssembly.Memory({ initial: pages, maximum: 16 });
  let top = 1024;
  const realloc = (_old: number, _oldSize: number, _align: number, size: number): number => {
    const p = top;
    top += size;
    while (top > memory.buffer.byteLength) memory.grow(1);
    return p;
  };
  const m = new GuestMemory(memory, realloc);
  const put = (s: string, at: number): [number, number] => {
    const b = new TextEncoder().encode(s);
    new Uint8Array(memory.buffer).set(b, at);
    return [at, b.length];
  };
  return { m, memory, put };
}

Deno.test("cached names follow the bytes in memory, never a stale string", () => {
  const { m, put } = guestMemory();
  const [p, l] = put("request.method", 100);
  const first = m.name(p, l);
  assert.equal(first, "request.method");
  assert.equal(m.name(p, l), first);
  put("request.mXthod", 100);
  assert.equal(m.name(p, l), "request.mXthod");
  assert.equal(m.name(p, 7), "request");
  put("Content-Type", 300);
  assert.equal(m.headerName(300, 12), "content-type");
  put("Accept-Ranges", 300);
  assert.equal(m.headerName(300, 13), "accept-ranges");
});

Deno.test("derived values ride on the cache entry and are dropped when the name changes", () => {
  const { m, put } = guestMemory();
  put("hits", 200);
  const e = m.nameEntry(200, 4);
  e.counter = () => {};
  assert.equal(m.nameEntry(200, 4).counter, e.counter);
  put("miss", 200);
  const e2 = m.nameEntry(200, 4);
  assert.equal(e2.s, "miss");
  assert.equal(e2.counter, undefined);
});

Deno.test("non-ASCII and long strings decode exactly like TextDecoder", () => {
  const { m, put } = guestMemory();
  const dec = new TextDecoder();
  for (const s of ["héllo", "x".repeat(49), "日本語のヘッダー", "a\u0000b"]) {
    const [p, l] = put(s, 400);
    assert.equal(m.name(p, l), s);
    assert.equal(m.str(p, l), s);
  }
  new Uint8Array(m.memory.buffer).set([0x61, 0xff, 0x62], 600);
  assert.equal(m.name(600, 3), dec.decode(new Uint8Array([0x61, 0xff, 0x62])));
  assert.equal(m.name(600, 0), "");
});

Deno.test("views are refreshed after memory.grow, and lowering writes through them", () => {
  const { m, memory } = guestMemory(1);
  const before = memory.buffer;
  const big = "y".repeat(70_000); // forces realloc to grow the memory
  const p = m.lower(big);
  assert.notEqual(memory.buffer, before);
  assert.equal(m.lastLen, big.length);
  assert.equal(m.str(p, m.lastLen), big);
  const q = m.lower("grüße");
  assert.equal(m.str(q, m.lastLen), "grüße");
  m.writeOption(16, "ok");
  const dv = new DataView(memory.buffer);
  assert.equal(dv.getUint8(16), 1);
  assert.equal(m.str(dv.getUint32(20, true), dv.getUint32(24, true)), "ok");
  m.writeOption(16, undefined);
  assert.equal(new DataView(memory.buffer).getUint8(16), 0);
});

Deno.test("out-of-range guest pointers throw instead of reading past memory", () => {
  const { m } = guestMemory(1);
  assert.throws(() => m.str(65_530, 10), RangeError);
  assert.throws(() => m.name(-4, 3), RangeError);
  assert.throws(() => m.name(65_536, 1), RangeError);
});

Deno.test("names at any two addresses stay cached together (no slot sharing)", () => {
  const { m, put } = guestMemory();
  // These two addresses shared a slot of the former direct-mapped cache.
  const [a, al] = put("request.path", 2134);
  const [b, bl] = put("source.address", 1524);
  const ea = m.nameEntry(a, al);
  const eb = m.nameEntry(b, bl);
  for (let i = 0; i < 3; i++) {
    assert.equal(m.nameEntry(a, al), ea);
    assert.equal(m.nameEntry(b, bl), eb);
  }
});
