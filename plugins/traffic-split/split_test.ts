/**
 * traffic-split through the real filter host: VirtualService YAML → converter →
 * traffic-split.wasm built from plugins/traffic-split/src → ComponentFilter.onRequest.
 * Cases follow /work/shared/reference/l7-semantics.md §4 (S-items).
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import type { FilterOutcome } from "../../src/core/mod.ts";
import {
  splitConfigFromVirtualService,
  type SplitOptions,
  subsetsFromDestinationRule,
} from "../../src/filters/first_party/mod.ts";
import {
  decide,
  loadPlugin,
  prepare,
  request,
  type RequestSpec,
} from "../_common/plugin_harness.ts";
import { SPLIT_SOURCES } from "./build.ts";

await prepare("traffic-split", SPLIT_SOURCES);

async function splitFilter(vsYaml: string, opts: SplitOptions = {}) {
  return await loadPlugin(
    "traffic-split",
    SPLIT_SOURCES,
    splitConfigFromVirtualService(parse(vsYaml), opts),
  );
}

function target(o: FilterOutcome): string {
  if (o.action === "respond") return `respond:${o.response.status}`;
  if (o.action !== "continue") return `unexpected:${o.action}`;
  if (!o.route) return "default";
  return o.route.subset ? `${o.route.service}#${o.route.subset}` : o.route.service;
}

const R = "reviews.default.svc.cluster.local";

const MATCH_VS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: jason
    match:
    - headers: {end-user: {exact: jason}}
      uri: {prefix: /reviews}
    - queryParams: {tester: {exact: "yes"}}
    route: [{destination: {host: reviews, subset: v2}}]
  - name: regex
    match: [{uri: {regex: "/api/v[0-9]+/(users|items)/[a-z0-9-]{3,8}"}, method: {exact: GET}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - name: exact-nocase
    match: [{uri: {exact: /Health}, ignoreUriCase: true}]
    route: [{destination: {host: reviews.other, subset: v1}}]
  - name: presence
    match: [{headers: {x-canary: {}}, withoutHeaders: {x-debug: {}}}]
    route: [{destination: {host: canary.default.svc.cluster.local}}]
  - name: header-forms
    match:
    - headers: {x-ver: {prefix: "2."}}
    - headers: {x-ver: {regex: "1\\\\.[0-9]+"}}
    route: [{destination: {host: reviews, subset: v4}}]
`;

const MATCH_TABLE: readonly (readonly [RequestSpec, string])[] = [
  // S10: fields AND within a block, blocks OR
  [{ path: "/reviews/1", headers: { "end-user": "jason" } }, `${R}#v2`],
  [{ path: "/other", headers: { "end-user": "jason" } }, "default"],
  [{ path: "/reviews/1", headers: { "end-user": "bob" } }, "default"],
  [{ path: "/anything?tester=yes" }, `${R}#v2`],
  [{ path: "/anything?a=1&tester=yes&b" }, `${R}#v2`],
  [{ path: "/anything?tester=no" }, "default"],
  // S9: ordered, first match wins (jason matches before regex)
  [{ path: "/api/v2/users/abc-12?tester=yes", method: "GET" }, `${R}#v2`],
  // regex is a full match on the path without the query
  [{ path: "/api/v2/users/abc-12", method: "GET" }, `${R}#v3`],
  [{ path: "/api/v10/items/abc?x=1", method: "GET" }, `${R}#v3`],
  [{ path: "/api/v2/users/abc-12", method: "POST" }, "default"],
  [{ path: "/api/v2/users/ab", method: "GET" }, "default"],
  [{ path: "/api/v2/users/abc-12/x", method: "GET" }, "default"],
  [{ path: "/x/api/v2/users/abc", method: "GET" }, "default"],
  [{ path: "/api/v2/orders/abc", method: "GET" }, "default"],
  // exact + ignoreUriCase; short host "reviews.other" = service reviews in namespace other
  [{ path: "/health" }, "reviews.other.svc.cluster.local#v1"],
  [{ path: "/HEALTH?probe=1" }, "reviews.other.svc.cluster.local#v1"],
  [{ path: "/health/x" }, "default"],
  // presence {} and withoutHeaders
  [{ headers: { "x-canary": "" } }, "canary.default.svc.cluster.local"],
  [{ headers: { "x-canary": "1", "x-debug": "1" } }, "default"],
  // header prefix / regex (full match)
  [{ headers: { "x-ver": "2.1" } }, `${R}#v4`],
  [{ headers: { "x-ver": "1.25" } }, `${R}#v4`],
  [{ headers: { "x-ver": "1.2.5" } }, "default"],
];

Deno.test("traffic-split S9/S10: match table (uri exact/prefix/regex, method, headers, query)", async () => {
  const filter = await splitFilter(MATCH_VS);
  for (const [i, [spec, want]] of MATCH_TABLE.entries()) {
    assert.equal(
      target(await decide(filter, request(spec))),
      want,
      `row ${i} ${JSON.stringify(spec)}`,
    );
  }
});

Deno.test("traffic-split: no matching route → host default, or 404 with noMatch: notFound", async () => {
  const vs = `
metadata: {name: r, namespace: default}
spec: {hosts: [reviews], http: [{match: [{uri: {exact: /only}}], route: [{destination: {host: reviews}}]}]}`;
  const cont = await splitFilter(vs);
  assert.equal(target(await decide(cont, request({ path: "/only" }))), R);
  assert.equal(target(await decide(cont, request({ path: "/other" }))), "default");
  const nf = await splitFilter(vs, { noMatch: "notFound" });
  assert.equal(target(await decide(nf, request({ path: "/other" }))), "respond:404");
});

async function shares(vs: string, n: number, spec: () => RequestSpec, opts: SplitOptions = {}) {
  const filter = await splitFilter(vs, opts);
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const t = target(await decide(filter, request(spec())));
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  return counts;
}

const WEIGHTED = `
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v2}, weight: 10}
    - {destination: {host: reviews, subset: v3}, weight: 0}
`;

Deno.test("traffic-split S11: 90/10 over 10 000 requests lands within ±2 %, weight 0 gets none", async () => {
  const n = 10_000;
  const c = await shares(WEIGHTED, n, () => ({ path: "/" }));
  const v1 = (c.get(`${R}#v1`) ?? 0) / n, v2 = (c.get(`${R}#v2`) ?? 0) / n;
  assert.ok(Math.abs(v1 - 0.9) <= 0.02, `v1 share ${v1}`);
  assert.ok(Math.abs(v2 - 0.1) <= 0.02, `v2 share ${v2}`);
  assert.equal(c.get(`${R}#v3`) ?? 0, 0);
  assert.equal(c.size, 2);
});

Deno.test("traffic-split S11/S18: relative weights (sum ≠ 100) and a single destination", async () => {
  const vs = `
metadata: {name: r, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /one}}]
    route: [{destination: {host: reviews, subset: only}}]
  - route: [{destination: {host: a}, weight: 1}, {destination: {host: b}, weight: 3}]`;
  const n = 4000;
  const c = await shares(vs, n, () => ({ path: "/" }));
  const a = (c.get("a.default.svc.cluster.local") ?? 0) / n;
  assert.ok(Math.abs(a - 0.25) <= 0.03, `a share ${a}`);
  const one = await shares(vs, 200, () => ({ path: "/one" }));
  assert.deepEqual([...one.entries()], [[`${R}#only`, 200]]);
});

Deno.test("traffic-split sticky: the same header value always picks the same subset", async () => {
  const n = 2000;
  const sticky = await shares(WEIGHTED, 300, () => ({ headers: { "x-user": "user-42" } }), {
    hashHeader: "X-User",
  });
  assert.equal(sticky.size, 1);
  let i = 0;
  const spread = await shares(WEIGHTED, n, () => ({ headers: { "x-user": `user-${i++}` } }), {
    hashHeader: "x-user",
  });
  const v2 = (spread.get(`${R}#v2`) ?? 0) / n;
  assert.ok(Math.abs(v2 - 0.1) <= 0.03, `hashed v2 share ${v2}`);
  // without the header the choice falls back to random
  const fallback = await shares(WEIGHTED, n, () => ({}), { hashHeader: "x-user" });
  assert.equal(fallback.size, 2);
});

Deno.test("traffic-split config errors reject the generation with the path", async () => {
  const bad: readonly [unknown, RegExp][] = [
    [
      { routes: [{ match: [{ uri: { regex: "(a" } }], route: [{ service: "s" }] }] },
      /routes\[0\]\.match\[0\]\.uri\.regex: missing \)/,
    ],
    [
      { routes: [{ match: [{ uri: { regex: "a(?=b)" } }], route: [{ service: "s" }] }] },
      /unsupported group/,
    ],
    [{ routes: [{ route: [] }] }, /routes\[0\]\.route: needs at least one destination/],
    [
      { routes: [{ route: [{ service: "a", weight: 0 }, { service: "b", weight: 0 }] }] },
      /sum of weights must be > 0/,
    ],
    [{ routes: [{ route: [{ service: "a" }], bogus: 1 }] }, /routes\[0\]: unknown field bogus/],
  ];
  for (const [cfg, re] of bad) {
    await assert.rejects(loadPlugin("traffic-split", SPLIT_SOURCES, cfg), re);
  }
  assert.throws(
    () =>
      splitConfigFromVirtualService(
        parse("metadata: {name: r}\nspec: {hosts: [r], http: [{redirect: {uri: /x}}]}"),
      ),
    /spec\.http\[0\]\.redirect: not supported/,
  );
});

Deno.test("traffic-split S16: DestinationRule subsets become snapshot Subsets", () => {
  const dr = parse(`
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2, track: canary}}`);
  assert.deepEqual(subsetsFromDestinationRule(dr), [
    { name: "v1", labels: { version: "v1" } },
    { name: "v2", labels: { version: "v2", track: "canary" } },
  ]);
});

Deno.test("traffic-split: Envoy cluster_header (Istio cluster names of the listener's port)", async () => {
  const f = await loadPlugin("traffic-split", SPLIT_SOURCES, {
    clusterPort: 80,
    routes: [{ route: [{ clusterHeader: "X-Cluster" }] }],
  });
  const pick = async (v?: string) =>
    target(await decide(f, request({ headers: v === undefined ? {} : { "x-cluster": v } })));
  assert.equal(await pick(`outbound|80|v2|${R}`), `${R}#v2`);
  assert.equal(await pick(`outbound|80||${R}`), R);
  // No cluster the route choice could name: the host answers 503 NC for it.
  for (const v of [undefined, "", R, `outbound|81|v2|${R}`, `inbound|80|v2|${R}`, "a|b|c|d|e"]) {
    assert.equal(await pick(v), "(no cluster)", String(v));
  }
});

Deno.test("traffic-split: Envoy random_value_specifier header (value % total weight)", async () => {
  const f = await loadPlugin("traffic-split", SPLIT_SOURCES, {
    routes: [{
      randomValueHeader: "x-rand",
      route: [{ service: "a", weight: 3 }, { clusterHeader: "x-c", weight: 2 }],
    }],
  });
  const pick = async (headers: Record<string, string>) =>
    target(await decide(f, request({ headers })));
  const c = `outbound|0|v1|${R}`;
  const table: [string, string][] = [
    ["0", "a"],
    ["2", "a"],
    [" +3 ", `${R}#v1`],
    ["9", `${R}#v1`],
    ["10", "a"],
    [
      "14",
      `${R}#v1`,
    ],
  ];
  for (const [v, want] of table) assert.equal(await pick({ "x-rand": v, "x-c": c }), want, v);
  // An invalid value (sign, junk, overflow) falls back to a random draw: both get picked.
  for (const v of ["-1", "1x", "18446744073709551616"]) {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(await pick({ "x-rand": v, "x-c": c }));
    assert.equal(seen.size, 2, v);
  }
  await assert.rejects(
    loadPlugin("traffic-split", SPLIT_SOURCES, {
      routes: [{ route: [{ clusterHeader: "x", service: "a" }] }],
    }),
    /clusterHeader: takes no service or subset/,
  );
});
