/**
 * RequestAuthentication over xDS, real processes: `weft control-plane` serves Envoy's jwt_authn
 * (istiod's shape) ahead of the RBAC filters on the destination's inbound listener; the node
 * verifies tokens with the same native filter as a weft.yaml node (401 with Envoy's body), and
 * `requestPrincipals` values travel in the RBAC (istio_authn metadata) to the authz plugin.
 */
import { request } from "node:http";
import { Buffer } from "node:buffer";
import { assertEquals } from "./support/assert.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { loopbackBlock, type WeftProc } from "./support/weft_proc.ts";
import { onNodeB, sleepOnNodeA, startXdsMesh, type XdsMesh } from "./support/xds_nodes.ts";

const b64 = (b: Uint8Array | string) => Buffer.from(b).toString("base64url");

function mesh(ip: (n: number) => string, port: number, jwks: string) {
  return {
    trustDomain: "cluster.local",
    workloads: [sleepOnNodeA(ip), onNodeB("web", ip(3), { app: "web" }, "web")],
    services: [{
      name: "web",
      vips: [ip(100)],
      ports: [{ port: 80, targetPort: port, protocol: "HTTP" }],
    }],
    resources: [
      {
        apiVersion: "security.istio.io/v1",
        kind: "RequestAuthentication",
        metadata: { name: "jwt", namespace: "default" },
        spec: {
          selector: { matchLabels: { app: "web" } },
          jwtRules: [{ issuer: "https://xds.example", audiences: ["web"], jwks }],
        },
      },
      {
        apiVersion: "security.istio.io/v1",
        kind: "AuthorizationPolicy",
        metadata: { name: "require-alice", namespace: "default" },
        spec: {
          selector: { matchLabels: { app: "web" } },
          rules: [{ from: [{ source: { requestPrincipals: ["https://xds.example/alice"] } }] }],
        },
      },
    ],
  };
}

function get(ip: (n: number) => string, token?: string) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({
      host: ip(100),
      port: 80,
      path: "/x",
      headers: token ? { authorization: `Bearer ${token}` } : {},
      localAddress: ip(2),
      agent: false,
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
    req.end();
  });
}

Deno.test("xds: RequestAuthentication as jwt_authn before RBAC on the destination node", async () => {
  const kp = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const jwk = { ...(await crypto.subtle.exportKey("jwk", kp.publicKey)), kid: "k" };
  const sign = async (payload: object) => {
    const s = `${b64(JSON.stringify({ alg: "ES256", kid: "k" }))}.${b64(JSON.stringify(payload))}`;
    const sig = await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      kp.privateKey,
      new TextEncoder().encode(s),
    );
    return `${s}.${b64(new Uint8Array(sig))}`;
  };
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-xds-jwt-" });
  const probe = Deno.listen({ hostname: ip(3), port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const web = await startHttpWorkload(ip(3), port, "v1");
  let x: XdsMesh | undefined;
  try {
    const jwks = JSON.stringify({ keys: [jwk] });
    x = await startXdsMesh(dir, mesh(ip, web.port, jwks), ["node-a", "node-b"], ["node-a"]);
    const [a, b] = x.nodes as [WeftProc, WeftProc];
    await x.waitReady(a);
    await x.waitReady(b);
    const now = Math.floor(Date.now() / 1000);
    const tok = (sub: string, extra: object = {}) =>
      sign({ iss: "https://xds.example", sub, aud: "web", exp: now + 300, ...extra });
    const alice = await tok("alice");
    const deadline = Date.now() + 20_000;
    let r = await get(ip, alice).catch(() => ({ status: 0, body: "" }));
    while (r.status !== 200 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 100));
      r = await get(ip, alice).catch(() => ({ status: 0, body: "" }));
    }
    assertEquals(r.status, 200, r.body);
    assertEquals(JSON.parse(r.body).headers.authorization, undefined);
    assertEquals(await get(ip), { status: 403, body: "RBAC: access denied" });
    assertEquals(await get(ip, await tok("bob")), { status: 403, body: "RBAC: access denied" });
    assertEquals(await get(ip, await tok("alice", { exp: now - 120 })), {
      status: 401,
      body: "Jwt is expired",
    });
    assertEquals(await get(ip, await tok("alice", { aud: "other" })), {
      status: 401,
      body: "Audiences in Jwt are not allowed",
    });
  } finally {
    await x?.stop();
    await web.close();
    await Deno.remove(dir, { recursive: true });
  }
});
