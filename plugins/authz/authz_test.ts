/**
 * authz through the real filter host: Istio AuthorizationPolicy YAML → converter → authz.wasm
 * built from plugins/authz/src → loadComponent + ComponentFilter → onRequest. Cases follow
 * /work/shared/reference/l7-semantics.md §1 (A-items) and §2 (R-items).
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import type { FilterOutcome } from "../../src/core/mod.ts";
import { metrics } from "../../src/core/mod.ts";
import { filterMetrics } from "../../src/filters/mod.ts";
import {
  authorizationPolicyFromIstio,
  authzConfigFromPolicies,
} from "../../src/filters/first_party/mod.ts";
import {
  decide,
  loadPlugin,
  prepare,
  request,
  type RequestSpec,
} from "../_common/plugin_harness.ts";
import { AUTHZ_SOURCES } from "./build.ts";
import { AUTHZ_CASES } from "./authz_cases.ts";

await prepare("authz", AUTHZ_SOURCES);

function configFromYaml(yaml: string): unknown {
  const docs = parseAllDocuments(yaml).map((d) => d.toJS()).filter((d) => d !== null);
  return authzConfigFromPolicies(docs.map(authorizationPolicyFromIstio));
}

function withBatch(counterBatch: number, yaml: string): unknown {
  return { ...(configFromYaml(yaml) as object), counterBatch };
}

function verdict(o: FilterOutcome): string {
  if (o.action === "continue") return "allow";
  if (o.action === "respond") return "deny";
  return `unexpected:${o.action}`;
}

for (const c of AUTHZ_CASES) {
  Deno.test(`authz ${c.id}: ${c.title}`, async () => {
    const filter = await loadPlugin("authz", AUTHZ_SOURCES, configFromYaml(c.policies));
    for (const [i, [spec, want, policyId]] of c.requests.entries()) {
      const out = await decide(filter, request(spec as RequestSpec));
      assert.equal(verdict(out), want, `${c.id} request #${i} ${JSON.stringify(spec)}`);
      if (out.action === "respond") {
        assert.equal(out.response.status, 403);
        assert.equal(
          new TextDecoder().decode(out.response.body as Uint8Array),
          "RBAC: access denied",
        );
        if (policyId !== undefined) {
          assert.equal(out.response.details, `rbac_access_denied_matched_policy[${policyId}]`);
        }
      }
    }
  });
}

Deno.test("authz A28: gRPC requests are denied with grpc-status 7 (trailers-only, HTTP 200)", async () => {
  const filter = await loadPlugin(
    "authz",
    AUTHZ_SOURCES,
    configFromYaml("spec: {}\nmetadata: {name: none}"),
  );
  const out = await decide(
    filter,
    request({
      method: "POST",
      path: "/pkg.Svc/Call",
      headers: { "content-type": "application/grpc+proto" },
    }),
  );
  assert.equal(out.action, "respond");
  if (out.action !== "respond") return;
  assert.equal(out.response.status, 200);
  const h = new Map(out.response.headers.map(([k, v]) => [k, v]));
  assert.equal(h.get("grpc-status"), "7");
  assert.equal(h.get("content-type"), "application/grpc");
  assert.equal(out.response.details, "rbac_access_denied_matched_policy[none]");
});

Deno.test("authz A6/A31: AUDIT marks the request and never changes the decision", async () => {
  const filter = await loadPlugin(
    "authz",
    AUTHZ_SOURCES,
    configFromYaml(`
metadata: {name: audit-get, namespace: default}
spec: {action: AUDIT, rules: [{to: [{operation: {methods: ["GET"]}}]}]}`),
  );
  const get = request({ method: "GET" });
  assert.equal((await decide(filter, get)).action, "continue");
  assert.equal(get.filterState.get("access_log_hint"), "true");
  const post = request({ method: "POST" });
  assert.equal((await decide(filter, post)).action, "continue");
  assert.equal(post.filterState.get("access_log_hint"), undefined);
});

Deno.test("authz A33/A34: dry-run results are recorded without enforcing", async () => {
  const filter = await loadPlugin(
    "authz",
    AUTHZ_SOURCES,
    configFromYaml(`
metadata: {name: dry-deny, namespace: default, annotations: {istio.io/dry-run: "true"}}
spec: {action: DENY, rules: [{to: [{operation: {paths: ["/admin*"]}}]}]}
---
metadata: {name: dry-allow, namespace: default, annotations: {istio.io/dry-run: "true"}}
spec: {action: ALLOW, rules: [{to: [{operation: {methods: ["GET"]}}]}]}`),
  );
  const r = request({ method: "POST", path: "/admin/x" });
  assert.equal((await decide(filter, r)).action, "continue");
  assert.equal(r.filterState.get("istio_dry_run_deny_shadow_engine_result"), "denied");
  assert.equal(
    r.filterState.get("istio_dry_run_deny_shadow_effective_policy_id"),
    "ns[default]-policy[dry-deny]-rule[0]",
  );
  assert.equal(r.filterState.get("istio_dry_run_allow_shadow_engine_result"), "denied");
  const ok = request({ method: "GET", path: "/" });
  await decide(filter, ok);
  assert.equal(ok.filterState.get("istio_dry_run_deny_shadow_engine_result"), "allowed");
  assert.equal(ok.filterState.get("istio_dry_run_allow_shadow_engine_result"), "allowed");
});

Deno.test("authz metrics: allowed/denied counted by policy name via counter-add", async () => {
  const filter = await loadPlugin(
    "authz",
    AUTHZ_SOURCES,
    withBatch(
      1,
      `
metadata: {name: only-get, namespace: ns1}
spec: {rules: [{to: [{operation: {methods: ["GET"]}}]}]}`,
    ),
    "authz-metrics",
  );
  // counterBatch 1: every bump is a host call, so the counts are exact right away
  for (let i = 0; i < 3; i++) await decide(filter, request({ method: "GET" }));
  for (let i = 0; i < 2; i++) await decide(filter, request({ method: "PUT" }));
  const text = metrics.render();
  assert.match(
    text,
    /weft_filter_counter_total\{filter="authz-metrics",name="allowed\/ns\[ns1\]-policy\[only-get\]"\} 3/,
  );
  assert.match(text, /weft_filter_counter_total\{filter="authz-metrics",name="denied\/none"\} 2/);
});

Deno.test("authz config errors reject the generation (CUSTOM, unknown when key, bad CIDR)", async () => {
  assert.throws(
    () => authorizationPolicyFromIstio({ metadata: { name: "c" }, spec: { action: "CUSTOM" } }),
    /spec\.provider\.name: is required with action CUSTOM/,
  );
  const bad = [
    [
      { name: "p", rules: [{ when: [{ key: "request.weird", values: ["x"] }] }] },
      /unknown or unsupported condition request\.weird/,
    ],
    [
      { name: "p", rules: [{ from: [{ ipBlocks: ["10.0.0.0/33"] }] }] },
      /policies\[0\]\.rules\[0\]\.from\[0\]\.ipBlocks\[0\]: not an IP or CIDR/,
    ],
    [{ name: "p", rules: [{ to: [{ ports: ["http"] }] }] }, /ports\[0\]: must be a port 1-65535/],
    [{ name: "p", action: "CUSTOM" }, /CUSTOM/],
    [
      { name: "p", rules: [{ to: [{ paths: ["/a/{**}/{*}"] }] }] },
      /paths\[0\]: \{\*\*\} must be the last operator/,
    ],
    [{ name: "p", rules: [{ to: [{ paths: ["/a/{*}*"] }] }] }, /only \{\*\} and \{\*\*\}/],
  ] as const;
  for (const [policy, re] of bad) {
    await assert.rejects(loadPlugin("authz", AUTHZ_SOURCES, { policies: [policy] }), re);
  }
});

Deno.test("authz metrics: counter bumps are batched in the guest (counterBatch, default 32)", async () => {
  const filter = await loadPlugin(
    "authz",
    AUTHZ_SOURCES,
    configFromYaml("metadata: {name: all, namespace: b}\nspec: {rules: [{}]}"),
    "authz-batch",
  );
  const count = () =>
    filterMetrics.guestCounter.get({ filter: "authz-batch", name: "allowed/ns[b]-policy[all]" });
  for (let i = 0; i < 40; i++) await decide(filter, request());
  assert.equal(count(), 32);
  for (let i = 0; i < 24; i++) await decide(filter, request());
  assert.equal(count(), 64);
});

Deno.test("authz: one instance answers each denial with its own policy, however they interleave (the host reuses repeated local responses)", async () => {
  // 10 denying policies (more than the host remembers per instance) and gRPC denials in between.
  const yaml = Array.from({ length: 10 }, (_, i) =>
    `metadata: {name: d${i}, namespace: default}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/p${i}"]}}]}]`).join("\n---\n");
  const filter = await loadPlugin("authz", AUTHZ_SOURCES, configFromYaml(yaml), "authz-memo");
  for (let round = 0; round < 3; round++) {
    for (const i of [0, 9, 1, 8, 2, 7, 3, 6, 4, 5, 0, 0, 9]) {
      const grpc = (i + round) % 4 === 0;
      const out = await decide(
        filter,
        request({
          path: `/p${i}`,
          headers: grpc ? { "content-type": "application/grpc" } : {},
        }),
      );
      assert.equal(out.action, "respond");
      if (out.action !== "respond") continue;
      const r = out.response;
      assert.equal(
        r.details,
        `rbac_access_denied_matched_policy[ns[default]-policy[d${i}]-rule[0]]`,
      );
      assert.equal(r.status, grpc ? 200 : 403, `/p${i} grpc=${grpc}`);
      assert.equal(new Map(r.headers).get("grpc-status"), grpc ? "7" : undefined);
    }
    const allowed = await decide(filter, request({ path: "/other" }));
    assert.equal(allowed.action, "continue");
  }
});
