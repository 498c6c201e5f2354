import assert from "node:assert/strict";
import { parse } from "@bytecodealliance/jco-transpile/wasm-tools";
import { DEFAULT_FUEL, instrumentModule } from "./instrument.ts";

// Warm wasm-tools (it starts async file reads at import) before the sanitized tests run.
await parse("(module)");

class Deadline extends Error {}

/** Instantiates `bytes` instrumented, with a check that traps after `maxChecks` refills. */
async function load(
  wat: string,
  opts: {
    maxChecks?: number;
    maxMemoryPages?: number;
    initialFuel?: number;
    imports?: WebAssembly.Imports;
  } = {},
): Promise<{ exports: WebAssembly.Exports; checks: () => number }> {
  const bytes = instrumentModule(await parse(wat), {
    maxMemoryPages: opts.maxMemoryPages ?? 16,
    initialFuel: opts.initialFuel ?? DEFAULT_FUEL,
  });
  let checks = 0;
  const check = (): number => {
    if (++checks > (opts.maxChecks ?? 1e9)) throw new Deadline("deadline");
    return DEFAULT_FUEL;
  };
  const instance = await WebAssembly.instantiate(new WebAssembly.Module(bytes), {
    ...opts.imports,
    "weft:sandbox": { check },
  });
  return { exports: instance.exports, checks: () => checks };
}

Deno.test("an infinite loop reaches the check import and is stopped by it", async () => {
  const { exports, checks } = await load(
    `(module (func (export "spin") (loop $l (br $l))))`,
    { maxChecks: 3 },
  );
  assert.throws(() => (exports.spin as () => void)(), Deadline);
  assert.equal(checks(), 4);
});

Deno.test("infinite recursion through calls is metered at function entry", async () => {
  const { exports } = await load(
    `(module (func $a (export "a") (call $b)) (func $b (return_call $a)))`,
    { maxChecks: 0, initialFuel: 100 },
  );
  assert.throws(() => (exports.a as () => void)(), Deadline);
});

Deno.test("renumbering keeps calls, tables, ref.func, globals and start working", async () => {
  const wat = `(module
    (import "env" "add" (func $add (param i32 i32) (result i32)))
    (import "env" "g" (global $g i32))
    (type $t (func (result i32)))
    (table 2 funcref)
    (elem (i32.const 0) $seven $eight)
    (global $s (mut i32) (i32.const 0))
    (global $fr funcref (ref.func $eight))
    (func $seven (result i32) (i32.const 7))
    (func $eight (result i32) (i32.const 8))
    (func $init (global.set $s (i32.const 5)))
    (start $init)
    (func (export "sum") (param i32) (result i32)
      (local $i i32) (local $acc i32)
      (loop $l
        (local.set $acc (call $add (local.get $acc) (call_indirect (type $t) (local.get 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 3))))
      (i32.add (i32.add (local.get $acc) (global.get $s)) (global.get $g)))
    (func (export "viaref") (result i32) (call_ref $t (ref.func $seven)))
    (elem declare func $seven))`;
  const env = { add: (a: number, b: number) => a + b, g: 100 };
  const { exports, checks } = await load(wat, { imports: { env } });
  const sum = exports.sum as (i: number) => number;
  assert.equal(sum(0), 7 * 3 + 5 + 100);
  assert.equal(sum(1), 8 * 3 + 5 + 100);
  assert.equal((exports.viaref as () => number)(), 7);
  assert.equal(checks(), 0);
});

Deno.test("memory growth stops at the cap", async () => {
  const { exports } = await load(
    `(module (memory (export "memory") 1)
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`,
    { maxMemoryPages: 4 },
  );
  const grow = exports.grow as (n: number) => number;
  assert.equal(grow(2), 1);
  assert.equal(grow(2), -1);
  assert.equal(grow(1), 3);
  assert.equal((exports.memory as WebAssembly.Memory).buffer.byteLength, 4 * 65536);
});

Deno.test("a module whose initial memory exceeds the cap is refused", async () => {
  const bytes = await parse(`(module (memory 8))`);
  assert.throws(
    () => instrumentModule(bytes, { maxMemoryPages: 4 }),
    /filter_memory_cap|over the cap/,
  );
});

Deno.test("non-wasm input is refused with a WeftError", () => {
  assert.throws(
    () => instrumentModule(new TextEncoder().encode("not wasm at all")),
    (e: unknown) => (e as { code?: string }).code === "wasm_malformed",
  );
});

Deno.test("SIMD, bulk memory and sat-trunc immediates are walked correctly", async () => {
  const { exports } = await load(`(module (memory 1)
    (func (export "f") (result i32)
      (memory.fill (i32.const 0) (i32.const 3) (i32.const 16))
      (memory.copy (i32.const 16) (i32.const 0) (i32.const 16))
      (i32.trunc_sat_f32_s (f32.const 2.5))
      (i8x16.extract_lane_u 15 (v128.load offset=16 (i32.const 0)))
      (i32.add)))`);
  assert.equal((exports.f as () => number)(), 5);
});

Deno.test("sections the rewriter adds land in canonical order before trailing custom sections", async () => {
  // No imports, no globals, a trailing custom section: the new sections must be placed in order.
  const base = await parse(
    `(module (table 1 funcref) (func (export "f") (result i32) (i32.const 1)))`,
  );
  const custom = Uint8Array.of(0x00, 0x04, 0x03, 0x61, 0x62, 0x63);
  const withCustom = new Uint8Array(base.length + custom.length);
  withCustom.set(base);
  withCustom.set(custom, base.length);
  const out = instrumentModule(withCustom);
  assert.ok(WebAssembly.validate(out));
  const inst = new WebAssembly.Instance(new WebAssembly.Module(out), {
    "weft:sandbox": { check: () => 1 },
  });
  assert.equal((inst.exports.f as () => number)(), 1);
});
