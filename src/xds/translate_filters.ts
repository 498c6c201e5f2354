/** FilterRefs the translator synthesises: the traffic split of a route table, and the stand-in
 * for an ECDS config that never came. */
import type { FilterRef } from "../core/mod.ts";
import type { ClusterValue } from "./resources/cluster.ts";
import { FILTER_TYPES } from "./resources/http_filters.ts";
import type { RouteMatch, RouteRule } from "./resources/route.ts";

/** A filter whose ECDS config never came answers 500 with an empty body (Envoy's
 * MissingConfigFilter), expressed as a certain abort for weft's fault filter. */
export function missingConfig(name: string, priority: number): FilterRef {
  return {
    name,
    type: FILTER_TYPES.fault,
    url: undefined,
    sha256: undefined,
    config: {
      abort: { httpStatus: 500, percentage: { numerator: 100, denominator: "HUNDRED" } },
    },
    failPolicy: "FAIL_CLOSE",
    phase: "UNSPECIFIED",
    priority,
  };
}

/** Routes in the traffic-split plugin's own config shape (plugins/traffic-split README):
 * ordered routes, first match wins, weighted `{service, subset}` destinations, 404 on no match
 * (Envoy). A `cluster_header` is a `clusterHeader` destination: the plugin reads Istio's
 * `outbound|<port>|<subset>|<fqdn>` from the header, for this listener's `port`. */
export function trafficSplit(
  rules: readonly RouteRule[],
  clusters: readonly ClusterValue[],
  hostname: string,
  port: number,
  priority: number,
): FilterRef {
  const byName = new Map(clusters.map((c) => [c.name, c]));
  const uri = (m: RouteMatch): Record<string, string> | undefined =>
    m.path !== undefined
      ? { exact: m.path }
      : m.regex !== undefined
      ? { regex: m.regex }
      : m.prefix && m.prefix !== "/"
      ? { prefix: m.prefix }
      : undefined;
  return {
    name: "traffic-split",
    type: FILTER_TYPES.trafficSplit,
    url: undefined,
    sha256: undefined,
    config: {
      noMatch: "notFound",
      ...(rules.some((r) => r.clusters.some((c) => c.clusterHeader)) ? { clusterPort: port } : {}),
      routes: rules.map((r, i) => {
        const u = uri(r.match);
        const mm = r.match;
        const m = {
          ...(u ? { uri: u } : {}),
          ...(mm.ignoreUriCase ? { ignoreUriCase: true } : {}),
          ...(mm.method ? { method: mm.method } : {}),
          ...(mm.authority ? { authority: mm.authority } : {}),
          ...(mm.scheme ? { scheme: mm.scheme } : {}),
          ...(mm.headers ? { headers: mm.headers } : {}),
          ...(mm.withoutHeaders ? { withoutHeaders: mm.withoutHeaders } : {}),
          ...(mm.queryParams ? { queryParams: mm.queryParams } : {}),
        };
        return {
          name: `route-${i}`,
          ...(Object.keys(m).length ? { match: [m] } : {}),
          ...(r.randomValueHeader ? { randomValueHeader: r.randomValueHeader } : {}),
          // A route that answers itself (redirect, direct_response) takes its requests too: it
          // names the service, and the proxy's route policy replies before any upstream.
          route: r.clusters.length === 0
            ? [{ service: hostname, weight: 1 }]
            : r.clusters.map((c) => {
              if (c.clusterHeader) return { clusterHeader: c.clusterHeader, weight: c.weight };
              const cv = byName.get(c.cluster);
              if (!cv) return { ...missingCluster(c.cluster), weight: c.weight };
              return {
                service: cv.hostname,
                ...(cv.subset ? { subset: cv.subset } : {}),
                weight: c.weight,
              };
            }),
        };
      }),
    },
    failPolicy: "FAIL_CLOSE",
    phase: "UNSPECIFIED",
    priority,
  };
}

/** The route choice of a cluster the node does not hold: Istio's `outbound|<port>|<subset>|<fqdn>`
 * names its service and subset, any other name stands for itself; the proxy answers either
 * with 503 NC when the snapshot has no such service or subset (core `missingRoute`). */
function missingCluster(name: string): { service: string; subset?: string } {
  const parts = name.split("|");
  if (parts.length === 4 && parts[3]) {
    return { service: parts[3], ...(parts[2] ? { subset: parts[2] } : {}) };
  }
  return { service: name };
}
