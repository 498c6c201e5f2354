/**
 * Filters published by others, unchanged, configured from weft.yaml on real weft processes:
 * client → node A (outbound: Istio 1.5 metadata_exchange) → HBONE → node B (inbound: Istio's
 * metadata_exchange and stats, the TinyGo SDK's http_auth_random with its callout cluster
 * declared, and http_headers) → HTTP workload. The files and their provenance are in
 * tests/fixtures/third_party_wasm.
 */
import { createServer } from "node:http";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { LISTENERS, loopbackBlock, NO_TOOLS_PATH } from "./support/weft_proc.ts";
import { withNodesAB } from "./support/two_nodes.ts";
import { FIXTURE_DIR } from "../tools/third_party_wasm.ts";

const PORT = 18080;
const wasm = (f: string) => `file://${join(FIXTURE_DIR, f)}`;

/** FNV-1a 32, what http_auth_random hashes the callout reply with (even → allow). */
function fnv32a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}
function bodyWithParity(even: boolean): string {
  for (let i = 0;; i++) if ((fnv32a(`body-${i}`) % 2 === 0) === even) return `body-${i}`;
}

Deno.test("third-party proxy-wasm filters unchanged on two weft nodes: callout, node metadata, Istio stats", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-3p-" });
  const echo = await startHttpWorkload(ip(3), PORT, "v1");
  // The callout cluster "httpbin" the TinyGo filter calls: its reply decides allow / 403.
  let reply = bodyWithParity(true);
  let callouts = 0;
  const httpbin = createServer((req, res) => {
    callouts++;
    req.resume();
    req.on("end", () => res.end(reply));
  });
  await new Promise<void>((r) => httpbin.listen(0, "127.0.0.1", r));
  const httpbinPort = (httpbin.address() as { port: number }).port;
  const ca = { mode: "auto", stateDir: join(dir, "ca") };
  const service = {
    name: "echo",
    namespace: "default",
    ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
    endpoints: [{
      workload: "echo-v1",
      namespace: "default",
      serviceAccount: "echo",
      address: ip(3),
    }],
  };
  const exchange = (direction: string) => ({
    name: "istio.metadata-exchange",
    url: wasm("istio-metadata_exchange.wasm"),
    type: "proxy-wasm",
    direction,
    phase: "AUTHN",
    pluginName: "",
    pluginConfig: {},
  });
  // Envoy bootstrap node metadata, as istio-agent writes it for a sidecar; Istio's filters read
  // it in their root contexts (per request weft overlays the local workload).
  const nodeB = {
    node: {
      name: "node-b",
      metadata: {
        NAME: "echo-v1-0",
        WORKLOAD_NAME: "echo-v1",
        NAMESPACE: "default",
        LABELS: { app: "echo", version: "v1" },
      },
    },
    ca,
    listeners: { ...LISTENERS, captureServiceVips: false },
    workloads: [{
      name: "echo-v1",
      namespace: "default",
      serviceAccount: "echo",
      address: ip(3),
      labels: { app: "echo", version: "v1" },
    }],
    services: [{
      ...service,
      plugins: [
        exchange("inbound"),
        {
          name: "istio.stats",
          url: wasm("istio-stats.wasm"),
          type: "proxy-wasm",
          direction: "inbound",
          phase: "STATS",
          pluginName: "stats_inbound",
          pluginConfig: {},
        },
        {
          name: "http-auth-random",
          url: wasm("tinygo-http_auth_random.wasm"),
          type: "proxy-wasm",
          direction: "inbound",
          phase: "AUTHZ",
          clusters: { httpbin: `127.0.0.1:${httpbinPort}` },
        },
        {
          name: "http-headers",
          url: wasm("tinygo-http_headers.wasm"),
          type: "proxy-wasm",
          direction: "inbound",
          phase: "UNSPECIFIED",
        },
      ],
    }],
  };
  // A JSON API behind two body filters built with Go 1.24 (wasip1): validation, then rewriting.
  const api = {
    name: "api",
    namespace: "default",
    ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
    endpoints: [{
      workload: "echo-v1",
      namespace: "default",
      serviceAccount: "echo",
      address: ip(3),
    }],
  };
  const apiPlugins = [
    {
      name: "json-validation",
      url: wasm("go-json_validation.wasm"),
      type: "proxy-wasm",
      direction: "inbound",
      phase: "AUTHZ",
      bodies: true,
      pluginConfig: { requiredKeys: ["id"] },
    },
    {
      name: "http-body",
      url: wasm("go-http_body.wasm"),
      type: "proxy-wasm",
      direction: "inbound",
      phase: "STATS",
      bodies: true,
    },
  ];
  (nodeB.services as unknown[]).push({ ...api, vips: [ip(101)], plugins: apiPlugins });
  const nodeA = {
    node: {
      name: "node-a",
      defaultSourceWorkload: "sleep",
      metadata: {
        NAME: "sleep-0",
        WORKLOAD_NAME: "sleep",
        NAMESPACE: "default",
        LABELS: { app: "sleep", version: "v7" },
      },
    },
    ca,
    listeners: LISTENERS,
    workloads: [{
      name: "sleep",
      namespace: "default",
      serviceAccount: "sleep",
      address: ip(2),
      labels: { app: "sleep", version: "v7" },
    }],
    services: [{ ...service, vips: [ip(100)], plugins: [exchange("outbound")] }, {
      ...api,
      vips: [ip(101)],
    }],
  };
  try {
    const env = { PATH: NO_TOOLS_PATH };
    await withNodesAB(dir, nodeA, nodeB, { env }, async (_a, b) => {
      const get = async (path: string) => {
        const r = await fetch(`http://${ip(100)}:80${path}`);
        return { status: r.status, body: await r.text() };
      };
      // Allowed: the callout's reply hashes even; the workload answers.
      const ok = await get("/item");
      assertEquals(ok.status, 200, ok.body);
      const seen = JSON.parse(ok.body);
      // Node A's exchange sent its metadata; node B's exchange took the headers off the request.
      assertEquals(seen.headers["x-envoy-peer-metadata"], undefined);
      // Denied: an odd hash → the filter's own 403 local reply.
      reply = bodyWithParity(false);
      const denied = await get("/item");
      assertEquals([denied.status, denied.body], [403, "access forbidden"]);
      assert(callouts >= 2, `callouts made: ${callouts}`);
      // Istio's stats filter on node B, fed by the exchanged peer metadata.
      const text = await (await fetch(`http://${b.ready.metrics}/stats/prometheus`)).text();
      assertMatch(text, /istio_requests_total\{reporter="destination",[^}]*response_code="200"/);
      assertMatch(text, /istio_requests_total\{[^}]*response_code="403"/);
      // Peer metadata exchanged from node A (its node metadata), the local side from node B's.
      assertMatch(
        text,
        /istio_requests_total\{[^}]*source_workload="sleep",source_workload_namespace="default",source_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep",source_app="sleep",source_version="v7"/,
      );
      assertMatch(text, /destination_workload="echo-v1",[^}]*destination_app="echo"/);
      assertMatch(text, /destination_service="echo\.default\.svc\.cluster\.local"/);
      assertMatch(text, /connection_security_policy="mutual_tls"/);
      // Bodies through the API: validated, then rewritten before the workload sees them.
      const post = async (body: string, headers: Record<string, string> = {}) => {
        const r = await fetch(`http://${ip(101)}:80/v1/items`, {
          method: "POST",
          headers: { "content-type": "application/json", ...headers },
          body,
        });
        return { status: r.status, body: await r.text() };
      };
      const appended = await post('{"id":7}', { "buffer-operation": "append" });
      assertEquals(appended.status, 200, appended.body);
      assertEquals(JSON.parse(appended.body).body, '{"id":7}[this is appended body]');
      const invalid = await post('{"name":"x"}');
      assertEquals([invalid.status, invalid.body], [403, "invalid payload"]);
      // http_headers logged what it saw, with Envoy's header model (:authority, no host).
      const logs = b.lines.map((l) => JSON.stringify(l)).join("\n");
      assertMatch(logs, /request header: :authority: /);
      assert(!/request header: host: /.test(logs), "no host header beside :authority");
    });
  } finally {
    await echo.close();
    await new Promise((r) => httpbin.close(r));
    await Deno.remove(dir, { recursive: true });
  }
});
