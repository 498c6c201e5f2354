/** Per-request cost of the traffic-split hook through the real host, with 5 routes (headers,
 * prefix, regex, method) and a 90/10 split. Run: deno bench -A plugins/traffic-split/split_bench.ts */
import { parse } from "yaml";
import { splitConfigFromVirtualService } from "../../src/filters/first_party/mod.ts";
import { loadPlugin, request } from "../_common/plugin_harness.ts";
import { SPLIT_SOURCES } from "./build.ts";

const VS = `
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{uri: {prefix: /static/}}, {uri: {prefix: /assets/}}]
    route: [{destination: {host: cdn}}]
  - match: [{uri: {regex: "/api/v[0-9]+/users/[0-9]+"}, method: {exact: DELETE}}]
    route: [{destination: {host: users, subset: admin}}]
  - match: [{queryParams: {canary: {exact: "1"}}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v2}, weight: 10}`;

const filter = await loadPlugin(
  "traffic-split",
  SPLIT_SOURCES,
  splitConfigFromVirtualService(parse(VS)),
  "split-bench",
);
const last = request({
  method: "GET",
  path: "/api/v1/users/42?x=1",
  headers: { "end-user": "bob" },
});
const first = request({ headers: { "end-user": "jason" } });

Deno.bench("traffic-split onRequest: 5th route, weighted 90/10", () => {
  filter.onRequest(last);
});
Deno.bench("traffic-split onRequest: 1st route (header exact)", () => {
  filter.onRequest(first);
});
