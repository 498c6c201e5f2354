/** The compat image's layer: bounded gunzip (a gzip bomb is cut) and plugin.wasm from the tar. */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { gunzipBounded, pluginFromTar } from "./oci_extract.ts";
import { tarOf } from "../../tests/support/oci_registry.ts";

Deno.test("OCI layer: a gzip bomb is refused at the bound, a small layer passes", async () => {
  const bomb = new Uint8Array(gzipSync(new Uint8Array(32 << 20))); // 32 MiB of zeros, ~32 KB
  assert.ok(bomb.length < 100_000);
  await assert.rejects(gunzipBounded(bomb, 1 << 20), RangeError);
  const ok = await gunzipBounded(new Uint8Array(gzipSync(new Uint8Array([1, 2, 3]))), 16);
  assert.deepEqual(ok, new Uint8Array([1, 2, 3]));
  await assert.rejects(gunzipBounded(new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3]), 1 << 20));
});

Deno.test("OCI layer: plugin.wasm is found by its base name; a truncated tar is refused", () => {
  const wasm = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
  assert.deepEqual(pluginFromTar(tarOf("plugin.wasm", wasm)), wasm);
  assert.deepEqual(pluginFromTar(tarOf("./dist/plugin.wasm", wasm)), wasm);
  assert.equal(pluginFromTar(tarOf("other.wasm", wasm)), undefined);
  const big = tarOf("plugin.wasm", new Uint8Array(2000));
  assert.throws(() => pluginFromTar(big.subarray(0, 1024)), TypeError);
});
