import assert from "node:assert/strict";
import { filterMetrics } from "../filter_metrics.ts";
import { filterContract } from "../../../tests/support/filter_contract.ts";
import { requestContext, responseContext } from "../../../tests/support/filter_context.ts";
import { exampleFilter } from "../../../tests/support/example_plugins.ts";
import { componentizeQjsPath } from "../plugin_build.ts";

// JS guests need componentize-qjs, which cannot be installed through Deno here (wasm/README.md):
// these run where WEFT_COMPONENTIZE_QJS (or node_modules/.bin) provides it.
const HAVE_QJS = componentizeQjsPath() !== undefined;

for (const binding of ["auto", "jco"] as const) {
  filterContract(`component/${binding}`, {
    headerSetter: () =>
      exampleFilter("c_header_rewrite", { header: "x-contract", value: "yes" }, { binding }),
    denier: () => exampleFilter("c_local_response", {}, { binding }),
    trapper: () => exampleFilter("c_faulty", {}, { binding }),
  });
}

filterContract("component/js", {
  headerSetter: () => exampleFilter("js_header_rewrite", { header: "x-contract", value: "yes" }),
  denier: () => exampleFilter("js_header_rewrite"),
  trapper: () => exampleFilter("js_header_rewrite"),
}, { ignore: !HAVE_QJS });

Deno.test({
  name: "a JS guest rejects a bad config and runs through jco",
  ignore: !HAVE_QJS,
  fn: async () => {
    const f = await exampleFilter("js_header_rewrite", { value: "v" });
    assert.equal(f.binding, "jco");
    await assert.rejects(
      () => exampleFilter("js_header_rewrite", { value: 5 }),
      /must be a string/,
    );
  },
});

Deno.test("C guests run through the direct binding, jco on request", async () => {
  assert.equal((await exampleFilter("c_faulty")).binding, "direct");
  assert.equal((await exampleFilter("c_faulty", {}, { binding: "jco" })).binding, "jco");
});

Deno.test("header rewrite: set, remove, filter state across phases, counters", async () => {
  const f = await exampleFilter("c_header_rewrite", { header: "x-hello", value: "world" });
  const ctx = requestContext("/some/path?q=1", [["x-remove-me", "1"], ["accept", "*/*"]]);
  assert.equal((await f.onRequest(ctx)).action, "continue");
  assert.equal(ctx.requestHeaders.get("x-hello"), "world");
  assert.equal(ctx.requestHeaders.has("x-remove-me"), false);
  assert.equal(ctx.requestHeaders.get("accept"), "*/*");
  const res = responseContext(200);
  assert.equal((await f.onResponse(ctx, res)).action, "continue");
  assert.equal(res.responseHeaders.get("x-weft-path"), "/some/path?q=1");
  assert.ok(filterMetrics.guestCounter.get({ filter: "c_header_rewrite", name: "rewritten" }) >= 1);
});

Deno.test("local response, delay and route decisions come back intact", async () => {
  for (const binding of ["auto", "jco"] as const) {
    const f = await exampleFilter("c_local_response", {}, { binding });
    const deny = await f.onRequest(requestContext("/deny/me"));
    assert.equal(deny.action, "respond");
    if (deny.action === "respond") {
      assert.equal(deny.response.status, 403);
      assert.equal(new TextDecoder().decode(deny.response.body as Uint8Array), "denied by weft\n");
      assert.deepEqual(deny.response.headers, [["x-denied-by", "c_local_response"], [
        "content-type",
        "text/plain",
      ]]);
      assert.equal(deny.response.details, "example_denied");
    }
    assert.deepEqual(await f.onRequest(requestContext("/delay")), {
      action: "delay",
      delayMs: 20,
      then: { action: "continue" },
    });
    assert.deepEqual(await f.onRequest(requestContext("/v2/x")), {
      action: "continue",
      route: { service: "reviews.default.svc.cluster.local", subset: "v2" },
    });
    const ctx = requestContext("/");
    const replaced = await f.onResponse(ctx, responseContext(503));
    assert.equal(replaced.action, "respond");
  }
});

Deno.test("an infinite loop is stopped within the call budget; the next call works", async () => {
  const f = await exampleFilter("c_faulty", {}, { sandbox: { callBudgetMs: 30 } });
  const t0 = performance.now();
  const out = await f.onRequest(requestContext("/spin"));
  const took = performance.now() - t0;
  assert.equal(out.action, "failed");
  if (out.action === "failed") assert.equal(out.kind, "timeout");
  assert.ok(took < 30 + 200, `stopped after ${took} ms`);
  const ok = requestContext("/ok");
  assert.equal((await f.onRequest(ok)).action, "continue");
  assert.equal(ok.requestHeaders.get("x-faulty"), "ok");
});

Deno.test("memory growth past the cap fails as kind memory", async () => {
  const f = await exampleFilter("c_faulty", {}, { sandbox: { maxMemoryBytes: 4 * 1024 * 1024 } });
  const out = await f.onRequest(requestContext("/grow"));
  assert.equal(out.action, "failed");
  if (out.action === "failed") assert.equal(out.kind, "memory");
  assert.equal((await f.onRequest(requestContext("/ok"))).action, "continue");
});

Deno.test("a config the guest rejects fails the load with filter_config", async () => {
  await assert.rejects(
    () => exampleFilter("c_faulty", { reject: true }),
    (e: unknown) =>
      (e as { code?: string }).code === "filter_config" && /refuses to start/.test(String(e)),
  );
  await assert.rejects(() => exampleFilter("c_header_rewrite", {}), /config.value: required/);
});

Deno.test("a crash loop puts the filter into backoff, then it serves again", async () => {
  const f = await exampleFilter("c_faulty", {}, {
    sandbox: { crashLoopLimit: 3, crashWindowMs: 10_000, backoffBaseMs: 40 },
  });
  for (let i = 0; i < 3; i++) {
    assert.equal((await f.onRequest(requestContext("/trap"))).action, "failed");
  }
  const unavailable = () => filterMetrics.errors.get({ filter: f.name, kind: "unavailable" });
  const before = unavailable();
  const req = requestContext("/ok");
  const during = await f.onRequest(req);
  assert.equal(during.action === "failed" && during.kind, "unavailable");
  // FAIL_OPEN lets the request through; its response phase fails too, but counts once.
  const again = await f.onResponse(req, responseContext(200));
  assert.equal(again.action === "failed" && again.kind, "unavailable");
  assert.equal(unavailable() - before, 1, "one unavailable per request, not per phase");
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await f.onRequest(requestContext("/ok"))).action, "continue");
});

Deno.test({
  name: "JS binding conventions: u64 Number, kebab-case enums, {tag, val} variants",
  ignore: !HAVE_QJS,
  fn: async () => {
    const f = await exampleFilter("js_conventions", {}, { failPolicy: "FAIL_OPEN" });
    const run = async (path: string) => {
      const ctx = requestContext(path);
      const out = await f.onRequest(ctx);
      return { out, nowType: ctx.requestHeaders.get("x-now-ns-type") };
    };
    const ok = await run("/u64-number");
    assert.deepEqual(ok, { out: { action: "continue" }, nowType: "number" });
    assert.deepEqual((await run("/delay")).out, {
      action: "delay",
      delayMs: 5,
      then: { action: "continue" },
    });
    for (const wrong of ["/u64-bigint", "/enum-camel", "/tag-capital"]) {
      const { out } = await run(wrong);
      assert.equal(out.action === "failed" && out.kind, "trap", wrong);
    }
  },
});
