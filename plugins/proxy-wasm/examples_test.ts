/**
 * The three example proxy-wasm filters, built from source, run through weft's HttpFilter
 * interface: add-header (AssemblyScript, ABI 0.2.0), auth-check (AssemblyScript) and
 * c-add-header (C, ABI 0.2.1).
 */
import { assert, assertEquals, assertRejects } from "../../tests/support/assert.ts";
import { plugins, ref, request, response } from "../../tests/support/proxy_wasm_kit.ts";
import { metrics } from "../../src/core/mod.ts";
import type { FilterOutcome } from "../../src/core/mod.ts";
import { createProxyWasmFilter, fromWasmPlugin } from "../../src/filters/proxy_wasm/mod.ts";

const built = await plugins();

Deno.test("add-header (AssemblyScript): adds the configured request and response header", async () => {
  const f = await createProxyWasmFilter(
    ref("add-header", built.addHeader, {
      name: "x-weft-demo",
      value: "from-config",
    }),
  );
  try {
    const before = metrics.render().match(
      /^weft_add_header_requests_total (\d+)$/m,
    );
    const req = request();
    assertEquals(await f.onRequest(req), { action: "continue" });
    assertEquals(req.requestHeaders.get("x-weft-demo"), "from-config");
    const res = response(200);
    assertEquals(await f.onResponse(req, res), { action: "continue" });
    assertEquals(res.responseHeaders.get("x-weft-demo"), "from-config");
    f.onDone(req);
    const after = metrics.render().match(
      /^weft_add_header_requests_total (\d+)$/m,
    );
    assert(after, "the plugin's counter is in the registry render");
    assertEquals(Number(after[1]) - Number(before?.[1] ?? 0), 1);
  } finally {
    f.close();
  }
});

Deno.test("auth-check (AssemblyScript): 403 with body when the header is missing or wrong", async () => {
  const spec = fromWasmPlugin({
    name: "auth-check",
    url: `file://${built.authCheck}`,
    phase: "AUTHZ",
    pluginConfig: {
      header: "x-api-key",
      value: "s3cret",
      body: "no key, no entry\n",
    },
  });
  const f = await createProxyWasmFilter(spec);
  try {
    const missing = request();
    const out = await f.onRequest(missing) as Extract<
      FilterOutcome,
      { action: "respond" }
    >;
    assertEquals(out.action, "respond");
    assertEquals(out.response.status, 403);
    assertEquals(
      new TextDecoder().decode(out.response.body as Uint8Array),
      "no key, no entry\n",
    );
    assertEquals(out.response.details, "auth_check_missing_header");
    assertEquals(out.response.headers, [["content-type", "text/plain"]]);
    f.onDone(missing);

    const wrong = request({ "x-api-key": "guess" });
    const out2 = await f.onRequest(wrong) as Extract<
      FilterOutcome,
      { action: "respond" }
    >;
    assertEquals(out2.response.details, "auth_check_wrong_value");
    f.onDone(wrong);

    const good = request({ "x-api-key": "s3cret" });
    assertEquals(await f.onRequest(good), { action: "continue" });
    f.onDone(good);
  } finally {
    f.close();
  }
});

Deno.test("auth-check: a configuration the plugin refuses rejects the load", async () => {
  await assertRejects(
    () =>
      createProxyWasmFilter(
        ref("auth-check", built.authCheck, { header: "x-api-key" }),
      ),
    /Cannot configure proxy-wasm plugin auth-check: proxy_on_configure rejected/,
  );
});

Deno.test("c-add-header (C, ABI 0.2.1): header name and value read at configure", async () => {
  const f = await createProxyWasmFilter(
    ref("c-add-header", built.cAddHeader, { name: "x-c", value: "configured" }),
  );
  try {
    const req = request();
    assertEquals(
      f.onRequest(req),
      { action: "continue" },
      "synchronous when nothing pauses",
    );
    assertEquals(req.requestHeaders.get("x-c"), "configured");
    const res = response();
    f.onResponse(req, res);
    assertEquals(res.responseHeaders.get("x-c"), "configured");
    f.onDone(req);
  } finally {
    f.close();
  }
});
