/** The proxy-wasm host registered in the filter registry and driven by the FilterHost: load by
 * FilterRef type, hot reload of a rebuilt module (new generation beside the old, atomic swap). */
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals } from "../../../tests/support/assert.ts";
import { cAddHeaderWith, ref, request, response } from "../../../tests/support/proxy_wasm_kit.ts";
import { defaultRegistry, FilterHost, registerProxyWasm } from "../mod.ts";
import { setLogSink } from "../../core/mod.ts";
import { $init as bindgenReady } from "@bytecodealliance/jco-transpile/component";
import { metadataShow } from "@bytecodealliance/jco-transpile/wasm-tools";

// jco-transpile (pulled in by the registry's component factory) starts reading its own wasm at
// import time; let that finish so the op sanitizer sees only this test's work.
await bindgenReady;
await metadataShow(Uint8Array.of()).catch(() => undefined);

Deno.test("FilterHost loads weft.proxy_wasm refs and hot-swaps a rebuilt module", async () => {
  const restore = setLogSink(() => {});
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "filter.wasm");
    copyFileSync(await cAddHeaderWith("v1"), path);
    const registry = defaultRegistry();
    registerProxyWasm(registry);
    const host = new FilterHost(registry);
    const r = ref("reloadable", `file://${path}`, {});
    await host.apply([r]);
    const f = host.resolve(r);
    const inflight = request();
    f.onRequest(inflight);
    assertEquals(inflight.requestHeaders.get("x-weft-c-add-header"), "v1");

    copyFileSync(await cAddHeaderWith("v2"), path); // the rebuilt filter
    const result = await host.reload("reloadable");
    assertEquals(result.generation, 2);
    const fresh = request();
    f.onRequest(fresh);
    assertEquals(fresh.requestHeaders.get("x-weft-c-add-header"), "v2");

    const res = response();
    f.onResponse(inflight, res);
    assertEquals(res.responseHeaders.get("x-weft-c-add-header"), "v1", "in-flight stays on gen 1");
    f.onDone(inflight);
    f.onDone(fresh);
  } finally {
    restore();
    await Deno.remove(dir, { recursive: true });
  }
});
