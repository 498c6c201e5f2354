/** Per-request cost of the authz hook through the real host (ComponentFilter.onRequest), with a
 * typical config: 10 rules over 3 policies. Run: deno bench -A plugins/authz/authz_bench.ts */
import { parseAllDocuments } from "yaml";
import {
  authorizationPolicyFromIstio,
  authzConfigFromPolicies,
} from "../../src/filters/first_party/mod.ts";
import { loadPlugin, request } from "../_common/plugin_harness.ts";
import { AUTHZ_SOURCES } from "./build.ts";

const POLICIES = `
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
  - from: [{source: {principals: ["*/sa/batch"]}}]`;

const cfg = authzConfigFromPolicies(
  parseAllDocuments(POLICIES).map((d) => authorizationPolicyFromIstio(d.toJS())),
);
const filter = await loadPlugin("authz", AUTHZ_SOURCES, cfg, "authz-bench");
const allowed = request({
  method: "GET",
  path: "/api/items?id=3",
  principal: "spiffe://cluster.local/ns/frontend/sa/web",
  headers: { "content-type": "application/json", "user-agent": "bench", "x-request-id": "1" },
});
const denied = request({
  method: "DELETE",
  path: "/api/items",
  principal: "spiffe://cluster.local/ns/z/sa/q",
});

const empty = await loadPlugin("authz", AUTHZ_SOURCES, { policies: [] }, "authz-bench-empty");

Deno.bench("authz onRequest: no policies (host + hook floor)", { baseline: true }, () => {
  empty.onRequest(allowed);
});
Deno.bench("authz onRequest: allowed by the 9th rule (10 rules)", () => {
  filter.onRequest(allowed);
});
Deno.bench("authz onRequest: denied after all rules (403)", () => {
  filter.onRequest(denied);
});
