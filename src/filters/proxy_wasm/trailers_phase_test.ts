/**
 * proxy-wasm trailer callbacks that do not simply continue, as Envoy's decodeTrailers /
 * encodeTrailers: a PAUSE holds the trailers until proxy_continue_stream (or fails by the fail
 * policy when the pause times out), a local response answers. C test filter, built from source.
 */
import { assert, assertEquals } from "../../../tests/support/assert.ts";
import { ref, request, response, testFilter } from "../../../tests/support/proxy_wasm_kit.ts";
import { HeaderList } from "../../core/mod.ts";
import { createProxyWasmFilter } from "./mod.ts";

const wasm = await testFilter();

Deno.test("trailers: a PAUSE holds them until proxy_continue_stream", async () => {
  const f = await createProxyWasmFilter(ref("test-filter", wasm, {}));
  try {
    const req = request({ "x-test": "trailers-pause", "transfer-encoding": "chunked" });
    await f.onRequest(req);
    const t = new HeaderList([["x-sum", "1"]]);
    const held = f.onRequestTrailers(req, t);
    assert(held instanceof Promise, "held");
    let done = false;
    held.then(() => (done = true), () => {});
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(done, false);
    const vm = f.currentVm!;
    assertEquals(vm.run("root", undefined, () => vm.export("test_continue_body")!(0)), 0);
    assertEquals(await held, undefined, "continue: the trailers go on");
    assertEquals(t.get("x-paused"), "1", "as the guest changed them");
    const res = response(200);
    await f.onResponse(req, res);
    const heldRes = f.onResponseTrailers(req, res, new HeaderList([["a", "b"]]));
    assert(heldRes instanceof Promise);
    assertEquals(vm.run("root", undefined, () => vm.export("test_continue_body")!(1)), 0);
    assertEquals(await heldRes, undefined);
    f.onDone(req);
  } finally {
    f.close();
  }
});

Deno.test("trailers: a local response answers; a pause that times out fails by policy", async () => {
  const f = await createProxyWasmFilter(ref("test-filter", wasm, {}), { pauseTimeoutMs: 30 });
  try {
    const req = request({ "x-test": "trailers-local", "transfer-encoding": "chunked" });
    await f.onRequest(req);
    const out = await f.onRequestTrailers(req, new HeaderList([["x-sum", "1"]]));
    assertEquals(out && out.response.status, 403);
    assertEquals(out && out.response.details, "trailers_denied");
    f.onDone(req);
    const stuck = request({ "x-test": "trailers-pause", "transfer-encoding": "chunked" });
    await f.onRequest(stuck);
    const failed = await f.onRequestTrailers(stuck, new HeaderList([["x-sum", "1"]]));
    assertEquals(failed && failed.response.status, 503, "FAIL_CLOSE after the pause timeout");
    f.onDone(stuck);
  } finally {
    f.close();
  }
});
