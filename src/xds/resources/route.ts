/** RDS: RouteConfiguration → virtual hosts with ordered rules, each a weighted cluster split. */
import type { Any } from "@bufbuild/protobuf/wkt";
import { type RouteConfiguration, RouteConfigurationSchema, unpackAs } from "../proto.ts";
import type { Route, VirtualHost } from "../gen/envoy/config/route/v3/route_components_pb.ts";
import { ROUTE } from "../type_urls.ts";
import { type Decoded, invalid, type ResourceType } from "./resource_type.ts";

export interface RouteMatch {
  readonly prefix?: string;
  readonly path?: string;
  readonly regex?: string;
}

export interface WeightedCluster {
  readonly cluster: string;
  readonly weight: number;
}

export interface RouteRule {
  readonly match: RouteMatch;
  readonly clusters: readonly WeightedCluster[];
}

export interface VirtualHostValue {
  readonly name: string;
  readonly domains: readonly string[];
  readonly rules: readonly RouteRule[];
}

export interface RouteValue {
  readonly name: string;
  readonly virtualHosts: readonly VirtualHostValue[];
}

function matchOf(r: Route, what: string): RouteMatch {
  const p = r.match?.pathSpecifier;
  switch (p?.case) {
    case "prefix":
      return { prefix: p.value };
    case "path":
      return { path: p.value };
    case "safeRegex":
      return { regex: p.value.regex };
    default:
      throw invalid(what, `route match ${p?.case ?? "(none)"} is not supported`);
  }
}

function ruleOf(r: Route, what: string): RouteRule | undefined {
  if (r.action.case !== "route") return undefined; // redirect/direct_response: not routed by weft
  const spec = r.action.value.clusterSpecifier;
  if (spec.case === "cluster") {
    if (!spec.value) throw invalid(what, "route cluster name is empty");
    return { match: matchOf(r, what), clusters: [{ cluster: spec.value, weight: 1 }] };
  }
  if (spec.case === "weightedClusters") {
    const cs = spec.value.clusters.map((c) => {
      if (!c.name) throw invalid(what, "weighted cluster without a name (cluster_header unsupported)");
      return { cluster: c.name, weight: c.weight ?? 0 };
    });
    const sum = cs.reduce((a, c) => a + c.weight, 0);
    if (cs.length === 0 || sum <= 0 || sum > 0xffffffff) {
      throw invalid(what, `weighted_clusters weights must sum to 1..${0xffffffff}, got ${sum}`);
    }
    return { match: matchOf(r, what), clusters: cs };
  }
  throw invalid(what, `route action ${spec.case ?? "(none)"} is not supported`);
}

function vhostOf(v: VirtualHost, what: string): VirtualHostValue {
  if (v.domains.length === 0) throw invalid(what, `virtual host ${v.name} has no domains`);
  const rules: RouteRule[] = [];
  for (const r of v.routes) {
    const rule = ruleOf(r, what);
    if (rule) rules.push(rule);
  }
  return { name: v.name, domains: [...v.domains], rules };
}

export function routeValue(rc: RouteConfiguration, what: string): RouteValue {
  const seen = new Set<string>();
  for (const v of rc.virtualHosts) {
    for (const d of v.domains) {
      if (seen.has(d)) throw invalid(what, `domain ${d} appears in two virtual hosts`);
      seen.add(d);
    }
  }
  return { name: rc.name, virtualHosts: rc.virtualHosts.map((v) => vhostOf(v, what)) };
}

export const routeType: ResourceType<RouteValue> = {
  typeUrl: ROUTE,
  decode(any: Any): Decoded<RouteValue> {
    const rc = unpackAs(any, RouteConfigurationSchema);
    if (!rc.name) throw invalid("route configuration", "name is empty");
    return { name: rc.name, value: routeValue(rc, `route configuration ${rc.name}`) };
  },
  // Routes are not warmed (xds.md §8): their clusters are the listener's dependencies.
  deps: () => [],
};

export function routeClusters(v: RouteValue): string[] {
  const out = new Set<string>();
  for (const vh of v.virtualHosts) {
    for (const r of vh.rules) for (const c of r.clusters) out.add(c.cluster);
  }
  return [...out];
}
