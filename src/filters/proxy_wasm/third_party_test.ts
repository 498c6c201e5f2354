/**
 * Filters built and published by others, run unchanged: TinyGo proxy-wasm-go-sdk examples and
 * Istio 1.5's own C++/Emscripten filters, committed byte for byte in
 * tests/fixtures/third_party_wasm with their provenance (README.md there; tools/third_party_wasm.ts
 * verifies the sha256 and re-extracts them from the publishing repositories):
 * - tinygo-http_auth_random.wasm: proxy_http_call to cluster "httpbin", then continue or 403 by a
 *   hash of the reply body (ABI 0.1.0)
 * - tinygo-http_headers.wasm: logs every header
 * - tinygo-helloworld.wasm: root context, 1 s tick timer
 * - istio-metadata_exchange.wasm: reads node metadata, imports env.pthread_equal, no ABI marker
 * - istio-stats.wasm: istio_requests_total and friends with tag-encoded stat names; with
 *   metadata_exchange in front it labels requests with the exchanged peer
 * $WEFT_THIRD_PARTY_WASM points the test at another folder holding the same files.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../../../tests/support/assert.ts";
import { ref, request, response } from "../../../tests/support/proxy_wasm_kit.ts";
import { FIXTURE_DIR, sha256Hex, THIRD_PARTY_WASM } from "../../../tools/third_party_wasm.ts";
import { env, metrics, setLogSink } from "../../core/mod.ts";
import { createProxyWasmFilter } from "./mod.ts";
import type { ProxyWasmHostOptions } from "./options.ts";

const DIR = env("WEFT_THIRD_PARTY_WASM") ?? FIXTURE_DIR;
const SHA256: Record<string, string> = Object.fromEntries(
  THIRD_PARTY_WASM.map((w) => [w.file, w.sha256]),
);

Deno.test("third-party fixtures are the published bytes (sha256)", async () => {
  for (const w of THIRD_PARTY_WASM) {
    assertEquals(await sha256Hex(await Deno.readFile(join(DIR, w.file))), w.sha256, w.file);
  }
});

function thirdParty(
  file: string,
  fn: (url: string) => Promise<void>,
  what = "runs unchanged",
): void {
  Deno.test({
    name: `third-party ${file} ${what}`,
    sanitizeOps: true,
    sanitizeResources: true,
    fn: async () => {
      await fn(join(DIR, file));
    },
  });
}

async function load(file: string, url: string, opts: ProxyWasmHostOptions, config: unknown = {}) {
  const r = { ...ref(file.replace(/\.wasm$/, ""), url, config), sha256: SHA256[file] };
  return await createProxyWasmFilter(r, opts);
}

function captureLogs(): { lines: string[]; restore: () => void } {
  const lines: string[] = [];
  return { lines, restore: setLogSink((l) => lines.push(l)) };
}

/** FNV-1a 32, what the filter hashes the callout body with. */
function fnv32a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

function bodyWithParity(even: boolean): string {
  for (let i = 0;; i++) if ((fnv32a(`body-${i}`) % 2 === 0) === even) return `body-${i}`;
}

async function listen(handler: (req: IncomingMessage) => string): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.end(handler(req)));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return server;
}

thirdParty("tinygo-http_auth_random.wasm", async (url) => {
  const hosts: (string | undefined)[][] = [];
  let reply = bodyWithParity(true);
  const server = await listen((req) => {
    hosts.push(req.headersDistinct["host"] ?? []);
    return reply;
  });
  const port = (server.address() as { port: number }).port;
  const logs = captureLogs();
  const f = await load("tinygo-http_auth_random.wasm", url, {
    clusters: { httpbin: `127.0.0.1:${port}` },
  });
  try {
    const granted = request({ host: "echo.default.svc.cluster.local" });
    assertEquals(await f.onRequest(granted), { action: "continue" }, "even hash: access granted");
    f.onDone(granted);
    reply = bodyWithParity(false);
    const denied = request({ host: "echo.default.svc.cluster.local" });
    const out = await f.onRequest(denied);
    assert(out.action === "respond", JSON.stringify(out));
    assertEquals(out.response.status, 403);
    assertEquals(new TextDecoder().decode(out.response.body as Uint8Array), "access forbidden");
    f.onDone(denied);
    // Envoy's header model: the callout copies the request headers; one Host, from :authority.
    assertEquals(hosts, [["echo.default.svc.cluster.local"], ["echo.default.svc.cluster.local"]]);
  } finally {
    f.close();
    logs.restore();
    await new Promise((r) => server.close(r));
  }
});

thirdParty("tinygo-http_auth_random.wasm", async (url) => {
  // Unknown cluster: refused at once, logged and counted; the paused request fails now.
  const logs = captureLogs();
  const f = await load("tinygo-http_auth_random.wasm", url, {});
  try {
    const req = request({});
    const t0 = performance.now();
    const out = await f.onRequest(req);
    assert(performance.now() - t0 < 1000, "no pause-timeout wait");
    assertEquals(out.action, "failed");
    assert(out.action === "failed" && out.kind === "callout");
    f.onDone(req);
    assert(logs.lines.some((l) => l.includes("http call refused") && l.includes("httpbin")));
    assertMatch(
      metrics.render(),
      /weft_filter_errors_total\{filter="tinygo-http_auth_random",kind="callout"\} [1-9]/,
    );
  } finally {
    f.close();
    logs.restore();
  }
}, "with an undeclared cluster fails at once");

thirdParty("tinygo-http_headers.wasm", async (url) => {
  const logs = captureLogs();
  const f = await load("tinygo-http_headers.wasm", url, {});
  try {
    const req = request({ host: "echo.default.svc.cluster.local", "user-agent": "curl/8" });
    assertEquals(await f.onRequest(req), { action: "continue" });
    await f.onResponse(req, response(200, { server: "echo" }));
    f.onDone(req);
    const text = logs.lines.join("\n");
    assertMatch(text, /request header: :authority: echo\.default\.svc\.cluster\.local/);
    assertMatch(text, /request header: user-agent: curl\/8/);
    assertMatch(text, /response header: :status: 200/);
    assert(!text.includes("request header: host:"), "no host header beside :authority");
  } finally {
    f.close();
    logs.restore();
  }
});

thirdParty("tinygo-helloworld.wasm", async (url) => {
  const logs = captureLogs();
  const f = await load("tinygo-helloworld.wasm", url, {});
  try {
    await new Promise((r) => setTimeout(r, 1300));
    assert(logs.lines.some((l) => l.includes("OnTick on 1")), "the 1 s tick fired");
  } finally {
    f.close();
    logs.restore();
  }
});

const NODE = {
  nodeId: "sidecar~10.1.2.3~echo-1.default~default.svc.cluster.local",
  nodeMetadata: {
    EXCHANGE_KEYS: "NAME,NAMESPACE,LABELS",
    NAME: "echo-1",
    NAMESPACE: "default",
    LABELS: { app: "echo", version: "v1" },
    MESH_ID: "cluster.local",
  },
};

thirdParty("istio-metadata_exchange.wasm", async (url) => {
  const logs = captureLogs();
  // Its root context registers under root id "" (WasmPlugin pluginName).
  const f = await load("istio-metadata_exchange.wasm", url, { ...NODE, rootId: "" });
  try {
    const req = request({ "x-envoy-peer-metadata-id": "client-node" });
    assertEquals(await f.onRequest(req), { action: "continue" });
    assertEquals(req.requestHeaders.has("x-envoy-peer-metadata-id"), false, "peer header taken");
    const res = response(200);
    await f.onResponse(req, res);
    f.onDone(req);
    // Inbound: the node's own metadata goes back downstream, read from node.metadata.
    assertEquals(res.responseHeaders.get("x-envoy-peer-metadata-id"), NODE.nodeId);
    const meta = atob(res.responseHeaders.get("x-envoy-peer-metadata") ?? "");
    for (const s of ["NAME", "echo-1", "NAMESPACE", "LABELS", "app", "v1"]) {
      assert(meta.includes(s), `exchanged metadata carries ${s}`);
    }
    assert(!meta.includes("MESH_ID"), "only EXCHANGE_KEYS are exchanged");
  } finally {
    f.close();
    logs.restore();
  }
});

thirdParty("istio-stats.wasm", async (url) => {
  const logs = captureLogs();
  const f = await load("istio-stats.wasm", url, { ...NODE, rootId: "stats_inbound" });
  try {
    const req = request({});
    assertEquals(await f.onRequest(req), { action: "continue" });
    await f.onResponse(req, response(200));
    f.onDone(req);
    const family = metrics.get("istio_requests_total");
    assert(family, "istio_requests_total defined by the filter");
    const text = metrics.render();
    assertMatch(text, /istio_requests_total\{reporter="destination",[^}]*response_code="200"/);
    assertMatch(text, /source_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/client"/);
  } finally {
    f.close();
    logs.restore();
  }
});

thirdParty("istio-stats.wasm", async (statsUrl) => {
  const mxUrl = join(DIR, "istio-metadata_exchange.wasm");
  const logs = captureLogs();
  const client = {
    nodeId: "sidecar~10.9.9.9~sleep-1.ns-c~ns-c.svc.cluster.local",
    nodeMetadata: {
      EXCHANGE_KEYS: "NAME,NAMESPACE,WORKLOAD_NAME,LABELS",
      NAME: "sleep-1",
      NAMESPACE: "ns-c",
      WORKLOAD_NAME: "sleep",
      LABELS: { app: "sleep", version: "v7" },
    },
  };
  // The client side's exchange (outbound) puts its node metadata on the request.
  const out = await load("istio-metadata_exchange.wasm", mxUrl, { ...client, rootId: "" });
  const server = await load("istio-metadata_exchange.wasm", mxUrl, { ...NODE, rootId: "" });
  const stats = await load("istio-stats.wasm", statsUrl, { ...NODE, rootId: "stats_inbound" });
  try {
    const sent = { ...request({}), direction: "outbound" as const };
    await out.onRequest(sent);
    out.onDone(sent);
    const header = sent.requestHeaders.get("x-envoy-peer-metadata");
    assert(header, "outbound exchange adds the peer metadata header");
    // The server side: exchange reads it into the request's filter state, stats reads it there.
    const req = request({
      "x-envoy-peer-metadata": header,
      "x-envoy-peer-metadata-id": client.nodeId,
    });
    await server.onRequest(req);
    await stats.onRequest(req);
    const res = response(200);
    await stats.onResponse(req, res);
    await server.onResponse(req, res);
    stats.onDone(req);
    server.onDone(req);
    assertMatch(
      metrics.render(),
      /istio_requests_total\{[^}]*source_workload="sleep",source_workload_namespace="ns-c"/,
    );
    assertMatch(metrics.render(), /istio_requests_total\{[^}]*source_app="sleep"/);
  } finally {
    out.close();
    server.close();
    stats.close();
    logs.restore();
  }
}, "reads the peer that metadata_exchange put in the request's filter state");

// --- Bodies: proxy-wasm-go-sdk examples built with Go 1.24 (wasip1, c-shared) and the Rust SDK.

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

function jsonRequest(body: string, headers: Record<string, string> = {}) {
  return request({
    "content-type": "application/json",
    "content-length": String(enc(body).length),
    ...headers,
  }, { method: "POST", body: enc(body) });
}

thirdParty("go-json_validation.wasm", async (url) => {
  const logs = captureLogs();
  const f = await load("go-json_validation.wasm", url, { bodies: true }, {
    requiredKeys: ["id", "token"],
  });
  try {
    const good = jsonRequest('{"id":1,"token":"t"}');
    assertEquals(await f.onRequest(good), { action: "continue" });
    f.onDone(good);
    const missing = jsonRequest('{"id":1}');
    const out = await f.onRequest(missing);
    assert(out.action === "respond", JSON.stringify(out));
    assertEquals([out.response.status, dec(out.response.body as Uint8Array)], [
      403,
      "invalid payload",
    ]);
    f.onDone(missing);
    const notJson = request({ "content-type": "text/plain" }, { method: "POST", body: enc("x") });
    const out2 = await f.onRequest(notJson);
    assert(out2.action === "respond" && out2.response.status === 403, JSON.stringify(out2));
    f.onDone(notJson);
    assert(logs.lines.some((l) => l.includes("required key (token) is missing")));
  } finally {
    f.close();
    logs.restore();
  }
}, "validates JSON request bodies (Go SDK, wasip1)");

thirdParty("go-http_body.wasm", async (url) => {
  const logs = captureLogs();
  const f = await load("go-http_body.wasm", url, { bodies: true }, {});
  try {
    for (
      const [op, want] of [
        ["append", "hello[this is appended body]"],
        ["prepend", "[this is prepended body]hello"],
        ["replace", "[this is replaced body]"],
      ]
    ) {
      const req = jsonRequest("hello", { "buffer-operation": op! });
      assertEquals(await f.onRequest(req), { action: "continue" });
      assertEquals(dec(req.requestBody), want, op);
      assertEquals(req.requestHeaders.has("content-length"), false, "the filter removed it");
      f.onDone(req);
    }
    // The response side: replace the upstream's body.
    const req = jsonRequest("hello", { "buffer-replace-at": "response" });
    assertEquals(await f.onRequest(req), { action: "continue" });
    assertEquals(dec(req.requestBody), "hello", "request untouched in response mode");
    const res = response(200, { "content-length": "8" });
    res.responseBody = enc("upstream");
    assertEquals(await f.onResponse(req, res), { action: "continue" });
    assertEquals(dec(res.responseBody), "[this is replaced body]");
    f.onDone(req);
    // Trailers follow (Envoy: decodeData with end_stream false, then decodeTrailers): the
    // filter buffers (pauses) and waits for an end of stream that never comes in a body call,
    // so the body goes on unchanged, without holding the request.
    const trailed = jsonRequest("hello", { "buffer-operation": "append" });
    trailed.requestTrailersFollow = true;
    assertEquals(await f.onRequest(trailed), { action: "continue" });
    assertEquals(dec(trailed.requestBody), "hello", "no end of stream: not rewritten");
    f.onDone(trailed);
    // No body at all: the filter's own 400.
    const empty = request({});
    const out = await f.onRequest(empty);
    assert(out.action === "respond" && out.response.status === 400, JSON.stringify(out));
    f.onDone(empty);
    assert(logs.lines.some((l) => l.includes("original request body: hello")));
  } finally {
    f.close();
    logs.restore();
  }
}, "rewrites request and response bodies (Go SDK, wasip1)");

thirdParty("rust-hello_world.wasm", async (url) => {
  const logs = captureLogs();
  const f = await load("rust-hello_world.wasm", url, {});
  try {
    assert(logs.lines.some((l) => l.includes("Hello, World!")), "on_vm_start ran");
  } finally {
    f.close();
    logs.restore();
  }
}, "starts its root context (Rust SDK)");

thirdParty("rust-envoy_filter_metadata.wasm", async (url) => {
  const f = await load("rust-envoy_filter_metadata.wasm", url, {});
  try {
    // It answers only when a Lua filter left metadata; weft has none, so the request goes on.
    const req = request({});
    assertEquals(await f.onRequest(req), { action: "continue" });
    f.onDone(req);
  } finally {
    f.close();
  }
}, "runs its HTTP context (Rust SDK)");
