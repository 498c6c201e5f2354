/**
 * Route-scoped filter config (Envoy's typed_per_filter_config) on weft's per-service chains.
 * Envoy picks the route first and a filter then reads that route's config; weft runs one chain
 * per service before the traffic split chooses a route. A per-route fault therefore becomes its own
 * fault filter instance gated (HTTPFault `headers`) by the condition "this rule is the one chosen":
 * its own header match, and the negation of every earlier rule. That is exact when each earlier
 * rule is a catch-all (then this rule is unreachable) or a single header condition, and paths are
 * not part of the decision; other tables are refused (NACK) rather than applied to the wrong
 * requests. Per-route config of filters other than the fault filter is refused on tables with
 * more than one route for the same reason.
 */
import { FILTER_TYPES } from "./http_filters.ts";
import type { HeaderMatch, RouteMatch, RouteRule } from "./route.ts";
import { invalid } from "./resource_type.ts";

/** Envoy HeaderMatcher in proto-JSON form (what HTTPFault `headers` holds). */
export interface EnvoyHeaderGate {
  readonly name: string;
  readonly invertMatch?: boolean;
  readonly presentMatch?: boolean;
  readonly stringMatch?:
    | { readonly exact: string }
    | { readonly prefix: string }
    | { readonly safeRegex: { readonly regex: string } };
}

function gateOf(name: string, m: HeaderMatch, invert: boolean): EnvoyHeaderGate {
  const inv = invert ? { invertMatch: true } : {};
  if ("exact" in m) return { name, stringMatch: { exact: m.exact }, ...inv };
  if ("prefix" in m) return { name, stringMatch: { prefix: m.prefix }, ...inv };
  if ("regex" in m) return { name, stringMatch: { safeRegex: { regex: m.regex } }, ...inv };
  return { name, presentMatch: true, ...inv };
}

/** The rule's conditions as header gates, or a reason they cannot be. */
function conditions(m: RouteMatch): EnvoyHeaderGate[] | string {
  if (
    m.path !== undefined || m.regex !== undefined || (m.prefix ?? "/") !== "/" && m.prefix !== ""
  ) {
    return "the route matches on the path";
  }
  if (m.queryParams) return "the route matches on query parameters";
  const out: EnvoyHeaderGate[] = [];
  if (m.method) out.push(gateOf(":method", m.method, false));
  if (m.authority) out.push(gateOf(":authority", m.authority, false));
  if (m.scheme) out.push(gateOf(":scheme", m.scheme, false));
  for (const [n, h] of Object.entries(m.headers ?? {})) out.push(gateOf(n, h, false));
  for (const [n, h] of Object.entries(m.withoutHeaders ?? {})) out.push(gateOf(n, h, true));
  return out;
}

function gate(rules: readonly RouteRule[], i: number): EnvoyHeaderGate[] | null | string {
  const own = conditions(rules[i]!.match);
  if (typeof own === "string") return own;
  const out = [...own];
  for (let j = 0; j < i; j++) {
    const earlier = conditions(rules[j]!.match);
    if (typeof earlier === "string") return `an earlier route (${j}) ${earlier.slice(10)}`;
    if (earlier.length === 0) return null; // an earlier catch-all: rule i is never chosen
    if (earlier.length > 1) return `an earlier route (${j}) has several conditions`;
    const c = earlier[0]!;
    out.push({ ...c, invertMatch: !c.invertMatch });
  }
  return out;
}

export function withGates(rules: RouteRule[], what: string): RouteRule[] {
  return rules.map((r, i) => {
    if (Object.keys(r.overrides).length === 0) return r;
    const g = gate(rules, i);
    if (typeof g === "string") {
      throw invalid(
        what,
        `route ${i} has per-route filter config, but weft can scope it to that route only when ` +
          `routes decide on headers: ${g}`,
      );
    }
    return { ...r, gate: g };
  });
}

/** Per-route instances of one HTTP filter: the listener-level `base` ref (kept when it has
 * config of its own) and one gated instance per rule that overrides it. */
export function routeScopedRefs<T extends { name: string; type: string; config: unknown }>(
  base: T,
  rules: readonly RouteRule[],
): T[] {
  const scoped = rules.filter((r) => base.name in r.overrides);
  // An empty listener-level fault filter (istiod's, when routes carry the faults) does nothing.
  if (scoped.length === 0) {
    return base.type === FILTER_TYPES.fault && isEmptyFault(base.config) ? [] : [base];
  }
  if (base.type !== FILTER_TYPES.fault) {
    if (rules.length === 1) return [{ ...base, config: scoped[0]!.overrides[base.name] }];
    throw invalid(
      `filter ${base.name}`,
      "per-route config on one of several routes is supported for the fault filter only",
    );
  }
  const out: T[] = [];
  if (!isEmptyFault(base.config)) out.push(base);
  rules.forEach((r, i) => {
    if (!(base.name in r.overrides) || r.gate === null) return;
    const cfg = r.overrides[base.name] as { headers?: unknown[] };
    out.push({
      ...base,
      name: `${base.name}.route-${i}`,
      config: { ...cfg, headers: [...(cfg.headers ?? []), ...(r.gate ?? [])] },
    });
  });
  return out;
}

function isEmptyFault(cfg: unknown): boolean {
  const c = cfg as { abort?: unknown; delay?: unknown } | undefined;
  return !c || (c.abort === undefined && c.delay === undefined);
}
