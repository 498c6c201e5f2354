import assert from "node:assert/strict";
import { hostFqdn } from "../../istio/mod.ts";
import { splitConfigFromVirtualService, subsetsFromDestinationRule } from "./split_config.ts";

Deno.test("hostFqdn: short names resolve in the VirtualService's namespace", () => {
  assert.equal(hostFqdn("reviews", "ns"), "reviews.ns.svc.cluster.local");
  assert.equal(hostFqdn("reviews.other", "ns"), "reviews.other.svc.cluster.local");
  assert.equal(hostFqdn("a.b.svc.cluster.local", "ns"), "a.b.svc.cluster.local");
  assert.equal(hostFqdn("api.example.com", "ns"), "api.example.com");
});

Deno.test("splitConfigFromVirtualService: routes, default weights, names, lower-case headers", () => {
  const cfg = splitConfigFromVirtualService({
    metadata: { name: "r", namespace: "ns" },
    spec: {
      hosts: ["r"],
      http: [
        {
          match: [{ headers: { "X-User": { exact: "a" } }, queryParams: { Tag: {} } }],
          route: [{ destination: { host: "r", subset: "v1" } }],
        },
        {
          name: "split",
          route: [{ destination: { host: "r" }, weight: 3 }, {
            destination: { host: "s.other" },
            weight: 1,
          }],
        },
      ],
    },
  }, { hashHeader: "X-Session" });
  assert.deepEqual(cfg.routes[0], {
    name: "http[0]",
    // Query parameter names keep their case; the plugin has no presence test: any value.
    match: [{ headers: { "x-user": { exact: "a" } }, queryParams: { Tag: { regex: ".*" } } }],
    route: [{ service: "r.ns.svc.cluster.local", subset: "v1", weight: 100 }],
    hashHeader: "x-session",
  });
  assert.deepEqual(cfg.routes[1]!.route, [
    { service: "r.ns.svc.cluster.local", weight: 3 },
    { service: "s.other.svc.cluster.local", weight: 1 },
  ]);
  assert.equal(cfg.noMatch, "continue");
});

Deno.test("splitConfigFromVirtualService: src/istio's problems, with paths", () => {
  assert.throws(
    () =>
      splitConfigFromVirtualService({
        metadata: { name: "r" },
        spec: {
          hosts: ["r"],
          http: [{
            route: [{ destination: { host: "a" } }, { destination: {} }],
            match: [{ uri: { suffix: "x" } }],
          }],
        },
      }),
    /VirtualService default\/r: .*spec\.http\[0\]\.route\[1\]\.destination\.host: is required.*spec\.http\[0\]\.route: weights sum to 0.*spec\.http\[0\]\.match\[0\]\.uri\.suffix/,
  );
});

Deno.test("subsetsFromDestinationRule: through src/istio's parser", () => {
  const dr = {
    metadata: { name: "r" },
    spec: { host: "r", subsets: [{ name: "v1", labels: { version: "v1" } }] },
  };
  assert.deepEqual(subsetsFromDestinationRule(dr), [{ name: "v1", labels: { version: "v1" } }]);
  assert.throws(
    () => subsetsFromDestinationRule({ metadata: { name: "r" }, spec: { host: "r", x: 1 } }),
    /spec\.x/,
  );
});
