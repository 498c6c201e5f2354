/**
 * L7 through real weft processes: client → node A (outbound chain: fault, traffic-split) →
 * HBONE → node B (inbound chain: authorization) → HTTP workloads v1/v2. The first-party plugins
 * are prebuilt (`deno task plugins`, or embedded in the binary) and configured from weft.yaml in
 * Istio's shapes; the nodes run with no compiler on PATH.
 */
import { connect } from "node:net";
import { assert, assertEquals } from "./support/assert.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { loopbackBlock, NO_TOOLS_PATH } from "./support/weft_proc.ts";
import {
  DENY_ADMIN_YAML,
  nodeAConfig,
  nodeBConfig,
  withNodesAB,
  writeIstio,
} from "./support/two_nodes.ts";
import { metricSum, scrape } from "./support/mesh.ts";
import { buildProxyWasmPlugins } from "../plugins/proxy-wasm/build.ts";

const PORT = 18080;

Deno.test("l7: authorization, traffic split, fault injection and a proxy-wasm filter across two weft nodes", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-l7-" });
  const v1 = await startHttpWorkload(ip(3), PORT, "v1");
  const v2 = await startHttpWorkload(ip(4), PORT, "v2");
  const endpoints = [
    {
      workload: "echo-v1",
      namespace: "default",
      serviceAccount: "echo",
      address: ip(3),
      labels: { version: "v1" },
    },
    {
      workload: "echo-v2",
      namespace: "default",
      serviceAccount: "echo",
      address: ip(4),
      labels: { version: "v2" },
    },
  ];
  const service = {
    name: "echo",
    namespace: "default",
    ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
    endpoints,
  };
  // An existing proxy-wasm filter (AssemblyScript SDK), unchanged, on node B's inbound chain.
  const { addHeader } = await buildProxyWasmPlugins();
  const proxyWasm = {
    name: "add-header",
    url: `file://${addHeader}`,
    type: "proxy-wasm",
    direction: "inbound",
    phase: "STATS",
    pluginConfig: { name: "x-weft-demo", value: "wasm" },
  };
  const nodeB = nodeBConfig(
    dir,
    [
      {
        name: "echo-v1",
        namespace: "default",
        serviceAccount: "echo",
        address: ip(3),
        labels: { app: "echo", version: "v1" },
      },
      {
        name: "echo-v2",
        namespace: "default",
        serviceAccount: "echo",
        address: ip(4),
        labels: { app: "echo", version: "v2" },
      },
    ],
    [{ ...service, plugins: [proxyWasm] }],
  );
  // Istio's own manifests, as a team keeps them: a directory of multi-document YAML.
  await writeIstio(dir, {
    "policies.yaml": `${DENY_ADMIN_YAML}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-get
  namespace: default
spec:
  action: ALLOW
  rules:
    - from:
        - source:
            principals: ["cluster.local/ns/default/sa/sleep"]
      to:
        - operation:
            methods: ["GET"]
`,
  });
  const nodeA = nodeAConfig(dir, ip, [{
    ...service,
    vips: [ip(100)],
    subsets: [{ name: "v1", labels: { version: "v1" } }, {
      name: "v2",
      labels: { version: "v2" },
    }],
    http: [
      {
        match: [{ headers: { "x-fault": { exact: "1" } } }],
        fault: { abort: { httpStatus: 503, percentage: { value: 100 } } },
        route: [{ destination: { host: "echo", subset: "v1" } }],
      },
      {
        match: [{ headers: { "x-canary": { exact: "1" } } }],
        route: [{ destination: { host: "echo", subset: "v2" } }],
      },
      {
        route: [{ destination: { host: "echo", subset: "v1" }, weight: 90 }, {
          destination: { host: "echo", subset: "v2" },
          weight: 10,
        }],
      },
    ],
  }], { timeouts: { drain: "30s" } });
  try {
    // No compiler at run time: the nodes run with a PATH that reaches no clang (nor anything).
    const env = { PATH: NO_TOOLS_PATH };
    await withNodesAB(dir, nodeA, nodeB, { env }, async (a, b) => {
      const url = (path: string) => `http://${ip(100)}:80${path}`;
      const get = async (path: string, init: RequestInit = {}) => {
        const r = await fetch(url(path), init);
        return { status: r.status, body: await r.text() };
      };
      // Traffic split 90/10 (loose bounds here; the ±2 % check over 10 000 requests runs in
      // plugins/traffic-split against the real host).
      const counts = { v1: 0, v2: 0 };
      for (let i = 0; i < 200; i++) {
        const r = await get("/public/item");
        assertEquals(r.status, 200, r.body);
        counts[JSON.parse(r.body).version as "v1" | "v2"]++;
      }
      assert(counts.v1 >= 150 && counts.v2 >= 5, `split ${JSON.stringify(counts)}`);
      // The proxy-wasm filter on node B added its header to the request the workload saw.
      const seen = JSON.parse((await get("/public/hdr")).body);
      assertEquals(seen.headers["x-weft-demo"], "wasm");
      // Header match routes to the canary subset only.
      for (let i = 0; i < 10; i++) {
        assertEquals(
          JSON.parse((await get("/public/x", { headers: { "x-canary": "1" } })).body).version,
          "v2",
        );
      }
      // Authorization at L7 on node B, with the verified peer identity.
      const admin = await get("/admin/users");
      assertEquals([admin.status, admin.body], [403, "RBAC: access denied"]);
      const post = await get("/public/item", { method: "POST", body: "x" });
      assertEquals(post.status, 403);
      // Fault injection on node A (abort 100 % for requests matching the fault route).
      const fault = await get("/public/item", { headers: { "x-fault": "1" } });
      assertEquals([fault.status, fault.body], [503, "fault filter abort"]);
      const mB = await scrape(b);
      assert(metricSum(mB, "weft_filter_calls_total") > 0, "filter calls are counted on node B");
      assert(
        metricSum(mB, "weft_add_header_requests_total") > 0,
        "the proxy-wasm plugin's own metric is exposed",
      );
      // Strict codec through a real L7 listener and the L4 bridge: 400 and FIN, also after
      // Connection: close (issue: no FIN within 6 s).
      for (
        const req of [
          "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 45\r\n\r\nhello",
          "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        ]
      ) {
        const r = await rawProbe(ip(100), 80, req, ip(2));
        assertEquals([r.status, r.closed], [400, true], r.text);
      }
      const closeReq = "GET /public/item HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
      const cr = await rawProbe(ip(100), 80, closeReq, ip(2));
      assertEquals([cr.status, cr.closed], [200, true], cr.text);
      const dumpA = await (await fetch(`http://${a.ready.admin}/config_dump`)).json();
      assert(
        dumpA.filters.some((f: { name: string }) => f.name === "echo.default.traffic-split"),
        JSON.stringify(dumpA.filters),
      );
      // Drain with an idle keep-alive HTTP connection: it is closed at once and the node exits
      // long before the 30 s window.
      const idle = connect({ host: ip(100), port: 80, localAddress: ip(2) });
      idle.on("error", () => {});
      await new Promise((r) => idle.once("connect", r));
      const gotResponse = new Promise((r) => idle.once("data", r));
      const idleClosed = new Promise((r) => idle.once("close", r));
      idle.write("GET /public/item HTTP/1.1\r\nHost: x\r\n\r\n");
      await gotResponse;
      const t0 = performance.now();
      a.child.kill("SIGTERM");
      assertEquals((await a.exited).code, 0);
      const drainMs = performance.now() - t0;
      assert(drainMs < 10_000, `drain took ${Math.round(drainMs)} ms with only idle connections`);
      await idleClosed;
      idle.destroy();
      // Node A ended its upstream HBONE streams cleanly before closing its sessions (END_STREAM
      // both ways, then the connection): node B logged no failed connection for them.
      await new Promise((r) => setTimeout(r, 300));
      const failed = b.lines.filter((l) => l.scope === "access" && l.outcome === "error");
      assertEquals(failed.length, 0, JSON.stringify(failed));
    });
  } finally {
    await v1.close();
    await v2.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** One raw request; resolves with the status, the text and whether a FIN came within 5 s. */
async function rawProbe(
  host: string,
  port: number,
  req: string,
  localAddress: string,
): Promise<{ status: number; text: string; closed: boolean }> {
  const s = connect({ host, port, localAddress });
  s.on("error", () => {});
  await new Promise((r) => s.once("connect", r));
  let text = "";
  let closed = false;
  s.on("data", (c: Uint8Array) => (text += new TextDecoder().decode(c)));
  const done = new Promise<void>((r) => {
    s.once("end", () => {
      closed = true;
      r();
    });
    s.once("close", () => r());
  });
  s.write(req);
  let t: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([done, new Promise((r) => (t = setTimeout(r, 5000)))]);
  clearTimeout(t);
  s.destroy();
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text, closed };
}
