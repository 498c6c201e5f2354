/**
 * A route's `typed_per_filter_config` CorsPolicy (envoy.extensions.filters.http.cors.v3, what
 * istiod's TranslateCORSPolicy writes under "envoy.filters.http.cors") → the data path's route
 * CORS (src/core/route_cors.ts), and the control plane's writer of the same message. The HCM's
 * cors filter itself (an empty `Cors`) carries nothing: the policy travels with the route, as
 * Envoy reads it from the matched route. Origin matchers: exact, prefix, safe_regex, and suffix /
 * contains as whole-value regexes; `ignore_case` and custom matchers are NACKed.
 * `filter_enabled` at 0% turns the policy off and at 100% (istiod's) on; a runtime fraction in
 * between is NACKed (weft has no runtime sampling for it). `shadow_enabled` only feeds Envoy's
 * statistics and is ignored.
 */
import type { RouteCors, RouteStringMatch } from "../../core/mod.ts";
import type { CorsPolicy } from "../gen/envoy/extensions/filters/http/cors/v3/cors_pb.ts";
import type { StringMatcher } from "../gen/envoy/type/matcher/v3/string_pb.ts";
import { invalid } from "./resource_type.ts";

/** The per-route filter config key istiod writes (wellknown.CORS). */
export const CORS_FILTER_NAME = "envoy.filters.http.cors";

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function originMatch(m: StringMatcher, what: string): RouteStringMatch {
  if (m.ignoreCase) {
    throw invalid(what, "cors allow_origin_string_match ignore_case is not supported");
  }
  const p = m.matchPattern;
  switch (p.case) {
    case "exact":
      return { exact: p.value };
    case "prefix":
      return { prefix: p.value };
    case "safeRegex":
      return { regex: p.value.regex };
    case "suffix":
      return { regex: `.*${escape(p.value)}` };
    case "contains":
      return { regex: `.*${escape(p.value)}.*` };
  }
  throw invalid(what, `cors allow_origin_string_match ${p.case ?? "(none)"} is not supported`);
}

/** Per denominator (HUNDRED, TEN_THOUSAND, MILLION). */
const DENOMINATORS = [100, 10_000, 1_000_000];

/** The policy as the data path runs it; undefined when `filter_enabled` is 0%. */
export function routeCorsOf(c: CorsPolicy, what: string): RouteCors | undefined {
  const f = c.filterEnabled?.defaultValue;
  if (c.filterEnabled) {
    const den = DENOMINATORS[f?.denominator ?? 0];
    const num = f?.numerator ?? 0;
    if (num === 0) return undefined;
    if (den === undefined || num < den) {
      throw invalid(what, "cors filter_enabled other than 0% or 100% is not supported");
    }
  }
  return Object.freeze({
    allowOrigins: Object.freeze(c.allowOriginStringMatch.map((m) => originMatch(m, what))),
    allowMethods: c.allowMethods,
    allowHeaders: c.allowHeaders,
    exposeHeaders: c.exposeHeaders,
    maxAge: c.maxAge,
    allowCredentials: c.allowCredentials ?? false,
    forwardNotMatchingPreflights: c.forwardNotMatchingPreflights ?? true,
    ...(c.allowPrivateNetworkAccess ? { allowPrivateNetworkAccess: true } : {}),
  });
}
