/**
 * CORS on the request's route (Istio VirtualService `corsPolicy`, Gateway API HTTPRoute `CORS`;
 * istiod writes it as the route's `typed_per_filter_config["envoy.filters.http.cors"]` CorsPolicy
 * for Envoy's cors filter, which sits after the fault filter and before the router). As Envoy's
 * CorsFilter: a request without an `Origin` (or an empty one) is untouched. An origin is allowed
 * when an allow matcher matches it, or matches "*" (isOriginAllowed). A preflight (OPTIONS with
 * `Access-Control-Request-Method`) is answered here with 200 and the policy's headers, never
 * forwarded, unless its origin is not allowed and `forwardNotMatchingPreflights` (Envoy's
 * default; Istio's unless `unmatchedPreflights: IGNORE`): then it goes on untouched. An allowed
 * preflight gets `access-control-allow-origin`; an ignored one is answered without it. Any other
 * request from an allowed origin goes on, and its response (the upstream's, or the route's own
 * direct response or redirect) gets `access-control-allow-origin` = the origin,
 * `-allow-credentials: true` when set and `-expose-headers`, set over what the upstream sent, as
 * the filter's encodeHeaders runs after the router's header operations. A fault's abort comes
 * before the filter and gets none. Routes without CORS cost one property read (`policy.cors`).
 */
import type { HttpRequestContext, LocalResponse } from "./filter_api.ts";
import type { HeaderOps, RouteHeaders } from "./route_headers.ts";
import { type RoutePolicy, type RouteStringMatch, stringMatches } from "./route_policy.ts";

/** Envoy's cors.v3.CorsPolicy as the filter reads it; lists are already joined with "," as
 * istiod joins them. Empty strings mean unset. */
export interface RouteCors {
  readonly allowOrigins: readonly RouteStringMatch[];
  readonly allowMethods: string;
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
  /** Seconds as text (Envoy's `max_age`); "" = no header. */
  readonly maxAge: string;
  readonly allowCredentials: boolean;
  /** false = a preflight from an origin not allowed is answered, not forwarded (Istio's
   * `unmatchedPreflights: IGNORE`). */
  readonly forwardNotMatchingPreflights: boolean;
  /** Envoy's `allow_private_network_access` (Private Network Access preflights). */
  readonly allowPrivateNetworkAccess?: boolean;
}

/** What the policy does with one request. */
export type CorsDecision =
  | { readonly kind: "preflight"; readonly reply: LocalResponse }
  | { readonly kind: "actual"; readonly response: HeaderOps };

export function originAllowed(c: RouteCors, origin: string): boolean {
  for (const m of c.allowOrigins) {
    if (stringMatches(m, "*") || stringMatches(m, origin)) return true;
  }
  return false;
}

function preflight(c: RouteCors, ctx: HttpRequestContext, origin: string | undefined) {
  const h = ctx.requestHeaders;
  const out: [string, string][] = [];
  if (origin !== undefined) out.push(["access-control-allow-origin", origin]);
  if (c.allowCredentials) out.push(["access-control-allow-credentials", "true"]);
  if (c.allowMethods) {
    const m = c.allowMethods === "*"
      ? h.get("access-control-request-method") ?? ""
      : c.allowMethods;
    out.push(["access-control-allow-methods", m]);
  }
  if (c.allowHeaders) {
    const v = c.allowHeaders === "*"
      ? h.get("access-control-request-headers") ?? ""
      : c.allowHeaders;
    out.push(["access-control-allow-headers", v]);
  }
  if (c.maxAge) out.push(["access-control-max-age", c.maxAge]);
  if (c.allowPrivateNetworkAccess && h.get("access-control-request-private-network") === "true") {
    out.push(["access-control-allow-private-network", "true"]);
  }
  return { status: 200, headers: out, body: "", details: "cors_response" };
}

/** The policy's decision for the request, or undefined: it goes on untouched. */
export function corsDecision(c: RouteCors, ctx: HttpRequestContext): CorsDecision | undefined {
  const origin = ctx.requestHeaders.get("origin");
  if (!origin) return undefined;
  const allowed = originAllowed(c, origin);
  if (
    ctx.method === "OPTIONS" && ctx.requestHeaders.get("access-control-request-method") &&
    (allowed || !c.forwardNotMatchingPreflights)
  ) {
    return { kind: "preflight", reply: preflight(c, ctx, allowed ? origin : undefined) };
  }
  if (!allowed) return undefined;
  const set: [string, string][] = [["access-control-allow-origin", origin]];
  if (c.allowCredentials) set.push(["access-control-allow-credentials", "true"]);
  if (c.exposeHeaders) set.push(["access-control-expose-headers", c.exposeHeaders]);
  return { kind: "actual", response: { set } };
}

/** The policy this request goes on with when the route has CORS: the route's own, one whose
 * reply is the preflight's answer (after the route's fault, as Envoy's filter order has it), or
 * one whose responses get the CORS headers last. Allocates only for requests with an Origin. */
export function withCors(policy: RoutePolicy, ctx: HttpRequestContext): RoutePolicy {
  const d = corsDecision(policy.cors!, ctx);
  if (!d) return policy;
  if (d.kind === "preflight") return { ...policy, reply: { kind: "local", response: d.reply } };
  const headers: RouteHeaders = { ...policy.headers, after: d.response };
  const reply = policy.reply;
  return {
    ...policy,
    headers,
    ...(reply && reply.kind !== "local" ? { reply: { ...reply, after: d.response } } : {}),
  };
}
