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
    const junk = await Deno.makeTempFile({ suffix: ".wasm" });
    await Deno.writeTextFile(junk, "not wasm");
    const broken = { ...probe("s", "x", "broken"), url: junk };
    await assertRejects(() => h.apply([a2, broken]));
    await Deno.remove(junk);
    assertEquals(await header(h, a), "v1", "nothing swapped when one filter fails");
    assertEquals(h.get("broken", "s"), undefined);
    await h.apply([a2]);
    assertEquals(await header(h, a2), "v2");
  } finally {
    h.close();
    restore();
  }
});

Deno.test("filter host: a module that cannot be fetched is Istio's stand-in, retried until it comes", async () => {
  await built();
  const restore = quiet();
  const h = host();
  const dir = await Deno.makeTempDir();
  try {
    const good = probe("s", "v1");
    const later = `${dir}/later.wasm`;
    const close = { ...probe("s", "c", "close"), url: later };
    const open = { ...probe("s", "o", "open"), url: `${dir}/never.wasm`, failPolicy: "FAIL_OPEN" };
    await h.apply([good, close, open as FilterRef]); // does not throw: the node gets ready
    assertEquals(await header(h, good), "v1");
    const denied = await h.resolve(close).onRequest(request({}));
    assertEquals(denied.action === "respond" && denied.response, {
      status: 403,
      headers: [["content-type", "text/plain"]],
      body: "RBAC: access denied",
      details: "rbac_access_denied_matched_policy[none]",
    });
    const skipped = await h.resolve(open as FilterRef).onRequest(request({}));
    assert(skipped.action === "failed", "FAIL_OPEN: the chain skips it");
    // The module appears: the retry (1 s) loads it and swaps it in.
    const src = good.url!.startsWith("file://") ? new URL(good.url!).pathname : good.url!;
    await Deno.copyFile(src, later);
    const t0 = Date.now();
    while (h.get("close", "s")?.current.constructor.name === "UnavailableFilter") {
      assert(Date.now() - t0 < 5000, "retried within 5 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    assertEquals(await header(h, close), "c");
    // An update whose module cannot be fetched keeps the good generation, then takes the new
    // one when it comes.
    const next = `${dir}/next.wasm`;
    const update = { ...probe("s", "c2", "close"), url: next };
    await h.apply([good, update, open as FilterRef]);
    assertEquals(await header(h, update), "c", "the last good generation serves");
    await Deno.copyFile(src, next);
    const t1 = Date.now();
    while (await header(h, update) !== "c2") {
      assert(Date.now() - t1 < 5000, "the update is retried within 5 s");
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    h.close();
    restore();
    await Deno.remove(dir, { recursive: true });
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
