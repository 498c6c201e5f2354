/**
 * weft's first-party plugins (authz, fault, traffic-split) built from plugins/<name>/src, loaded
 * by the filter host and chained in front of a real upstream by the HTTP proxy; real HTTP/1.1
 * requests over loopback. Configs come from Istio YAML through src/filters/first_party.
 */
import assert from "node:assert/strict";
import { parse, parseAllDocuments } from "yaml";
import {
  authorizationPolicyFromIstio,
  authzConfigFromPolicies,
} from "../src/filters/first_party/mod.ts";
import { faultConfigFromEnvoy } from "../src/filters/first_party/mod.ts";
import { splitConfigFromVirtualService } from "../src/filters/first_party/mod.ts";
import { filterMetrics } from "../src/filters/mod.ts";
import { loadPlugin, prepare } from "../plugins/_common/plugin_harness.ts";
import { AUTHZ_SOURCES } from "../plugins/authz/build.ts";
import { FAULT_SOURCES } from "../plugins/fault/build.ts";
import { SPLIT_SOURCES } from "../plugins/traffic-split/build.ts";
import { startL7 } from "./support/l7_harness.ts";

await prepare("authz", AUTHZ_SOURCES);
await prepare("fault", FAULT_SOURCES);
await prepare("traffic-split", SPLIT_SOURCES);

const POLICIES = `
metadata: {name: deny-admin, namespace: default}
spec: {action: DENY, rules: [{to: [{operation: {paths: ["/admin*"]}}]}]}
---
metadata: {name: allow-default, namespace: default}
spec: {rules: [{from: [{source: {namespaces: ["default"]}}], to: [{operation: {methods: ["GET"]}}]}]}`;

const VS = `
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v2}, weight: 10}`;

Deno.test("first-party chain over real HTTP: authz → fault → traffic-split → upstream", async () => {
  const authz = await loadPlugin(
    "authz",
    AUTHZ_SOURCES,
    authzConfigFromPolicies(
      parseAllDocuments(POLICIES).map((d) => authorizationPolicyFromIstio(d.toJS())),
    ),
    "e2e-authz",
  );
  const fault = await loadPlugin(
    "fault",
    FAULT_SOURCES,
    faultConfigFromEnvoy({
      abort: { httpStatus: 503, percentage: { numerator: 100 } },
      headers: [{ name: "x-chaos", exactMatch: "on" }],
    }),
    "e2e-fault",
  );
  const split = await loadPlugin(
    "traffic-split",
    SPLIT_SOURCES,
    { ...splitConfigFromVirtualService(parse(VS)), counterBatch: 1 },
    "e2e-split",
  );
  const h = await startL7([authz, fault, split]);
  const client = Deno.createHttpClient({});
  const call = async (path: string, init: RequestInit = {}) => {
    const r = await fetch(`${h.url}${path}`, { ...init, client });
    return { status: r.status, body: await r.text() };
  };
  try {
    assert.deepEqual(await call("/admin/users"), { status: 403, body: "RBAC: access denied" });
    assert.deepEqual(await call("/reviews/1", { method: "POST", body: "x" }), {
      status: 403,
      body: "RBAC: access denied",
    });
    assert.deepEqual(await call("/reviews/1", { headers: { "x-chaos": "on" } }), {
      status: 503,
      body: "fault filter abort",
    });
    const jason = await call("/reviews/1", { headers: { "end-user": "jason" } });
    assert.equal(jason.status, 200);
    assert.deepEqual(h.routes.at(-1), {
      service: "reviews.default.svc.cluster.local",
      subset: "v2",
    });
    // The proxy reuses upstream connections per route, so count choices by the plugin's
    // per-destination counters.
    const n = 100;
    for (let i = 0; i < n; i++) assert.equal((await call(`/reviews/${i}`)).status, 200);
    const R = "reviews.default.svc.cluster.local";
    const count = (name: string) => filterMetrics.guestCounter.get({ filter: "e2e-split", name });
    const v1 = count(`http[1]/${R}#v1`), v2 = count(`http[1]/${R}#v2`);
    assert.equal(v1 + v2, n);
    assert.ok(v1 >= 75 && v1 <= 99, `v1 got ${v1}/${n}`);
    assert.equal(count(`jason/${R}#v2`) + count(`http[0]/${R}#v2`), 1);
    assert.ok(h.routes.some((r) => r?.subset === "v1"));
  } finally {
    client.close();
    await h.close();
  }
});
