/**
 * AuthorizationPolicy as an attacker probes it, through real weft processes: client → node A
 * (outbound L7) → HBONE mTLS → node B (inbound authz from Istio YAML) → an HTTP workload that
 * echoes the path it got. Path tricks are normalised as Istio's default (BASE) before the policy
 * and the workload see them (https://istio.io/latest/docs/reference/config/security/normalization/),
 * so `/public/../admin`, `/%61dmin`, `\` and absolute-form targets cannot dodge a DENY on
 * `/admin*`; `%00` and a lower-case method get 400. Runs on Deno, and on Bun when installed.
 */
import http2 from "node:http2";
import { parseAllDocuments } from "yaml";
import { assertEquals } from "./support/assert.ts";
import {
  authorizationPolicyFromIstio,
  authzConfigFromPolicies,
} from "../src/filters/first_party/mod.ts";
import { loadPlugin, prepare } from "../plugins/_common/plugin_harness.ts";
import { AUTHZ_SOURCES } from "../plugins/authz/build.ts";
import { startL7 } from "./support/l7_harness.ts";
import { closeSession, h2Call } from "./support/h2c_client.ts";
import { bunPath } from "./support/weft_proc.ts";
import { withTwoNodes } from "./support/two_node_http.ts";

await prepare("authz", AUTHZ_SOURCES);

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
  ["GET http://x@echo.default/public/x HTTP/1.1", 400],
  ["GET /admin/../public/y HTTP/1.1", 200, "/public/y"],
  ["GET /%70ublic/%7Ea?q=%61 HTTP/1.1", 200, "/public/~a?q=%61"],
  // BASE keeps %2F and //: Istio evaluates and forwards them as sent.
  ["GET /public%2F..%2Fadmin HTTP/1.1", 200, "/public%2F..%2Fadmin"],
  ["GET /ADMIN HTTP/1.1", 200, "/ADMIN"],
  ["GET /x%00y HTTP/1.1", 400],
  ["get /public/x HTTP/1.1", 400],
  ["GET admin/x HTTP/1.1", 400],
  ["POST /public/x HTTP/1.1\r\nContent-Length: 0", 403],
  ["GET /role HTTP/1.1\r\nx-role: admin", 200, "/role"],
  ["GET /role HTTP/1.1\r\nx-role: guest", 403],
  // Istio joins repeated headers with "," before matching: "admin,guest" is not "admin".
  ["GET /role HTTP/1.1\r\nx-role: admin\r\nx-role: guest", 403],
];

async function probeAuthz(runtime: string | undefined): Promise<void> {
  await withTwoNodes({ runtime, istio: POLICIES }, async ({ send }) => {
    const seen: string[] = [];
    for (const [req, status, path] of PROBES) {
      const r = await send(req);
      const got = r.status === 200 ? JSON.parse(r.body).path : undefined;
      seen.push(`${JSON.stringify(req)} → ${r.status}${got ? ` ${got}` : ""}`);
      if (r.status !== status || (path !== undefined && got !== path)) {
        throw new Error(`${req}: want ${status} ${path ?? ""}\n${seen.join("\n")}\n${r.text}`);
      }
      if (status === 403) assertEquals(r.body, "RBAC: access denied");
    }
  });
}

Deno.test("l7 authz probes: path normalisation, methods, repeated headers (Deno)", async () => {
  await probeAuthz(undefined);
});

Deno.test({
  name: "l7 authz probes: path normalisation, methods, repeated headers (Bun)",
  ignore: bunPath() === undefined,
  fn: async () => await probeAuthz(bunPath()),
});

Deno.test("l7 authz probes over h2c: the same normalisation before the authz plugin", async () => {
  const authz = await loadPlugin(
    "authz",
    AUTHZ_SOURCES,
    authzConfigFromPolicies(
      // deny-admin only: this harness's client has no identity.
      parseAllDocuments(POLICIES).slice(0, 1).map((d) => authorizationPolicyFromIstio(d.toJS())),
    ),
    "h2c-authz",
  );
  const h = await startL7([authz]);
  const s = http2.connect(h.url);
  try {
    const call = (path: string, method = "GET") => h2Call(s, path, { method });
    const cases: [string, string, number, string?][] = [
      ["/public/x", "GET", 200, "/public/x"],
      ["/public/../admin/x", "GET", 403],
      ["/%61dmin", "GET", 403],
      ["/public\\..\\admin", "GET", 403],
      ["/admin/../public/%7Ey?a=%61", "GET", 200, "/public/~y?a=%61"],
      ["/x%00", "GET", 400],
      ["/public/x", "get", 400],
    ];
    for (const [path, method, status, url] of cases) {
      const r = await call(path, method);
      assertEquals(r.status, status, `${method} ${path}: ${r.body}`);
      if (url) assertEquals(JSON.parse(r.body).url, url);
    }
  } finally {
    await closeSession(s);
    await h.close();
  }
});
