/**
 * Per-request cost of a header-adding proxy-wasm filter (full stream: context create, request
 * headers + add, response headers + add, on_done/on_log/on_delete), against the same job as a
 * WIT component (plugins/examples/c_header_rewrite, request phase only).
 * Run: deno bench -A src/filters/proxy_wasm/proxy_wasm_bench.ts
 */
import { requestContext, responseContext } from "../../../tests/support/filter_context.ts";
import { exampleFilter } from "../../../tests/support/example_plugins.ts";
import { plugins, ref } from "../../../tests/support/proxy_wasm_kit.ts";
import { setLogLevel } from "../../core/mod.ts";
import type { HttpFilter } from "../../core/mod.ts";
import { createProxyWasmFilter } from "./mod.ts";

setLogLevel("warn");
const built = await plugins();
const cfg = { name: "x-a", value: "b" };
const cSandboxed = await createProxyWasmFilter(ref("c-add-header", built.cAddHeader, cfg));
const cRaw = await createProxyWasmFilter(ref("c-add-header-raw", built.cAddHeader, cfg), {
  sandbox: false,
});
const asFilter = await createProxyWasmFilter(ref("add-header", built.addHeader, cfg));
const component = await exampleFilter("c_header_rewrite", { header: "x-a", value: "b" });
const headers: [string, string][] = Array.from({ length: 20 }, (_, i) => [`h${i}`, `v${i}`]);

function fullStream(f: HttpFilter): void {
  const ctx = requestContext("/bench", headers);
  f.onRequest(ctx);
  f.onResponse(ctx, responseContext(200));
  f.onDone(ctx);
}

function requestOnly(f: HttpFilter): void {
  const ctx = requestContext("/bench", headers);
  f.onRequest(ctx);
  f.onDone(ctx);
}

Deno.bench("baseline: building the request/response contexts only", { group: "stream" }, () => {
  requestContext("/bench", headers);
  responseContext(200);
});
Deno.bench(
  "proxy-wasm C add-header, sandboxed: full stream",
  { group: "stream", baseline: true },
  () => {
    fullStream(cSandboxed);
  },
);
Deno.bench("proxy-wasm C add-header, no sandbox: full stream", { group: "stream" }, () => {
  fullStream(cRaw);
});
Deno.bench(
  "proxy-wasm AssemblyScript add-header (SDK 0.1.8): full stream",
  { group: "stream" },
  () => {
    fullStream(asFilter);
  },
);
Deno.bench("proxy-wasm C add-header: request phase + done", { group: "request" }, () => {
  requestOnly(cSandboxed);
});
Deno.bench("component C header rewrite (direct binding): request phase + done", {
  group: "request",
}, () => {
  requestOnly(component);
});
