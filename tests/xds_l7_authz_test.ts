/**
 * Inbound L7 authorization over xDS, real processes: `weft control-plane --config FILE` serves an
 * HTTP service with an ALLOW policy on methods/paths and a DENY policy on a header; the
 * destination node gets the inbound RBAC chain over xDS and answers 403 `RBAC: access denied`
 * as a weft.yaml-configured node does. A live edit applies without restart; a policy the node
 * cannot enforce (connection.sni) is refused by the control plane and the last good chain keeps
 * serving.
 */
import { request } from "node:http";
import { assert, assertEquals } from "./support/assert.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { loopbackBlock, type WeftProc } from "./support/weft_proc.ts";
import { onNodeB, sleepOnNodeA, startXdsMesh, type XdsMesh } from "./support/xds_nodes.ts";

const ALLOW = {
  name: "allow-get",
  namespace: "default",
  selector: { app: "web" },
  action: "ALLOW",
  rules: [{ to: [{ operation: { methods: ["GET"], paths: ["/productpage", "/static/*"] } }] }],
};
const DENY = {
  name: "deny-header",
  namespace: "default",
  selector: { app: "web" },
  action: "DENY",
  rules: [{ when: [{ key: "request.headers[x-block]", values: ["yes"] }] }],
};

function mesh(ip: (n: number) => string, port: number, policies: unknown[]) {
  return {
    trustDomain: "cluster.local",
    workloads: [sleepOnNodeA(ip), onNodeB("web", ip(3), { app: "web" }, "web")],
    services: [{
      name: "web",
      vips: [ip(100)],
      ports: [{ port: 80, targetPort: port, protocol: "HTTP" }],
    }],
    authorizationPolicies: policies,
  };
}

function get(
  ip: (n: number) => string,
  path: string,
  method = "GET",
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: ip(100), port: 80, path, method, headers, localAddress: ip(2), agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
    req.end();
  });
}

/** Polls until `check` holds (xDS pushes are asynchronous). */
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
  return [...text.matchAll(/^weft_xds_nacks_total\{[^}]*Listener[^}]*\} (\d+)/gm)]
    .reduce((a, m) => a + Number(m[1]), 0);
}

Deno.test("xds: inbound L7 authorization (RBAC over LDS) on the destination node", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-xds-l7authz-" });
  const probe = Deno.listen({ hostname: ip(3), port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const web = await startHttpWorkload(ip(3), port, "v1");
  let x: XdsMesh | undefined;
  try {
    x = await startXdsMesh(dir, mesh(ip, web.port, [ALLOW, DENY]), ["node-a", "node-b"], [
      "node-a",
    ]);
    const [a, b] = x.nodes as [WeftProc, WeftProc];
    await x.waitReady(a);
    await x.waitReady(b);
    await eventually(async () => (await get(ip, "/productpage")).status === 200, "allowed GET");
    const other = await get(ip, "/admin");
    assertEquals([other.status, other.body], [403, "RBAC: access denied"]);
    assertEquals((await get(ip, "/productpage", "POST")).status, 403);
    assertEquals((await get(ip, "/static/app.css")).status, 200);
    const denied = await get(ip, "/productpage", "GET", { "x-block": "yes" });
    assertEquals([denied.status, denied.body], [403, "RBAC: access denied"]);
    // Live edit: allow /admin too, no restart.
    const edited = {
      ...ALLOW,
      rules: [{ to: [{ operation: { methods: ["GET"], paths: ["/productpage", "/admin"] } }] }],
    };
    await x.writeMesh(mesh(ip, web.port, [edited, DENY]));
    await eventually(async () => (await get(ip, "/admin")).status === 200, "edit applied");
    assertEquals((await get(ip, "/static/app.css")).status, 403);
    // A condition weft cannot enforce (its filter host has no SNI): the control plane refuses
    // the manifests with the path and keeps serving the last good mesh (a node given such an
    // RBAC filter by another control plane NACKs it: tests/xds_rbac_roundtrip_test.ts).
    const before = await nacks(b);
    const sni = {
      ...DENY,
      rules: [{ when: [{ key: "connection.sni", values: ["evil.example"] }] }],
    };
    await x.writeMesh(mesh(ip, web.port, [edited, sni]));
    const rejected = await x.cp.waitFor(
      (l) => l.msg === "manifests rejected, keeping the last good mesh",
      20_000,
    );
    assert(/connection\.sni.*not enforceable/.test(String(rejected.error)), String(rejected.error));
    assertEquals((await get(ip, "/admin")).status, 200);
    assertEquals((await get(ip, "/productpage", "GET", { "x-block": "yes" })).status, 403);
    assertEquals(await nacks(b), before);
  } finally {
    await x?.stop();
    await web.close();
    await Deno.remove(dir, { recursive: true });
  }
});
