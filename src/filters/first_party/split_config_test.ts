import assert from "node:assert/strict";
import { serviceFqdn, splitConfigFromVirtualService } from "./split_config.ts";

Deno.test("serviceFqdn: short names resolve in the VirtualService's namespace", () => {
  assert.equal(serviceFqdn("reviews", "ns"), "reviews.ns.svc.cluster.local");
  assert.equal(serviceFqdn("reviews.other", "ns"), "reviews.other.svc.cluster.local");
  assert.equal(serviceFqdn("a.b.svc.cluster.local", "ns"), "a.b.svc.cluster.local");
  assert.equal(serviceFqdn("api.example.com", "ns"), "api.example.com");
});

Deno.test("splitConfigFromVirtualService: routes, default weights, names, lower-case headers", () => {
  const cfg = splitConfigFromVirtualService({
    metadata: { namespace: "ns" },
    spec: {
      http: [
        {
          match: [{ headers: { "X-User": { exact: "a" } }, sourceLabels: { app: "x" } }],
          route: [{ destination: { host: "r", subset: "v1" } }],
        },
        {
          name: "split",
          route: [{ destination: { host: "r" }, weight: 3 }, {
            destination: { host: "s" },
            weight: 1,
          }],
        },
      ],
    },
  }, { hashHeader: "X-Session" });
  assert.deepEqual(cfg.routes[0], {
    name: "http[0]",
    match: [{ headers: { "x-user": { exact: "a" } } }],
    route: [{ service: "r.ns.svc.cluster.local", subset: "v1", weight: 100 }],
    hashHeader: "x-session",
  });
  assert.deepEqual(cfg.routes[1]!.route.map((d) => d.weight), [3, 1]);
  assert.equal(cfg.noMatch, "continue");
});

Deno.test("splitConfigFromVirtualService: problems with paths", () => {
  assert.throws(
    () =>
      splitConfigFromVirtualService({
        spec: {
          http: [{
            route: [{ destination: { host: "a" } }, { destination: {} }],
            match: [{ uri: { suffix: "x" } }],
          }],
        },
      }),
    /spec\.http\[0\]\.route\[1\]\.destination\.host: required.*spec\.http\[0\]\.route: the sum of weights must be > 0.*match\[0\]\.uri: exactly one of exact, prefix, regex/,
  );
});
