/** RDS: RouteConfiguration → virtual hosts with ordered rules, each a weighted cluster split. */
import type { Any } from "@bufbuild/protobuf/wkt";
import {
  decodeCorsPolicy,
  decodeRouteConfiguration,
  type RouteConfiguration,
  TYPE_NAMES,
  typeUrlOf,
  unpackAs,
} from "../node_proto.ts";
import type {
  HeaderMatcher,
  Route,
  VirtualHost,
} from "../gen/envoy/config/route/v3/route_components_pb.ts";
import { ROUTE } from "../type_urls.ts";
import { errorMessage, type RouteCors, type RouteFault } from "../../core/mod.ts";
import { routeCorsOf } from "./route_cors.ts";
import { FILTER_TYPES, filterFromAny } from "./http_filters.ts";
import { type Decoded, invalid, type ResourceType } from "./resource_type.ts";
import { type EnvoyHeaderGate, withGates } from "./route_scope.ts";
import { routeFaultOf, routeReplyOfAction, type RulePolicy, rulePolicyOf } from "./route_policy.ts";
import { ruleHeadersOf } from "./route_headers.ts";

/** `{exact}` | `{prefix}` | `{regex}`; `{}` = the header is present. */
export type HeaderMatch =
  | { readonly exact: string }
  | { readonly prefix: string }
  | { readonly regex: string }
  | Record<string, never>;

export interface RouteMatch {
  readonly prefix?: string;
  readonly path?: string;
  readonly regex?: string;
  /** `:method` / `:authority` / `:scheme` header matchers (Istio's method, authority, scheme). */
  readonly method?: HeaderMatch;
  readonly authority?: HeaderMatch;
  readonly scheme?: HeaderMatch;
  /** Lower-cased header name → match; `without`: headers that must not match. */
  readonly headers?: Readonly<Record<string, HeaderMatch>>;
  readonly withoutHeaders?: Readonly<Record<string, HeaderMatch>>;
  readonly queryParams?: Readonly<Record<string, HeaderMatch>>;
  /** case_sensitive: false (Istio's ignoreUriCase). */
  readonly ignoreUriCase?: boolean;
}

function headerMatch(h: HeaderMatcher, what: string): HeaderMatch {
  const m = h.headerMatchSpecifier;
  switch (m.case) {
    case "exactMatch":
      return { exact: m.value };
    case "prefixMatch":
      return { prefix: m.value };
    case "safeRegexMatch":
      return { regex: m.value.regex };
    case "presentMatch":
      return {};
    case "stringMatch": {
      const p = m.value.matchPattern;
      if (p.case === "exact") return { exact: p.value };
      if (p.case === "prefix") return { prefix: p.value };
      if (p.case === "safeRegex") return { regex: p.value.regex };
      break;
    }
  }
  throw invalid(what, `header match on ${h.name} (${m.case ?? "none"}) is not supported`);
}

const PSEUDO = { ":method": "method", ":authority": "authority", ":scheme": "scheme" } as const;

function headersOf(r: Route, what: string): Omit<RouteMatch, "prefix" | "path" | "regex"> {
  const headers: Record<string, HeaderMatch> = {};
  const without: Record<string, HeaderMatch> = {};
  const pseudo: Record<string, HeaderMatch> = {};
  for (const h of r.match?.headers ?? []) {
    const name = h.name.toLowerCase();
    const p = PSEUDO[name as keyof typeof PSEUDO];
    if (p && !h.invertMatch) pseudo[p] = headerMatch(h, what);
    else (h.invertMatch ? without : headers)[name] = headerMatch(h, what);
  }
  const query: Record<string, HeaderMatch> = {};
  for (const q of r.match?.queryParameters ?? []) {
    const m = q.queryParameterMatchSpecifier;
    if (m.case === "presentMatch") query[q.name] = {};
    else if (m.case === "stringMatch" && m.value.matchPattern.case === "exact") {
      query[q.name] = { exact: m.value.matchPattern.value };
    } else if (m.case === "stringMatch" && m.value.matchPattern.case === "prefix") {
      query[q.name] = { prefix: m.value.matchPattern.value };
    } else if (m.case === "stringMatch" && m.value.matchPattern.case === "safeRegex") {
      query[q.name] = { regex: m.value.matchPattern.value.regex };
    } else throw invalid(what, `query parameter match on ${q.name} is not supported`);
  }
  return {
    ...pseudo,
    ...(Object.keys(headers).length ? { headers } : {}),
    ...(Object.keys(without).length ? { withoutHeaders: without } : {}),
    ...(Object.keys(query).length ? { queryParams: query } : {}),
    ...(r.match?.caseSensitive === false ? { ignoreUriCase: true } : {}),
  };
}

export interface WeightedCluster {
  /** "" when `clusterHeader` names the cluster at request time. */
  readonly cluster: string;
  readonly weight: number;
  /** Envoy `cluster_header`: the request header (lower-case) whose value is the cluster. */
  readonly clusterHeader?: string;
}

export interface RouteRule {
  readonly match: RouteMatch;
  readonly clusters: readonly WeightedCluster[];
  /** `typed_per_filter_config`: HTTP filter name → that filter's config for this route. */
  readonly overrides: Readonly<Record<string, unknown>>;
  /** For a rule with overrides: the request headers under which this rule is the one chosen
   * (its own match, and not any earlier rule's), as Envoy HTTPFault `headers` matchers; `null`
   * when no request can reach it. See route_scope.ts. */
  readonly gate?: readonly EnvoyHeaderGate[] | null;
  /** RouteAction `timeout` and `retry_policy` (route_policy.ts); absent = neither. */
  readonly policy?: RulePolicy;
  /** WeightedCluster `random_value_specifier.header_name` (lower-case). */
  readonly randomValueHeader?: string;
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
  const hs = headersOf(r, what);
  switch (p?.case) {
    case "prefix":
      return { prefix: p.value, ...hs };
    case "path":
      return { path: p.value, ...hs };
    case "safeRegex":
      return { regex: p.value.regex, ...hs };
    default:
      throw invalid(what, `route match ${p?.case ?? "(none)"} is not supported`);
  }
}

/** The route's per-filter configs; a fault istiod's way (route_policy.ts `routeFaultOf`) is taken
 * out as the route's own fault, applied with the route (src/core/route_fault.ts). */
function overridesOf(
  r: Route,
  what: string,
): { overrides: Record<string, unknown>; fault: RouteFault | undefined; cors?: RouteCors } {
  const out: Record<string, unknown> = {};
  let fault: RouteFault | undefined;
  let cors: RouteCors | undefined;
  for (const [name, any] of Object.entries(r.typedPerFilterConfig)) {
    if (any.typeUrl === typeUrlOf(TYPE_NAMES.corsPolicy)) {
      cors = routeCorsOf(unpackAs(any, TYPE_NAMES.corsPolicy, decodeCorsPolicy), what);
      continue;
    }
    try {
      const spec = filterFromAny(name, any);
      if (spec.kind !== "filter") continue;
      const own = spec.ref.type === FILTER_TYPES.fault ? routeFaultOf(spec.ref.config) : undefined;
      if (own) fault = own;
      else out[name] = spec.ref.config;
    } catch (err) {
      throw invalid(what, `typed_per_filter_config ${name}: ${errorMessage(err)}`);
    }
  }
  return { overrides: out, fault, ...(cors ? { cors } : {}) };
}

/** The rule's policy with its CORS policy (route_cors.ts), which needs the L7 proxy alone. */
function withCors<P extends RulePolicy | undefined>(
  policy: P,
  cors: RouteCors | undefined,
): P | RulePolicy {
  if (!cors) return policy;
  return { ...(policy ?? { timeoutMs: undefined, retries: undefined }), cors };
}

function ruleOf(r: Route, what: string): RouteRule | undefined {
  const reply = routeReplyOfAction(r, what);
  if (reply) {
    // Redirect / direct_response: no cluster; the route policy answers (src/core/route_fault.ts).
    const { overrides, fault, cors } = overridesOf(r, what);
    const headers = ruleHeadersOf(r, [], what);
    const policy = withCors(
      rulePolicyOf(undefined, what, fault, reply, undefined, headers)!,
      cors,
    );
    return { match: matchOf(r, what), clusters: [], overrides, policy };
  }
  if (r.action.case !== "route") return undefined; // filter_action, non_forwarding_action
  const spec = r.action.value.clusterSpecifier;
  const { overrides, fault, cors } = overridesOf(r, what);
  const headers = ruleHeadersOf(
    r,
    spec.case === "weightedClusters"
      ? spec.value.clusters.map((c) => ({
        ...c,
        authority: c.hostRewriteSpecifier.case === "hostRewriteLiteral"
          ? c.hostRewriteSpecifier.value
          : undefined,
      }))
      : [],
    what,
  );
  const policy = withCors(
    rulePolicyOf(r.action.value, what, fault, undefined, matchOf(r, what), headers),
    cors,
  );
  const withPolicy = <T extends object>(rule: T) => (policy ? { ...rule, policy } : rule);
  if (spec.case === "cluster") {
    if (!spec.value) throw invalid(what, "route cluster name is empty");
    return withPolicy({
      match: matchOf(r, what),
      clusters: [{ cluster: spec.value, weight: 1 }],
      overrides,
    });
  }
  if (spec.case === "clusterHeader") {
    // Envoy: the cluster is the header's first value; none or an unknown one answers as a
    // missing cluster (503 NC, or cluster_not_found_response_code).
    return withPolicy({
      match: matchOf(r, what),
      clusters: [{ cluster: "", weight: 1, clusterHeader: headerName(spec.value, what) }],
      overrides,
    });
  }
  if (spec.case === "weightedClusters") {
    const cs = spec.value.clusters.map((c): WeightedCluster => {
      // ClusterWeight's cluster_specifier oneof: name or cluster_header (protoc-gen-validate).
      if (!c.name === !c.clusterHeader) {
        throw invalid(what, "weighted cluster needs exactly one of name and cluster_header");
      }
      const weight = c.weight ?? 0;
      const ops = c.requestHeadersToAdd.length + c.requestHeadersToRemove.length +
        c.responseHeadersToAdd.length + c.responseHeadersToRemove.length;
      if (c.clusterHeader && (ops > 0 || c.hostRewriteSpecifier.case !== undefined)) {
        // weft keys a destination's operations by the cluster the split names.
        throw invalid(
          what,
          "header operations on a cluster_header weighted cluster are not supported",
        );
      }
      return c.name
        ? { cluster: c.name, weight }
        : { cluster: "", weight, clusterHeader: headerName(c.clusterHeader, what) };
    });
    const sum = cs.reduce((a, c) => a + c.weight, 0);
    if (cs.length === 0 || sum <= 0 || sum > 0xffffffff) {
      throw invalid(what, `weighted_clusters weights must sum to 1..${0xffffffff}, got ${sum}`);
    }
    const rv = spec.value.randomValueSpecifier;
    return withPolicy({
      match: matchOf(r, what),
      clusters: cs,
      overrides,
      ...(rv.case === "headerName" ? { randomValueHeader: headerName(rv.value, what) } : {}),
    });
  }
  throw invalid(what, `route action ${spec.case ?? "(none)"} is not supported`);
}

/** A header name Envoy accepts in these fields (an HTTP token, not a pseudo-header). */
function headerName(name: string, what: string): string {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
    throw invalid(what, `header name ${JSON.stringify(name)} is not a valid HTTP header name`);
  }
  return name.toLowerCase();
}

function vhostOf(v: VirtualHost, what: string): VirtualHostValue {
  if (v.domains.length === 0) throw invalid(what, `virtual host ${v.name} has no domains`);
  const rules: RouteRule[] = [];
  for (const r of v.routes) {
    const rule = ruleOf(r, what);
    if (rule) rules.push(rule);
  }
  return { name: v.name, domains: [...v.domains], rules: withGates(rules, what) };
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
    const rc = unpackAs(any, TYPE_NAMES.route, decodeRouteConfiguration);
    if (!rc.name) throw invalid("route configuration", "name is empty");
    return { name: rc.name, value: routeValue(rc, `route configuration ${rc.name}`) };
  },
  // Routes are not warmed (xds.md §8): their clusters are the listener's dependencies.
  deps: () => [],
};

export function routeClusters(v: RouteValue): string[] {
  const out = new Set<string>();
  for (const vh of v.virtualHosts) {
    for (const r of vh.rules) for (const c of r.clusters) if (c.cluster) out.add(c.cluster);
  }
  return [...out];
}
