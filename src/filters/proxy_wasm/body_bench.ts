/**
 * Body phase cost and a callout round trip, each against a peer measured in the same run:
 * - the proxy-wasm c-json-redact filter on a 1 KiB and a 64 KiB JSON request body (headers +
 *   body callbacks, get/set_buffer_bytes, the rewrite), against the same redaction done in plain
 *   JS on the same bytes (TextDecoder, replace, TextEncoder): the wasm host's overhead per body;
 * - a proxy_http_call round trip (PAUSE → loopback HTTP server → on_http_call_response →
 *   continue) against the same HTTP request made directly with node:http.
 * - weft:filter@0.2.0 component body phases (c_json_body): buffered, and one streamed chunk.
 * - proxy-wasm streamed bodies (Envoy's per-chunk calls, `bodies: "streamed"`): one chunk through
 *   the C test filter ("chunks" mode: get_buffer_bytes, a prefix by set_buffer_bytes, CONTINUE).
 * Run: deno task bench:bodies
 */
import { request as httpRequest } from "node:http";
import { requestContext, responseContext } from "../../../tests/support/filter_context.ts";
import { jsonRedact, ref, request, testFilter } from "../../../tests/support/proxy_wasm_kit.ts";
import { setLogLevel } from "../../core/mod.ts";
import { createProxyWasmFilter } from "./mod.ts";
import { exampleFilter } from "../../../tests/support/example_plugins.ts";

setLogLevel("warn");
const redact = await createProxyWasmFilter(ref("json-redact", await jsonRedact(), {}), {
  bodies: true,
});

function jsonOf(size: number): Uint8Array {
  const head = '{"user":"ann","password":"hunter2","pad":"';
  return new TextEncoder().encode(head + "x".repeat(size - head.length - 2) + '"}');
}

const bodies = { "1 KiB": jsonOf(1024), "64 KiB": jsonOf(64 * 1024) };

function wasmBody(body: Uint8Array): void {
  const ctx = requestContext("/b", [["content-type", "application/json"]]);
  ctx.requestBody = body;
  redact.onRequest(ctx);
  redact.onResponse(ctx, responseContext(200));
  redact.onDone(ctx);
}

function jsBody(body: Uint8Array): Uint8Array {
  const text = new TextDecoder().decode(body);
  if (!text.trimStart().startsWith("{")) throw new Error("not an object");
  return new TextEncoder().encode(text.replace(/("password"\s*:\s*)"(?:[^"\\]|\\.)*"/g, '$1"***"'));
}

for (const [label, body] of Object.entries(bodies)) {
  Deno.bench(`peer: plain JS redaction, ${label} body`, { group: label, baseline: true }, () => {
    jsBody(body);
  });
  Deno.bench(`proxy-wasm c-json-redact, ${label} body (full stream)`, { group: label }, () => {
    wasmBody(body);
  });
}

// Callout round trip against a loopback server.
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
  await r.text();
  return new Response("allowed:alice");
});
const port = server.addr.port;
const callout = await createProxyWasmFilter(ref("callout", await testFilter(), {}), {
  clusters: { authz: `127.0.0.1:${port}` },
});

function direct(): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: "127.0.0.1",
      port,
      method: "POST",
      path: "/check",
      headers: { host: "authz" },
    }, (res) => {
      res.resume();
      res.on("end", () => resolve());
    });
    req.on("error", reject);
    req.end("alice");
  });
}

// A fixed count: each call is a new connection (as each callout is), and an open-ended run spends
// the ephemeral ports of a shared box (connect EINVAL).
const CALLS = { n: 2000, warmup: 200 };
Deno.bench(
  "peer: the same HTTP request with node:http",
  { group: "callout", baseline: true, ...CALLS },
  () => direct(),
);
Deno.bench("proxy-wasm proxy_http_call round trip (pause → response → continue)", {
  group: "callout",
  ...CALLS,
}, async () => {
  const ctx = request({ "x-test": "callout", "x-user": "alice" });
  await callout.onRequest(ctx);
  callout.onDone(ctx);
});

globalThis.addEventListener("unload", () => {
  void server.shutdown().catch(() => {});
});

// weft:filter@0.2.0 components (plugins/examples/c_json_body, direct binding): the buffered body
// phase on the same bodies, and one streamed chunk of 1 KiB / 64 KiB (per-chunk cost).
const buffered = await exampleFilter("c_json_body", {});
const streamed = await exampleFilter("c_json_body", { request: "streamed", response: "streamed" });
for (const [label, body] of Object.entries(bodies)) {
  Deno.bench(
    `component c_json_body, buffered ${label} body (request phase)`,
    { group: label },
    () => {
      const ctx = requestContext("/b", [["content-type", "application/json"]]);
      ctx.requestBody = body;
      buffered.onRequest(ctx);
      buffered.onDone(ctx);
    },
  );
  const ctx = requestContext("/b", []);
  Deno.bench(`component c_json_body, one streamed ${label} chunk`, { group: label }, () => {
    streamed.onRequestBodyChunk!(ctx, body, false);
  });
}

// proxy-wasm streamed bodies (Envoy's per-chunk body callback): one chunk of 1 KiB / 64 KiB.
const perChunk = await createProxyWasmFilter(ref("chunks", await testFilter(), {}), {
  bodies: "streamed",
});
for (const [label, body] of Object.entries(bodies)) {
  const ctx = request({ "x-test": "chunks", "transfer-encoding": "chunked" }, { method: "POST" });
  await perChunk.onRequest(ctx);
  Deno.bench(`proxy-wasm streamed, one ${label} chunk (body callback, CONTINUE)`, {
    group: label,
  }, () => {
    perChunk.onRequestBodyChunk(ctx, body, false);
  });
}
