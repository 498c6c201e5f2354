/**
 * AuthorizationPolicy CUSTOM over xDS, real processes: `weft control-plane` serves MeshConfig
 * extensionProviders and a CUSTOM policy as istiod shapes them (a shadow RBAC gate with stat prefix
 * `istio_ext_authz_`, then envoy.filters.http.ext_authz, before the DENY/ALLOW RBAC filters); the
 * destination node ACKs, pairs them and enforces them against real authorizers on loopback
 * (tests/support/ext_authorizers.ts). A live edit moves the policy to a gRPC provider.
 */
import { request } from "node:http";
import { assertEquals } from "./support/assert.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { loopbackBlock, type WeftProc } from "./support/weft_proc.ts";
import { onNodeB, sleepOnNodeA, startXdsMesh, type XdsMesh } from "./support/xds_nodes.ts";
import { startGrpcAuthorizer, startHttpAuthorizer } from "./support/ext_authorizers.ts";

function mesh(ip: (n: number) => string, port: number, authz: number, grpc: number, p: string) {
  return {
    trustDomain: "cluster.local",
    extensionProviders: [
      {
        name: "http-authz",
        envoyExtAuthzHttp: {
          service: "127.0.0.1",
          port: authz,
          pathPrefix: "/check",
          headersToUpstreamOnAllow: ["x-user"],
          headersToDownstreamOnDeny: ["x-reason"],
        },
      },
      { name: "grpc-authz", envoyExtAuthzGrpc: { service: "127.0.0.1", port: grpc } },
    ],
    workloads: [sleepOnNodeA(ip), onNodeB("web", ip(3), { app: "web" }, "web")],
    services: [{
      name: "web",
      vips: [ip(100)],
      ports: [{ port: 80, targetPort: port, protocol: "HTTP" }],
    }],
    authorizationPolicies: [
      {
        name: "ext",
        namespace: "default",
        selector: { app: "web" },
        action: "CUSTOM",
        provider: { name: p },
        rules: [{ to: [{ operation: { paths: ["/ext/*"] } }] }],
      },
      {
        name: "deny-forbidden",
        namespace: "default",
        selector: { app: "web" },
        action: "DENY",
        rules: [{ to: [{ operation: { paths: ["/ext/forbidden"] } }] }],
      },
    ],
  };
}

function get(
  ip: (n: number) => string,
  path: string,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: ip(100), port: 80, path, localAddress: ip(2), agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
    req.end();
  });
}

async function eventually(check: () => Promise<boolean>, what: string, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`never: ${what}`);
}

async function nacks(p: WeftProc): Promise<number> {
  const text = await (await fetch(`http://${p.ready.metrics}/metrics`)).text();
  return [...text.matchAll(/^weft_xds_nacks_total\{[^}]*\} (\d+)/gm)]
    .reduce((a, m) => a + Number(m[1]), 0);
}

Deno.test("xds: CUSTOM (shadow RBAC + ext_authz over LDS) enforced on the destination node", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-xds-extauthz-" });
  const probe = Deno.listen({ hostname: ip(3), port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const web = await startHttpWorkload(ip(3), port, "v1");
  const httpAuthz = await startHttpAuthorizer();
  const grpcAuthz = await startGrpcAuthorizer();
  let x: XdsMesh | undefined;
  try {
    const m = (p: string) => mesh(ip, web.port, httpAuthz.port, grpcAuthz.port, p);
    x = await startXdsMesh(dir, m("http-authz"), ["node-a", "node-b"], ["node-a"]);
    const [a, b] = x.nodes as [WeftProc, WeftProc];
    await x.waitReady(a);
    await x.waitReady(b);
    await eventually(async () => (await get(ip, "/ext/deny")).status === 401, "CUSTOM applied");
    const denied = await get(ip, "/ext/deny");
    assertEquals([denied.body, denied.headers["x-reason"], denied.headers["x-other"]], [
      "denied by authz",
      "nope",
      undefined,
    ]);
    const before = httpAuthz.seen.length;
    assertEquals((await get(ip, "/public")).status, 200);
    assertEquals(httpAuthz.seen.length, before); // not matched: never checked
    const ok = await get(ip, "/ext/ok");
    assertEquals(ok.status, 200);
    assertEquals(JSON.parse(ok.body).headers["x-user"], "alice");
    assertEquals(httpAuthz.seen.at(-1)!.url, "/check/ext/ok");
    const forbidden = await get(ip, "/ext/forbidden");
    assertEquals([forbidden.status, forbidden.body], [403, "RBAC: access denied"]);
    // Live edit: the policy now names the gRPC provider.
    await x.writeMesh(m("grpc-authz"));
    await eventually(async () => (await get(ip, "/ext/deny")).status === 418, "gRPC provider");
    const viaGrpc = await get(ip, "/ext/ok");
    assertEquals(JSON.parse(viaGrpc.body).headers["x-user"], "bob");
    assertEquals(
      grpcAuthz.seen.at(-1)!.sourcePrincipal,
      "spiffe://cluster.local/ns/default/sa/sleep",
    );
    assertEquals(await nacks(b), 0);
  } finally {
    await x?.stop();
    await web.close();
    await httpAuthz.close();
    grpcAuthz.close();
    await Deno.remove(dir, { recursive: true });
  }
});
