/**
 * A route's CORS as istiod writes it (pilot/pkg/networking/core/route TranslateCORSPolicy): the
 * route's `typed_per_filter_config["envoy.filters.http.cors"]` CorsPolicy (origins as
 * StringMatchers, lists joined, `max_age` seconds, `filter_enabled` 100%,
 * `forward_not_matching_preflights`), and the HCM's empty cors filter that reads it
 * (xdsfilters.Cors, after the fault filter).
 */
import { create } from "@bufbuild/protobuf";
import { type Any, anyPack } from "@bufbuild/protobuf/wkt";
import { CorsPolicySchema, CorsSchema } from "../proto.ts";
import type { RouteCors } from "../../core/mod.ts";
import { CORS_FILTER_NAME } from "../resources/route_cors.ts";
import type { MeshService } from "./mesh.ts";

export function corsPolicyAny(c: RouteCors): Any {
  return anyPack(
    CorsPolicySchema,
    create(CorsPolicySchema, {
      allowOriginStringMatch: c.allowOrigins.map((m) => ({
        matchPattern: "exact" in m
          ? { case: "exact" as const, value: m.exact }
          : "prefix" in m
          ? { case: "prefix" as const, value: m.prefix }
          : { case: "safeRegex" as const, value: { regex: m.regex } },
      })),
      allowMethods: c.allowMethods,
      allowHeaders: c.allowHeaders,
      exposeHeaders: c.exposeHeaders,
      maxAge: c.maxAge,
      ...(c.allowCredentials ? { allowCredentials: true } : {}),
      filterEnabled: { defaultValue: { numerator: 100 } }, // HUNDRED
      forwardNotMatchingPreflights: c.forwardNotMatchingPreflights,
    }),
  );
}

/** The HCM's cors filter when a route of the service has a policy. */
export function corsFilter(s: MeshService) {
  return s.http.some((r) => r.cors)
    ? {
      name: CORS_FILTER_NAME,
      configType: { case: "typedConfig" as const, value: anyPack(CorsSchema, create(CorsSchema)) },
    }
    : undefined;
}
