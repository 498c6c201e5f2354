/**
 * Header operations of the request's route (Istio VirtualService `headers`, Envoy's route and
 * weighted-cluster `request_headers_to_add`/`_remove` and `response_headers_to_add`/`_remove`).
 * Each level removes first, then sets (OVERWRITE_IF_EXISTS_OR_ADD), then adds
 * (APPEND_IF_EXISTS_OR_ADD), as Envoy's HeaderParser removes before it adds and as istiod emits
 * `set` before `add`. The levels go from the most specific to the least: the destination the
 * split chose, then the route, so the route's operations win on a conflict (Envoy's
 * `most_specific_header_mutations_wins` default, false). Request operations apply after the
 * filters and the route's rewrite, as the router finalizes the request before it goes upstream;
 * response operations apply to the upstream's response head before the response filters run, as
 * the router applies them when the upstream headers arrive. Routes without operations carry no
 * `headers` and cost one property read.
 */
import type { HeaderMap, HttpRequestContext, RouteChoice } from "./filter_api.ts";

/** One level's operations; names are lower case and never pseudo-headers or `host`. */
export interface HeaderOps {
  readonly remove?: readonly string[];
  readonly set?: readonly (readonly [string, string])[];
  readonly add?: readonly (readonly [string, string])[];
}

/** The operations of one destination of the route's split (Envoy ClusterWeight). */
export interface DestinationHeaderOps {
  /** The destination's service host (FQDN) and subset, as the split's choice names them. */
  readonly service: string;
  readonly subset: string | undefined;
  readonly request?: HeaderOps;
  readonly response?: HeaderOps;
  /** The authority (and Host) for this destination (Istio's `set` of `host`/`:authority` on a
   * destination, Envoy ClusterWeight host_rewrite_literal). */
  readonly authority?: string;
}

/** A route's header operations: its own and those of its destinations. */
export interface RouteHeaders {
  readonly request?: HeaderOps;
  readonly response?: HeaderOps;
  readonly destinations?: readonly DestinationHeaderOps[];
  /** The route has this one destination: its operations apply whatever the split answered (a
   * route to one destination may not run the split at all). */
  readonly single?: boolean;
  /** Response operations applied last: a CORS request's headers (route_cors.ts), set by Envoy's
   * cors filter after the router's operations. */
  readonly after?: HeaderOps;
}

export function applyOps(ops: HeaderOps | undefined, h: HeaderMap): void {
  if (!ops) return;
  if (ops.remove) { for (const n of ops.remove) h.remove(n); }
  if (ops.set) { for (const [n, v] of ops.set) h.set(n, v); }
  if (ops.add) { for (const [n, v] of ops.add) h.add(n, v); }
}

const bare = (s: string): string => s.toLowerCase().replace(/\.$/, "");

/** The operations of the destination the split chose, if it has any. */
export function destinationOps(
  rh: RouteHeaders,
  route: RouteChoice | undefined,
): DestinationHeaderOps | undefined {
  const ds = rh.destinations;
  if (!ds) return undefined;
  if (rh.single) return ds[0];
  if (!route) return undefined;
  const service = bare(route.service);
  return ds.find((d) => bare(d.service) === service && d.subset === route.subset);
}

/** The request's headers as they go upstream: the chosen destination's operations, then the
 * route's. */
export function applyRequestHeaders(
  rh: RouteHeaders,
  route: RouteChoice | undefined,
  ctx: HttpRequestContext,
): void {
  const d = destinationOps(rh, route);
  const h = ctx.requestHeaders;
  if (d) {
    applyOps(d.request, h);
    if (d.authority !== undefined) {
      (ctx as { authority: string }).authority = d.authority;
      if (h.has("host")) h.set("host", d.authority);
    }
  }
  applyOps(rh.request, h);
}

/** The upstream response's headers as the filters and the client get them. */
export function applyResponseHeaders(
  rh: RouteHeaders,
  route: RouteChoice | undefined,
  h: HeaderMap,
): void {
  applyOps(destinationOps(rh, route)?.response, h);
  applyOps(rh.response, h);
  applyOps(rh.after, h);
}
