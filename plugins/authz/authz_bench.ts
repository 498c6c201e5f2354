/** Per-request cost of the authz hook through the real host (ComponentFilter.onRequest), with a
 * typical config: 10 rules over 3 policies. Run: deno bench -A plugins/authz/authz_bench.ts */
import { parseAllDocuments } from "yaml";
import {
  authorizationPolicyFromIstio,
  authzConfigFromPolicies,
} from "../../src/filters/first_party/mod.ts";
import { loadPlugin } from "../_common/plugin_harness.ts";
import { AUTHZ_SOURCES } from "./build.ts";
import {
  BENCH_ALLOWED,
  BENCH_DENIED,
  BENCH_JWT_ALLOWED,
  BENCH_JWT_POLICIES,
  BENCH_POLICIES,
} from "./authz_bench_policies.ts";

const cfg = authzConfigFromPolicies(
  parseAllDocuments(BENCH_POLICIES).map((d) => authorizationPolicyFromIstio(d.toJS())),
);
const filter = await loadPlugin("authz", AUTHZ_SOURCES, cfg, "authz-bench");
const allowed = BENCH_ALLOWED;
const denied = BENCH_DENIED;

const jwtFilter = await loadPlugin(
  "authz",
  AUTHZ_SOURCES,
  authzConfigFromPolicies(
    parseAllDocuments(BENCH_JWT_POLICIES).map((d) => authorizationPolicyFromIstio(d.toJS())),
  ),
  "authz-bench-jwt",
);
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
Deno.bench("authz onRequest: allowed by requestPrincipals + a list claim (verified JWT)", () => {
  jwtFilter.onRequest(BENCH_JWT_ALLOWED);
});
