/** RouteAction `cluster_header`, WeightedCluster `cluster_header` and
 * `random_value_specifier.header_name` → the route rule and the traffic-split config. */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { RouteConfigurationSchema } from "../proto.ts";
import { routeClusters, routeType, type RouteValue } from "./route.ts";
import { trafficSplit } from "../translate_filters.ts";

const decode = (action: unknown): RouteValue => {
  const rc = create(RouteConfigurationSchema, {
    name: "r",
    virtualHosts: [{
      name: "v",
      domains: ["*"],
      routes: [{ match: { pathSpecifier: { case: "prefix", value: "/" } }, action } as never],
    }],
  });
  return routeType.decode(anyPack(RouteConfigurationSchema, rc)).value;
};

Deno.test("xds route: cluster_header and weighted header choices reach the split config", () => {
  const one = decode({
    case: "route",
    value: { clusterSpecifier: { case: "clusterHeader", value: "X-Cluster" } },
  });
  const rule = one.virtualHosts[0]!.rules[0]!;
  assert.deepEqual(rule.clusters, [{ cluster: "", weight: 1, clusterHeader: "x-cluster" }]);
  assert.deepEqual(routeClusters(one), []);
  const w = decode({
    case: "route",
    value: {
      clusterSpecifier: {
        case: "weightedClusters",
        value: {
          clusters: [{ name: "outbound|80|v1|h", weight: 3 }, { clusterHeader: "x-c", weight: 1 }],
          randomValueSpecifier: { case: "headerName", value: "X-Rand" },
        },
      },
    },
  });
  const wr = w.virtualHosts[0]!.rules[0]!;
  assert.equal(wr.randomValueHeader, "x-rand");
  assert.deepEqual(routeClusters(w), ["outbound|80|v1|h"]);
  const cfg = trafficSplit([wr], [], "h", 80, 0).config as Record<string, unknown>;
  assert.equal(cfg.clusterPort, 80);
  assert.deepEqual((cfg.routes as unknown[])[0], {
    name: "route-0",
    randomValueHeader: "x-rand",
    route: [{ service: "h", subset: "v1", weight: 3 }, { clusterHeader: "x-c", weight: 1 }],
  });
});

Deno.test("xds route: cluster_header entries Envoy would reject or weft cannot apply are NACKed", () => {
  const weighted = (c: Record<string, unknown>) => ({
    case: "route",
    value: {
      clusterSpecifier: {
        case: "weightedClusters",
        value: { clusters: [{ name: "a", weight: 1 }, { weight: 1, ...c }] },
      },
    },
  });
  for (
    const [action, re] of [
      [weighted({ name: "b", clusterHeader: "x" }), /exactly one of name and cluster_header/],
      [weighted({}), /exactly one of name and cluster_header/],
      [weighted({ clusterHeader: "x", requestHeadersToRemove: ["y"] }), /header operations/],
      [weighted({ clusterHeader: "bad header" }), /not a valid HTTP header name/],
      [{
        case: "route",
        value: { clusterSpecifier: { case: "clusterHeader", value: ":authority" } },
      }, /not a valid HTTP header name/],
    ] as const
  ) assert.throws(() => decode(action), re);
});
