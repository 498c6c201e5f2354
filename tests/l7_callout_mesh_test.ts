/**
 * A proxy-wasm callout to a cluster that names a mesh service travels the mesh, across two real
 * weft processes: node A's outbound chain runs the C test filter (built from source), whose
 * `proxy_http_call` to cluster `authz` = {service: authz, port: 80} goes through node A's
 * upstream dialer as an HBONE CONNECT with the calling workload's identity to node B, which
 * authorizes it (an AuthorizationPolicy that admits only that identity) and delivers it to the
 * authz workload. Node B's destination-side telemetry records the callout connection with the
 * caller's principal; a plaintext dial would bypass node B entirely.
 */
import { stringify } from "yaml";
import { assert, assertEquals } from "./support/assert.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { loopbackBlock, NO_TOOLS_PATH, onDenoAndBun } from "./support/weft_proc.ts";
import { nodeAConfig, nodeBConfig, withNodesAB, writeIstio } from "./support/two_nodes.ts";
import { metricSum, scrape } from "./support/mesh.ts";
import { testFilter } from "./support/proxy_wasm_kit.ts";
import { startGrpcEcho } from "./support/grpc_echo.ts";

const PORT = 18080;

for (
  const t of onDenoAndBun(
    (rt) =>
      `callouts: a service cluster is reached through the mesh (HBONE) across two nodes (${rt.toLowerCase()})`,
    (runtime) => calloutAcrossNodes(runtime),
  )
) Deno.test(t);

async function calloutAcrossNodes(runtime: string | undefined): Promise<void> {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-callout-" });
  const echo = await startHttpWorkload(ip(4), PORT, "echo");
  const authz = await startHttpWorkload(ip(3), PORT, "authz");
  const grpc = await startGrpcEcho({ host: ip(5), port: PORT });
  const endpoint = (name: string, address: string) => ({
    workload: name,
    namespace: "default",
    serviceAccount: name,
    address,
  });
  const services = [
    {
      name: "echo",
      namespace: "default",
      ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
      endpoints: [endpoint("echo", ip(4))],
    },
    {
      name: "authz",
      namespace: "default",
      ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
      endpoints: [endpoint("authz", ip(3))],
    },
    {
      name: "grpc",
      namespace: "default",
      ports: [{ port: 80, targetPort: PORT, protocol: "GRPC" }],
      endpoints: [endpoint("grpc", ip(5))],
    },
  ];
  const nodeB = nodeBConfig(dir, [
    { name: "echo", namespace: "default", serviceAccount: "echo", address: ip(4) },
    {
      name: "authz",
      namespace: "default",
      serviceAccount: "authz",
      address: ip(3),
      labels: { app: "authz" },
    },
    { name: "grpc", namespace: "default", serviceAccount: "grpc", address: ip(5) },
  ], services);
  // Node B admits the authz workload only from the caller's identity.
  await writeIstio(dir, {
    "authz.yaml": stringify({
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: "authz-from-sleep", namespace: "default" },
      spec: {
        selector: { matchLabels: { app: "authz" } },
        action: "ALLOW",
        rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/sleep"] } }] }],
      },
    }),
  });
  const plugin = {
    name: "callout",
    url: `file://${await testFilter()}`,
    type: "proxy-wasm",
    direction: "outbound",
    clusters: { authz: { service: "authz", port: 80 }, grpc: { service: "grpc", port: 80 } },
  };
  const nodeA = nodeAConfig(dir, ip, [
    { ...services[0]!, vips: [ip(100)], plugins: [plugin] },
    ...services.slice(1),
  ]);
  try {
    const opts = { env: { PATH: NO_TOOLS_PATH }, runtime, timeoutMs: 30_000 };
    await withNodesAB(dir, nodeA, nodeB, opts, async (_a, b) => {
      const before = metricSum(
        await scrape(b),
        "istio_tcp_connections_opened_total",
        'destination_workload="authz"',
      );
      assertEquals(before, 0);
      const r = await fetch(`http://${ip(100)}:80/cb`, {
        headers: { "x-test": "callout", "x-user": "alice" },
      });
      const text = await r.text();
      assertEquals(r.status, 200, text);
      // The filter put the callout's answer (the authz workload's JSON) on the forwarded request.
      const answer = JSON.parse(JSON.parse(text).headers["x-authz-body"]);
      assertEquals([answer.version, answer.method, answer.path], ["authz", "POST", "/check"]);
      assertEquals(authz.hits(), 1);
      const mB = await scrape(b);
      assert(
        metricSum(
          mB,
          "istio_tcp_connections_opened_total",
          'destination_workload="authz"',
          'source_principal="cluster.local/ns/default/sa/sleep"',
        ) >= 1,
        "node B terminated the callout's HBONE connection with the caller's identity",
      );
      // A gRPC stream (proxy_grpc_stream) to a service cluster takes the same way.
      const g = await fetch(`http://${ip(100)}:80/g`, { headers: { "x-test": "grpc-stream" } });
      const gh = JSON.parse(await g.text()).headers;
      assertEquals([gh["x-grpc-message"], gh["x-grpc-status"]], ["pong:a,pong:b", "0"]);
      assert(
        metricSum(
          await scrape(b),
          "istio_tcp_connections_opened_total",
          'destination_workload="grpc"',
          'source_principal="cluster.local/ns/default/sa/sleep"',
        ) >= 1,
        "the gRPC stream went through node B too",
      );
    });
  } finally {
    await echo.close();
    await authz.close();
    await grpc.close();
    await Deno.remove(dir, { recursive: true });
  }
}
