/**
 * Real HTTP through weft's L7 proxy with proxy-wasm filters built from source: the AssemblyScript
 * examples (auth-check, add-header), the C test filter (traps under both fail strategies, PAUSE
 * on an http_call to a loopback upstream), metrics on the registry render, and a hot swap to a
 * rebuilt module.
 */
import assert from "node:assert/strict";
import { metrics, orderFilterRefs } from "../src/core/mod.ts";
import { createProxyWasmFilter, fromWasmPlugin } from "../src/filters/proxy_wasm/mod.ts";
import type { ProxyWasmFilter } from "../src/filters/proxy_wasm/mod.ts";
import { startL7 } from "./support/l7_harness.ts";
import { cAddHeaderWith, plugins, ref, testFilter } from "./support/proxy_wasm_kit.ts";

async function get(
  client: Deno.HttpClient,
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: string }> {
  const r = await fetch(url, { client, headers });
  return { status: r.status, headers: r.headers, body: await r.text() };
}

Deno.test("proxy-wasm filters on real HTTP: auth, headers, metrics, traps, callouts, reload", async () => {
  const built = await plugins();
  const testWasm = await testFilter();
  const authz = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const ok = (await req.text()) === "alice";
      return new Response(ok ? "welcome alice" : "nope", { status: ok ? 200 : 403 });
    },
  );
  const specs = [
    fromWasmPlugin({
      name: "add-header",
      url: `file://${built.addHeader}`,
      phase: "STATS",
      pluginConfig: { name: "x-weft-demo", value: "wasm" },
    }),
    fromWasmPlugin({
      name: "auth-check",
      url: `file://${built.authCheck}`,
      phase: "AUTHZ",
      pluginConfig: { header: "x-api-key", value: "k1", body: "denied by auth-check\n" },
    }),
    fromWasmPlugin({
      name: "test-filter",
      url: testWasm,
      phase: "AUTHN",
      failStrategy: "FAIL_OPEN",
    }),
  ];
  const clusters = { authz: `127.0.0.1:${authz.addr.port}` };
  const filters: ProxyWasmFilter[] = [];
  for (const s of orderFilterRefs(specs)) {
    filters.push(await createProxyWasmFilter(s, { clusters }));
  }
  assert.deepEqual(filters.map((f) => f.name), ["test-filter", "auth-check", "add-header"]);
  const h = await startL7(filters);
  const client = Deno.createHttpClient({});
  const key = { "x-api-key": "k1" };
  try {
    const denied = await get(client, `${h.url}/hello`);
    assert.equal(denied.status, 403);
    assert.equal(denied.body, "denied by auth-check\n");

    const ok = await get(client, `${h.url}/hello`, key);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get("x-weft-demo"), "wasm", "response header added");
    assert.equal(JSON.parse(ok.body).headers["x-weft-demo"], "wasm", "request header added");
    assert.match(metrics.render(), /^weft_add_header_requests_total [1-9]\d*$/m);

    // FAIL_OPEN: the trapping filter is skipped; the next request runs on a fresh VM.
    const open = await get(client, `${h.url}/trap`, key);
    assert.equal(open.status, 200);
    assert.match(
      metrics.render(),
      /^weft_filter_errors_total\{filter="test-filter",kind="trap"\} 1$/m,
    );
    const after = await get(client, `${h.url}/after`, key);
    assert.equal(JSON.parse(after.body).headers["x-header-count"] !== undefined, true);

    // PAUSE: held until the callout's answer continues or denies the request.
    const alice = await get(client, `${h.url}/cb`, {
      ...key,
      "x-test": "callout",
      "x-user": "alice",
    });
    assert.equal(alice.status, 200);
    assert.equal(JSON.parse(alice.body).headers["x-authz-body"], "welcome alice");
    const bob = await get(client, `${h.url}/cb`, { ...key, "x-test": "callout", "x-user": "bob" });
    assert.equal(bob.status, 403);
    assert.equal(bob.body, "nope");

    // FAIL_CLOSE: the same trap answers 503 with an empty body.
    const closed = await createProxyWasmFilter(ref("test-filter-closed", testWasm, {}));
    h.setChain([closed]);
    const trapped = await get(client, `${h.url}/trap`);
    assert.equal(trapped.status, 503);
    assert.equal(trapped.body, "");
    assert.equal((await get(client, `${h.url}/fine`)).status, 200);
    closed.close();

    // Hot reload: new generation loaded beside the old one, then swapped in.
    const gen1 = await createProxyWasmFilter(ref("reload", await cAddHeaderWith("v1"), {}));
    h.setChain([gen1]);
    assert.equal((await get(client, `${h.url}/r`)).headers.get("x-weft-c-add-header"), "v1");
    const gen2 = await createProxyWasmFilter(ref("reload", await cAddHeaderWith("v2"), {}));
    h.setChain([gen2]);
    gen1.close();
    assert.equal((await get(client, `${h.url}/r`)).headers.get("x-weft-c-add-header"), "v2");
    gen2.close();
  } finally {
    client.close();
    for (const f of filters) f.close();
    await h.close();
    await authz.shutdown();
  }
});
