/**
 * AuthorizationPolicy as an attacker probes it, through real weft processes: client → node A
 * (outbound L7) → HBONE mTLS → node B (inbound authz from Istio YAML) → an HTTP workload that
 * echoes the path it got. Path tricks are normalised as Istio's default (BASE) before the policy
 * and the workload see them (https://istio.io/latest/docs/reference/config/security/normalization/),
 * so `/public/../admin`, `/%61dmin`, `\` and absolute-form targets cannot dodge a DENY on
 * `/admin*`; `%00` and a lower-case method get 400. Runs on Deno, and on Bun when installed.
 */
import { connect } from "node:net";
import { stringify } from "yaml";
import { join } from "node:path";
import { assertEquals } from "./support/assert.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import {
  bunPath,
  LISTENERS,
  loopbackBlock,
  NO_TOOLS_PATH,
  startWeft,
  type WeftProc,
} from "./support/weft_proc.ts";

const PORT = 18080;

const POLICIES = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: default}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-sleep, namespace: default}
spec:
  rules:
    - from: [{source: {principals: ["cluster.local/ns/default/sa/sleep"]}}]
      to: [{operation: {methods: ["GET"], notPaths: ["/role*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-role, namespace: default}
spec:
  rules:
    - to: [{operation: {paths: ["/role*"]}}]
      when: [{key: "request.headers[x-role]", values: ["admin"]}]
---
# Attached by targetRefs (ambient's waypoint form): enforced in front of that service only.
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-by-ref, namespace: default}
spec:
  targetRefs: [{kind: Service, group: "", name: echo}]
  action: DENY
  rules: [{to: [{operation: {paths: ["/by-ref*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-other-service, namespace: default}
spec:
  targetRefs: [{kind: Service, group: "", name: other}]
  action: DENY
  rules: [{}]
`;

/** [request line + extra fields, expected status, path the workload saw (200 only)]. */
const PROBES: readonly [string, number, string?][] = [
  ["GET /public/x HTTP/1.1", 200, "/public/x"],
  ["GET /by-ref/x HTTP/1.1", 403],
  ["GET /admin/x HTTP/1.1", 403],
  ["GET /public/../admin/x HTTP/1.1", 403],
  ["GET /public/%2e%2e/admin HTTP/1.1", 403],
  ["GET /%61dmin HTTP/1.1", 403],
  ["GET /public\\..\\admin HTTP/1.1", 403],
  ["GET /./admin HTTP/1.1", 403],
  ["GET /admin?x=1 HTTP/1.1", 403],
  ["GET /admin#frag HTTP/1.1", 403],
  ["GET http://echo.default/admin/x HTTP/1.1", 403],
  ["GET /admin/../public/y HTTP/1.1", 200, "/public/y"],
  ["GET /%70ublic/%7Ea?q=%61 HTTP/1.1", 200, "/public/~a?q=%61"],
  // BASE keeps %2F and //: Istio evaluates and forwards them as sent.
  ["GET /public%2F..%2Fadmin HTTP/1.1", 200, "/public%2F..%2Fadmin"],
  ["GET /ADMIN HTTP/1.1", 200, "/ADMIN"],
  ["GET /x%00y HTTP/1.1", 400],
  ["get /public/x HTTP/1.1", 400],
  ["POST /public/x HTTP/1.1\r\nContent-Length: 0", 403],
  ["GET /role HTTP/1.1\r\nx-role: admin", 200, "/role"],
  ["GET /role HTTP/1.1\r\nx-role: guest", 403],
  // Istio joins repeated headers with "," before matching: "admin,guest" is not "admin".
  ["GET /role HTTP/1.1\r\nx-role: admin\r\nx-role: guest", 403],
];

async function probeAuthz(runtime: string | undefined): Promise<void> {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-authz-probe-" });
  const echo = await startHttpWorkload(ip(3), PORT, "v1");
  const ca = { mode: "auto", stateDir: join(dir, "ca") };
  const workload = {
    name: "echo",
    namespace: "default",
    serviceAccount: "echo",
    address: ip(3),
    labels: { app: "echo" },
  };
  const service = {
    name: "echo",
    namespace: "default",
    ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
    endpoints: [{
      workload: "echo",
      namespace: "default",
      serviceAccount: "echo",
      address: ip(3),
      labels: { app: "echo" },
    }],
  };
  await Deno.mkdir(join(dir, "istio"));
  await Deno.writeTextFile(join(dir, "istio", "policies.yaml"), POLICIES);
  const nodeB = {
    node: { name: "node-b" },
    ca,
    listeners: { ...LISTENERS, captureServiceVips: false },
    workloads: [workload],
    services: [service],
    configDir: join(dir, "istio"),
  };
  const nodeA = {
    node: { name: "node-a", defaultSourceWorkload: "sleep" },
    ca,
    listeners: LISTENERS,
    workloads: [{ name: "sleep", namespace: "default", serviceAccount: "sleep", address: ip(2) }],
    services: [{ ...service, vips: [ip(100)] }],
  };
  await Deno.writeTextFile(join(dir, "a.yaml"), stringify(nodeA));
  await Deno.writeTextFile(join(dir, "b.yaml"), stringify(nodeB));
  const procs: WeftProc[] = [];
  try {
    const opts = {
      env: { PATH: NO_TOOLS_PATH },
      timeoutMs: 60_000,
      ...(runtime ? { runtime } : {}),
    };
    procs.push(await startWeft(["run", "--config", join(dir, "b.yaml")], opts));
    procs.push(await startWeft(["run", "--config", join(dir, "a.yaml")], opts));
    const seen: string[] = [];
    for (const [req, status, path] of PROBES) {
      const r = await rawOnce(
        ip(100),
        80,
        `${req}\r\nHost: echo\r\nConnection: close\r\n\r\n`,
        ip(2),
      );
      const got = r.status === 200 ? JSON.parse(r.body).path : undefined;
      seen.push(`${JSON.stringify(req)} → ${r.status}${got ? ` ${got}` : ""}`);
      if (r.status !== status || (path !== undefined && got !== path)) {
        throw new Error(`${req}: want ${status} ${path ?? ""}\n${seen.join("\n")}\n${r.text}`);
      }
      if (status === 403) assertEquals(r.body, "RBAC: access denied");
    }
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("l7 authz probes: path normalisation, methods, repeated headers (Deno)", async () => {
  await probeAuthz(undefined);
});

Deno.test({
  name: "l7 authz probes: path normalisation, methods, repeated headers (Bun)",
  ignore: bunPath() === undefined,
  fn: async () => await probeAuthz(bunPath()),
});

/** One request on its own connection; the whole response up to the close (5 s at most). */
async function rawOnce(
  host: string,
  port: number,
  req: string,
  localAddress: string,
): Promise<{ status: number; body: string; text: string }> {
  const s = connect({ host, port, localAddress });
  s.on("error", () => {});
  await new Promise((r) => s.once("connect", r));
  let text = "";
  s.on("data", (c: Uint8Array) => (text += new TextDecoder().decode(c)));
  const done = new Promise<void>((r) => s.once("close", () => r()));
  s.write(req);
  let t: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([done, new Promise((r) => (t = setTimeout(r, 5000)))]);
  clearTimeout(t);
  s.destroy();
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  const at = text.indexOf("\r\n\r\n");
  let body = at < 0 ? "" : text.slice(at + 4);
  if (/\r\ntransfer-encoding: *chunked/i.test(text.slice(0, at))) body = dechunk(body);
  return { status, body, text };
}

function dechunk(s: string): string {
  let out = "";
  for (let at = 0;;) {
    const nl = s.indexOf("\r\n", at);
    const n = parseInt(s.slice(at, nl), 16);
    if (!(n > 0)) return out;
    out += s.slice(nl + 2, nl + 2 + n);
    at = nl + 2 + n + 2;
  }
}
