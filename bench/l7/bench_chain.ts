/**
 * The bench chain of the three first-party filters (authz, fault, traffic-split) as
 * bench/l7/l7_proxy_server.ts and bench/l7/chain_cost.ts run it: authz with 3 policies, 10 rules
 * (the request is allowed by a later rule), fault with a header-gated delay that does not match,
 * traffic-split with 5 routes (the request takes the weighted default), loaded from their prebuilt
 * wasm (plugins/<name>/build, `deno task plugins`) through the real filter host.
 */
import { readFileSync } from "node:fs";
import { load, loadAll } from "js-yaml";
import type { HttpFilter } from "../../src/core/mod.ts";
import {
  authorizationPolicyFromIstio,
  authzConfigFromPolicies,
  ComponentFilter,
  loadComponent,
  splitConfigFromVirtualService,
} from "../../src/filters/mod.ts";
import { BENCH_POLICIES } from "../../plugins/authz/authz_bench_policies.ts";

export const BENCH_FILTERS = ["authz", "fault", "traffic-split"] as const;

// The benchmarks' 10 rules over 3 policies, and one more ALLOW policy for the bench's peer,
// TEST_PEER (spiffe://cluster.local/ns/default/sa/client), which none of the others allows; it
// is reached after every rule of the three (deny-bad does not match it).
const POLICIES = `${BENCH_POLICIES}---
metadata: {name: allow-bench-client, namespace: default}
spec:
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/client"]}}]
    to: [{operation: {methods: ["GET", "HEAD"], paths: ["/hello", "/warmup"]}}]`;

const VS = `
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: echo, subset: v2}}]
  - match: [{uri: {prefix: /static/}}, {uri: {prefix: /assets/}}]
    route: [{destination: {host: cdn}}]
  - match: [{uri: {regex: "/api/v[0-9]+/users/[0-9]+"}, method: {exact: DELETE}}]
    route: [{destination: {host: users, subset: admin}}]
  - match: [{queryParams: {canary: {exact: "1"}}}]
    route: [{destination: {host: echo, subset: v3}}]
  - route:
    - {destination: {host: echo, subset: v1}, weight: 90}
    - {destination: {host: echo, subset: v2}, weight: 10}`;

export async function firstParty(name: string, config: unknown): Promise<HttpFilter> {
  const file = new URL(`../../plugins/${name}/build/${name}.wasm`, import.meta.url).pathname;
  const component = await loadComponent(new Uint8Array(readFileSync(file)), {
    maxMemoryBytes: 16 * 1024 * 1024,
  });
  return await ComponentFilter.create(`bench-${name}`, "FAIL_CLOSE", component, config);
}

/** The chain's filters in run order; `names`: only those (to see what each costs). */
export async function benchFilters(
  names: readonly string[] = BENCH_FILTERS,
): Promise<HttpFilter[]> {
  const wanted = (name: string): boolean => names.includes(name);
  const filters: HttpFilter[] = [];
  if (wanted("authz")) {
    filters.push(
      await firstParty(
        "authz",
        authzConfigFromPolicies(loadAll(POLICIES).map((d) => authorizationPolicyFromIstio(d))),
      ),
    );
  }
  if (wanted("fault")) {
    filters.push(
      await firstParty("fault", {
        delay: { fixedDelayMs: 100, percentage: { numerator: 10 } },
        headers: [{ name: "x-chaos", exact: "on" }],
        maxActiveFaults: 100,
      }),
    );
  }
  if (wanted("traffic-split")) {
    filters.push(await firstParty("traffic-split", splitConfigFromVirtualService(load(VS))));
  }
  return filters;
}
