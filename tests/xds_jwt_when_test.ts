/**
 * JWT `when` keys over xDS, real processes: `weft control-plane` writes
 * `request.auth.audiences`, `request.auth.presenter` and `request.auth.claims[..]` (nested) as
 * istiod does (RBAC metadata matchers on jwt_authn's `payload` metadata); the destination node
 * reads them back into the authz plugin and enforces each (allowed and denied), on Deno and Bun.
 */
import { request } from "node:http";
import { Buffer } from "node:buffer";
import { assertEquals } from "./support/assert.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { bunPath, loopbackBlock, type WeftProc } from "./support/weft_proc.ts";
import { onNodeB, sleepOnNodeA, startXdsMesh, type XdsMesh } from "./support/xds_nodes.ts";

const b64 = (b: Uint8Array | string) => Buffer.from(b).toString("base64url");
const ISS = "https://when.example";

function mesh(ip: (n: number) => string, port: number, jwks: string) {
  const policy = (name: string, action: string, when: unknown[]) => ({
    apiVersion: "security.istio.io/v1",
    kind: "AuthorizationPolicy",
    metadata: { name, namespace: "default" },
    spec: { selector: { matchLabels: { app: "web" } }, action, rules: [{ when }] },
  });
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
          jwtRules: [{ issuer: ISS, audiences: ["web", "other"], jwks }],
        },
      },
      policy("allow", "ALLOW", [
        { key: "request.auth.audiences", values: ["web"] },
        { key: "request.auth.presenter", values: ["app*"] },
        { key: "request.auth.claims[groups]", values: ["admin"] },
        { key: "request.auth.claims[org][team]", values: ["red", "green"] },
        // istiod's jwt_authn splits `scope` on spaces (normalize_payload_in_metadata).
        { key: "request.auth.claims[scope]", values: ["write"] },
      ]),
      policy("deny", "DENY", [{ key: "request.auth.claims[level]", values: ["banned"] }]),
    ],
  };
}

function get(ip: (n: number) => string, token: string) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({
      host: ip(100),
      port: 80,
      path: "/x",
      headers: { authorization: `Bearer ${token}` },
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

async function signer(): Promise<{ jwks: string; sign: (p: object) => Promise<string> }> {
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
  return { jwks: JSON.stringify({ keys: [jwk] }), sign };
}

async function run(runtime: string | undefined): Promise<void> {
  const { jwks, sign } = await signer();
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-xds-jwt-when-" });
  const probe = Deno.listen({ hostname: ip(3), port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const web = await startHttpWorkload(ip(3), port, "v1");
  let x: XdsMesh | undefined;
  try {
    x = await startXdsMesh(
      dir,
      mesh(ip, web.port, jwks),
      ["node-a", "node-b"],
      ["node-a"],
      undefined,
      runtime ? { nodeRuntime: runtime } : {},
    );
    const [a, b] = x.nodes as [WeftProc, WeftProc];
    await x.waitReady(a);
    await x.waitReady(b);
    const now = Math.floor(Date.now() / 1000);
    const good = {
      iss: ISS,
      sub: "alice",
      aud: ["web", "x"],
      azp: "app-1",
      groups: ["dev", "admin"],
      org: { team: "red" },
      scope: "read  write",
      exp: now + 300,
    };
    const tok = (extra: object = {}) => sign({ ...good, ...extra });
    const ok = await tok();
    const deadline = Date.now() + 20_000;
    let r = await get(ip, ok).catch(() => ({ status: 0, body: "" }));
    while (r.status !== 200 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 100));
      r = await get(ip, ok).catch(() => ({ status: 0, body: "" }));
    }
    assertEquals(r.status, 200, r.body);
    const denied = { status: 403, body: "RBAC: access denied" };
    // Each key allows its other forms (a string aud, a string claim, another listed value) ...
    assertEquals((await get(ip, await tok({ aud: "web", groups: "admin" }))).status, 200);
    assertEquals((await get(ip, await tok({ org: { team: "green" } }))).status, 200);
    // ... and denies when it does not hold.
    assertEquals(await get(ip, await tok({ aud: "other" })), denied);
    assertEquals(await get(ip, await tok({ azp: "web-1" })), denied);
    assertEquals(await get(ip, await tok({ azp: undefined })), denied);
    assertEquals(await get(ip, await tok({ groups: ["dev"] })), denied);
    assertEquals(await get(ip, await tok({ groups: 7 })), denied);
    assertEquals(await get(ip, await tok({ org: { team: "blue" } })), denied);
    assertEquals(await get(ip, await tok({ org: "red" })), denied);
    assertEquals(await get(ip, await tok({ scope: "read" })), denied);
    assertEquals(await get(ip, await tok({ scope: "readwrite" })), denied);
    assertEquals((await get(ip, await tok({ scope: ["write"] }))).status, 200);
    assertEquals(await get(ip, await tok({ level: "banned" })), denied);
    assertEquals((await get(ip, await tok({ level: ["ok"] }))).status, 200);
    assertEquals(await get(ip, await tok({ level: ["ok", "banned"] })), denied);
  } finally {
    await x?.stop();
    await web.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("xds: JWT when keys (audiences, presenter, claims) enforced by a Deno node", () =>
  run(undefined));

Deno.test({
  name: "xds: JWT when keys (audiences, presenter, claims) enforced by a Bun node",
  ignore: bunPath() === undefined,
  fn: () => run(bunPath()),
});
