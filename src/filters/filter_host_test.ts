/**
 * FilterHost identity and snapshot semantics with real proxy-wasm modules (c-add-header built
 * from source): (scope, name) identity, all-or-nothing apply, retiring unreferenced filters after
 * their in-flight requests.
 */
import { assert, assertEquals, assertRejects } from "../../tests/support/assert.ts";
import { cAddHeaderWith, ref, request, response } from "../../tests/support/proxy_wasm_kit.ts";
import { setLogSink } from "../core/mod.ts";
import type { FilterRef } from "../core/mod.ts";
import { FilterHost } from "./filter_host.ts";
import { defaultRegistry } from "./registry.ts";
import { registerProxyWasm } from "./proxy_wasm/mod.ts";
import "../../tests/support/example_plugins.ts"; // warms jco before sanitized tests

let wasm = "";
/** Built inside the first test (a build started at module load trips the op sanitizer). */
async function built(): Promise<void> {
  if (!wasm) wasm = await cAddHeaderWith("built");
}

function host(): FilterHost {
  const r = defaultRegistry();
  registerProxyWasm(r);
  return new FilterHost(r);
}

function probe(scope: string, value: string, name = "probe"): FilterRef {
  return { ...ref(name, wasm, { name: "x-probe", value }), scope };
}

async function header(h: FilterHost, r: FilterRef): Promise<string | undefined> {
  const f = h.resolve(r);
  const req = request({});
  await f.onRequest(req);
  await f.onResponse(req, response(200));
  f.onDone(req);
  return req.requestHeaders.get("x-probe");
}

function quiet(): () => void {
  return setLogSink(() => {});
}

Deno.test("filter host: one name in two scopes is two filters", async () => {
  await built();
  const restore = quiet();
  const h = host();
  try {
    const a = probe("default/a/inbound", "from-a");
    const b = probe("default/b/inbound", "from-b");
    await h.apply([a, b]);
    assertEquals(await header(h, a), "from-a");
    assertEquals(await header(h, b), "from-b");
    await assertRejects(
      () => h.apply([a, probe("default/a/inbound", "other")]),
      /two different filters named "probe" in scope "default\/a\/inbound"/,
    );
  } finally {
    h.close();
    restore();
  }
});

Deno.test("filter host: apply is all-or-nothing", async () => {
  await built();
  const restore = quiet();
  const h = host();
  try {
    const a = probe("s", "v1");
    await h.apply([a]);
    const a2 = probe("s", "v2");
    const broken = { ...probe("s", "x", "broken"), url: "/nonexistent/filter.wasm" };
    await assertRejects(() => h.apply([a2, broken]), /cannot read/);
    assertEquals(await header(h, a), "v1", "nothing swapped when one filter fails");
    assertEquals(h.get("broken", "s"), undefined);
    await h.apply([a2]);
    assertEquals(await header(h, a2), "v2");
  } finally {
    h.close();
    restore();
  }
});

Deno.test("filter host: an unreferenced filter is closed after its in-flight requests", async () => {
  await built();
  const restore = quiet();
  const h = host();
  try {
    const keep = probe("s", "k", "keep");
    const gone = probe("s", "g", "gone");
    await h.apply([keep, gone]);
    const f = h.resolve(gone);
    const inflight = request({});
    await f.onRequest(inflight);
    await h.apply([keep]);
    assertEquals(h.get("gone", "s"), undefined, "no longer served to new chains");
    // The request that started before finishes on its generation.
    const res = response(200);
    assertEquals(await f.onResponse(inflight, res), { action: "continue" });
    assertEquals(res.responseHeaders.get("x-probe"), "g");
    f.onDone(inflight);
    const after = await f.onRequest(request({}));
    assert(after.action === "failed" && after.kind === "unavailable", "closed after the last one");
  } finally {
    h.close();
    restore();
  }
});

Deno.test("filter host: trailer hooks reach the generation the request started on", async () => {
  const { testFilter } = await import("../../tests/support/proxy_wasm_kit.ts");
  const { HeaderList } = await import("../core/mod.ts");
  const restore = quiet();
  const h = host();
  try {
    const r = { ...ref("trailers", await testFilter(), {}), scope: "default/a/inbound" };
    await h.apply([r]);
    const f = h.resolve(r);
    const req = request({ "x-test": "trailers", "transfer-encoding": "chunked" });
    await f.onRequest(req);
    const t = new HeaderList([["x-sum", "7"]]);
    assertEquals(await f.onRequestTrailers!(req, t), undefined);
    assertEquals(t.get("x-wasm-sum"), "7", "the proxy-wasm trailers callback ran");
    f.onDone(req);
  } finally {
    h.close();
    restore();
  }
});
