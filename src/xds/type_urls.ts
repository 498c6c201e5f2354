/** The xDS type URLs weft speaks (shared/reference/xds.md §2). */
export const LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener";
export const ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
export const CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
export const ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
export const EXTENSION_CONFIG = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
export const ADDRESS = "type.googleapis.com/istio.workload.Address";
export const AUTHORIZATION = "type.googleapis.com/istio.security.Authorization";

/** Make-before-break order: subscribe and push in this order (xds.md §8, §9.6). */
export const TYPE_ORDER: readonly string[] = [
  CLUSTER,
  ENDPOINT,
  ADDRESS,
  AUTHORIZATION,
  EXTENSION_CONFIG,
  LISTENER,
  ROUTE,
];

/** SotW types whose responses are the complete set (absent = removed), xds.md §6. */
export const SOTW_FULL_STATE: ReadonlySet<string> = new Set([
  LISTENER,
  CLUSTER,
  ADDRESS,
  AUTHORIZATION,
]);

export function shortName(typeUrl: string): string {
  const n: Record<string, string> = {
    [LISTENER]: "lds",
    [ROUTE]: "rds",
    [CLUSTER]: "cds",
    [ENDPOINT]: "eds",
    [EXTENSION_CONFIG]: "ecds",
    [ADDRESS]: "address",
    [AUTHORIZATION]: "authorization",
  };
  return n[typeUrl] ?? "unknown";
}
