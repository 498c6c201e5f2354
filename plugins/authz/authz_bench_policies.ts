import { request } from "../_common/plugin_harness.ts";

/** The benchmarks' typical authz config: 10 rules over 3 policies (Istio AuthorizationPolicy YAML). */
export const BENCH_POLICIES = `
metadata: {name: deny-bad, namespace: default}
spec:
  action: DENY
  rules:
  - from: [{source: {notPrincipals: ["*"]}}]
  - to: [{operation: {paths: ["/admin*"], notMethods: ["GET"]}}]
---
metadata: {name: allow-api, namespace: default}
spec:
  rules:
  - from: [{source: {principals: ["cluster.local/ns/a/sa/x"]}}]
  - from: [{source: {namespaces: ["b", "c"]}}]
    to: [{operation: {methods: ["POST"]}}]
  - to: [{operation: {paths: ["/healthz", "/readyz"]}}]
  - when: [{key: "request.headers[x-tenant]", values: ["t1", "t2"]}]
  - from: [{source: {ipBlocks: ["192.168.0.0/16"]}}]
  - to: [{operation: {hosts: ["*.example.com"], ports: ["9090"]}}]
---
metadata: {name: allow-frontend, namespace: default}
spec:
  rules:
  - from: [{source: {namespaces: ["frontend"]}}]
    to: [{operation: {methods: ["GET", "HEAD"], paths: ["/api/*"]}}]
    when: [{key: destination.port, values: ["8080"]}]
  - from: [{source: {principals: ["*/sa/batch"]}}]
`;

/** Allowed by the 9th rule (allow-frontend's first), after 8 that do not match. */
export const BENCH_ALLOWED = request({
  method: "GET",
  path: "/api/items?id=3",
  principal: "spiffe://cluster.local/ns/frontend/sa/web",
  headers: { "content-type": "application/json", "user-agent": "bench", "x-request-id": "1" },
});

/** Denied after every rule (403). */
export const BENCH_DENIED = request({
  method: "DELETE",
  path: "/api/items",
  principal: "spiffe://cluster.local/ns/z/sa/q",
});

/** A typical edge policy over a verified JWT (RequestAuthentication): requestPrincipals and a
 * claim condition. */
export const BENCH_JWT_POLICIES = `
metadata: {name: require-jwt, namespace: default}
spec:
  rules:
  - from: [{source: {requestPrincipals: ["https://issuer.example/*"]}}]
    to: [{operation: {paths: ["/api/*"]}}]
    when: [{key: "request.auth.claims[groups]", values: ["readers"]}]
`;

/** Allowed by require-jwt: the JWT the host's jwt_authn filter verified. */
export const BENCH_JWT_ALLOWED = request({
  method: "GET",
  path: "/api/items?id=3",
  principal: "spiffe://cluster.local/ns/frontend/sa/web",
  requestAuth: {
    principal: "https://issuer.example/alice",
    audiences: ["api"],
    presenter: undefined,
    claims: { iss: "https://issuer.example", sub: "alice", groups: ["staff", "readers"] },
  },
});
