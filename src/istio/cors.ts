/**
 * Istio CorsPolicy (VirtualService `http[].corsPolicy`) → the data path's route CORS
 * (src/core/route_cors.ts), as istiod translates it (pilot/pkg/networking/core/route
 * TranslateCORSPolicy): `allowOrigins` (StringMatch list), else the deprecated `allowOrigin`
 * (exact strings); `allowMethods`, `allowHeaders`, `exposeHeaders` joined with ","; `maxAge` in
 * whole seconds; `allowCredentials`; `unmatchedPreflights` IGNORE → forward_not_matching_preflights
 * false, otherwise true. Validated as istio/api's validateCORSPolicy: origins non-empty with valid
 * regexes, methods from Go's list or "*", header names RFC 9110 tokens or "*", maxAge ≥ 1ms and
 * to the second. Gateway API's HTTPRoute `CORS` filter converts to the same policy
 * (`corsFilterOf`, as istiod's createCorsFilter).
 */
import type { RouteCors, RouteStringMatch } from "../core/mod.ts";
import { type Checker, INT32_MAX } from "./check.ts";
import type { IstioStringMatch } from "./types.ts";

/** Go's net/http method constants and "*" (istio/api supportedCORSMethods). */
const METHODS = [
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "CONNECT",
  "OPTIONS",
  "TRACE",
  "*",
];
/** Gateway API HTTPMethodWithWildcard. */
const GATEWAY_METHODS = [
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "CONNECT",
  "OPTIONS",
  "TRACE",
  "PATCH",
  "*",
];
/** RFC 9110 token (istio/api validHeaderNameRegex). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const KEYS = [
  "allowOrigins",
  "allowOrigin",
  "allowMethods",
  "allowHeaders",
  "exposeHeaders",
  "maxAge",
  "allowCredentials",
  "unmatchedPreflights",
];

type ParseMatch = (c: Checker, path: string, v: unknown) => IstioStringMatch;

function routeMatch(m: IstioStringMatch): RouteStringMatch | undefined {
  if (m.exact) return { exact: m.exact };
  if (m.prefix) return { prefix: m.prefix };
  if (m.regex) return { regex: m.regex };
  return undefined;
}

function headerNames(c: Checker, path: string, v: unknown): string[] {
  const names = c.strList(path, v);
  names.forEach((n, i) => {
    if (n !== "*" && !TOKEN.test(n)) c.problems.add(`${path}[${i}]`, "not a valid header name");
  });
  return names;
}

/** A VirtualService route's `corsPolicy`; every problem is added with its path. */
export function parseCorsPolicy(
  c: Checker,
  path: string,
  v: unknown,
  stringMatch: ParseMatch,
): RouteCors {
  const o = c.obj(path, v, KEYS);
  const allowOrigins: RouteStringMatch[] = [];
  // istiod: `allowOrigins` when it has entries (an empty list decodes as none), else `allowOrigin`.
  const origins = c.list(`${path}.allowOrigins`, o.allowOrigins);
  if (origins.length) {
    origins.forEach((x, i) => {
      const p = `${path}.allowOrigins[${i}]`;
      const m = routeMatch(stringMatch(c, p, x));
      if (m) allowOrigins.push(m);
      else c.problems.add(p, "needs a non-empty exact, prefix or regex (as istio/api)");
    });
  } else {
    for (const s of c.strList(`${path}.allowOrigin`, o.allowOrigin)) {
      allowOrigins.push({ exact: s });
    }
  }
  const methods = c.strList(`${path}.allowMethods`, o.allowMethods);
  methods.forEach((m, i) => {
    if (!METHODS.includes(m)) {
      c.problems.add(`${path}.allowMethods[${i}]`, `must be one of ${METHODS.join(", ")}`);
    }
  });
  let maxAge = "";
  if (o.maxAge !== undefined) {
    const ms = c.duration(`${path}.maxAge`, o.maxAge, 0);
    if (ms < 1) c.problems.add(`${path}.maxAge`, "must be at least 1ms");
    else if (ms % 1000 !== 0) c.problems.add(`${path}.maxAge`, "must be whole seconds (as Istio)");
    else maxAge = String(ms / 1000);
  }
  const unmatched = c.oneOf(`${path}.unmatchedPreflights`, o.unmatchedPreflights, [
    "UNSPECIFIED",
    "FORWARD",
    "IGNORE",
  ], "UNSPECIFIED");
  return Object.freeze({
    allowOrigins: Object.freeze(allowOrigins),
    allowMethods: methods.join(","),
    allowHeaders: headerNames(c, `${path}.allowHeaders`, o.allowHeaders).join(","),
    exposeHeaders: headerNames(c, `${path}.exposeHeaders`, o.exposeHeaders).join(","),
    maxAge,
    allowCredentials: c.bool(`${path}.allowCredentials`, o.allowCredentials, false),
    forwardNotMatchingPreflights: unmatched !== "IGNORE",
  });
}

/** Go's regexp.QuoteMeta. */
const quoteMeta = (s: string): string => s.replace(/[\\.+*?()|[\]{}^$]/g, "\\$&");

/** Gateway API HTTPCORSFilter → the same policy, as istiod's createCorsFilter: "*" is a regex
 * for any `scheme://host[:port]`, a name without "*" exact, one trailing "*" a prefix, other
 * wildcards a regex; `allowCredentials`, the lists, `maxAge` seconds (the CRD's default 5);
 * unmatched preflights IGNORE. Checked as the CRD's schema (methods enum, header name pattern,
 * allowCredentials only `true`, maxAge ≥ 1). */
export function corsFilterOf(c: Checker, path: string, v: unknown): RouteCors {
  const o = c.obj(path, v, [
    "allowOrigins",
    "allowCredentials",
    "allowMethods",
    "allowHeaders",
    "exposeHeaders",
    "maxAge",
  ]);
  const allowOrigins: RouteStringMatch[] = [];
  c.strList(`${path}.allowOrigins`, o.allowOrigins).forEach((rs, i) => {
    if (rs === "") c.problems.add(`${path}.allowOrigins[${i}]`, "must not be empty");
    else if (rs === "*") allowOrigins.push({ regex: "^[a-zA-Z][a-zA-Z0-9+.-]*://[^/\\s?#]+$" });
    else if (!rs.includes("*")) allowOrigins.push({ exact: rs });
    else if (rs.indexOf("*") === rs.length - 1) allowOrigins.push({ prefix: rs.slice(0, -1) });
    else allowOrigins.push({ regex: "^" + quoteMeta(rs).replaceAll("\\*", ".*") + "$" });
  });
  const methods = c.strList(`${path}.allowMethods`, o.allowMethods);
  methods.forEach((m, i) => {
    if (!GATEWAY_METHODS.includes(m)) {
      c.problems.add(`${path}.allowMethods[${i}]`, `must be one of ${GATEWAY_METHODS.join(", ")}`);
    }
  });
  if (o.allowCredentials !== undefined && o.allowCredentials !== true) {
    c.problems.add(`${path}.allowCredentials`, "can only be true (Gateway API TrueField)");
  }
  const maxAge = c.int(`${path}.maxAge`, o.maxAge, 5, 1, INT32_MAX);
  return Object.freeze({
    allowOrigins: Object.freeze(allowOrigins),
    allowMethods: methods.join(","),
    allowHeaders: headerNames(c, `${path}.allowHeaders`, o.allowHeaders).join(","),
    exposeHeaders: headerNames(c, `${path}.exposeHeaders`, o.exposeHeaders).join(","),
    maxAge: String(maxAge),
    allowCredentials: o.allowCredentials === true,
    forwardNotMatchingPreflights: false,
  });
}
