/**
 * Istio VirtualService http routes (+ DestinationRule subsets), as src/istio parses them, → the
 * JSON config of the first-party `traffic-split` plugin (plugins/traffic-split). The plugin
 * answers a route choice {service, subset}; the host applies the subset's labels (snapshot
 * `Subset`) to pick endpoints. Fields that are not routing (timeout, retries, fault) are other
 * filters' job; the parser rejects what weft has no mechanism for.
 */
import type { Subset } from "../../core/mod.ts";
import {
  Checker,
  hostFqdn,
  type HttpMatch,
  type HttpRoute,
  isObj,
  type IstioStringMatch,
  parseDestinationRule,
  parseVirtualService,
  Problems,
} from "../../istio/mod.ts";
import { problemsError } from "./convert_util.ts";

export type SplitStringMatch = { exact: string } | { prefix: string } | { regex: string };

export interface SplitMatch {
  readonly uri?: SplitStringMatch;
  readonly method?: SplitStringMatch;
  readonly authority?: SplitStringMatch;
  readonly scheme?: SplitStringMatch;
  readonly ignoreUriCase?: boolean;
  /** `{}` = presence. */
  readonly headers?: Readonly<Record<string, SplitStringMatch | Record<string, never>>>;
  readonly withoutHeaders?: Readonly<Record<string, SplitStringMatch | Record<string, never>>>;
  readonly queryParams?: Readonly<Record<string, SplitStringMatch>>;
}

export interface SplitDestination {
  readonly service: string;
  readonly subset?: string;
  readonly weight: number;
}

export interface SplitRoute {
  readonly name: string;
  readonly match?: readonly SplitMatch[];
  readonly route: readonly SplitDestination[];
  readonly hashHeader?: string;
}

export interface SplitPluginConfig {
  readonly routes: readonly SplitRoute[];
  readonly noMatch?: "continue" | "notFound";
  /** Counter bumps batched in the guest before a host call (default 32; 1 = exact). */
  readonly counterBatch?: number;
}

export interface SplitOptions {
  /** weft extension: sticky choice by the hash of this request header, for every route. */
  readonly hashHeader?: string;
  /** 404 when no route matches (Envoy/Istio behaviour) instead of the host's default route. */
  readonly noMatch?: "continue" | "notFound";
}

/** A VirtualService document (validated by src/istio's parser) → plugin config. */
export function splitConfigFromVirtualService(
  vs: unknown,
  opts: SplitOptions = {},
): SplitPluginConfig {
  const problems = new Problems();
  const parsed = parseVirtualService(new Checker(problems), isObj(vs) ? vs : {});
  if (!problems.ok) {
    throw problemsError(
      `VirtualService ${parsed.meta.namespace}/${parsed.meta.name}`,
      problems.list,
    );
  }
  // The plugin only chooses destinations: a route that answers itself is the proxy's route
  // policy (src/core/route_fault.ts), which this standalone converter does not feed.
  const own = parsed.http.flatMap((r, i) => [
    ...(["redirect", "directResponse"] as const).filter((k) => r[k]).map((k) =>
      `spec.http[${i}].${k}: not supported by the traffic-split plugin alone (weft's proxy ` +
      "applies it as the route's own reply)"
    ),
    ...(r.headers || r.route.some((d) => d.headers)
      ? [
        `spec.http[${i}].headers: not supported by the traffic-split plugin alone (weft's proxy ` +
        "applies them on the route)",
      ]
      : []),
    ...(r.cors
      ? [
        `spec.http[${i}].corsPolicy: not supported by the traffic-split plugin alone (weft's ` +
        "proxy applies it on the route)",
      ]
      : []),
  ]);
  if (own.length) {
    throw problemsError(`VirtualService ${parsed.meta.namespace}/${parsed.meta.name}`, own);
  }
  return splitConfigFromRoutes(parsed.http, parsed.meta.namespace, opts);
}

/** Parsed http routes → plugin config; short destination hosts resolve in `namespace` (the
 * VirtualService's). */
export function splitConfigFromRoutes(
  http: readonly HttpRoute[],
  namespace: string,
  opts: SplitOptions = {},
): SplitPluginConfig {
  if (http.some((r) => r.match.some((m) => m.sourceLabels))) {
    // The plugin sees requests, not their source: a chain per source resolves these first.
    throw problemsError("VirtualService routes", [
      "sourceLabels must be resolved per source first (routesForSource)",
    ]);
  }
  const routes = http.map((r, i): SplitRoute => ({
    name: r.name ?? `http[${i}]`,
    ...(r.match.length > 0 ? { match: r.match.map(matchOf) } : {}),
    route: r.route.map((d) => ({
      service: hostFqdn(d.destination.host, namespace),
      ...(d.destination.subset ? { subset: d.destination.subset } : {}),
      weight: d.weight,
    })),
    ...(opts.hashHeader ? { hashHeader: opts.hashHeader.toLowerCase() } : {}),
  }));
  return Object.freeze({ routes, noMatch: opts.noMatch ?? "continue" });
}

/** One of exact/prefix/regex (the parser checked there is exactly one), or `{}`: presence. */
function stringMatch(m: IstioStringMatch): SplitStringMatch | Record<string, never> {
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  if (m.regex !== undefined) return { regex: m.regex };
  return {};
}

function matchOf(m: HttpMatch): SplitMatch {
  const out: Record<string, unknown> = {};
  for (const k of ["uri", "method", "authority", "scheme"] as const) {
    const v = m[k];
    if (v) out[k] = stringMatch(v);
  }
  if (m.ignoreUriCase) out.ignoreUriCase = true;
  const map = (o: Readonly<Record<string, IstioStringMatch>>, presence: boolean) =>
    Object.fromEntries(
      Object.entries(o).map(([name, v]) => {
        const sm = stringMatch(v);
        // The plugin has no presence test for query parameters: any value matches.
        return [
          name,
          presence || "exact" in sm || "prefix" in sm || "regex" in sm ? sm : { regex: ".*" },
        ];
      }),
    );
  if (Object.keys(m.headers).length > 0) out.headers = map(m.headers, true);
  if (Object.keys(m.withoutHeaders).length > 0) out.withoutHeaders = map(m.withoutHeaders, true);
  if (Object.keys(m.queryParams).length > 0) out.queryParams = map(m.queryParams, false);
  return out as SplitMatch;
}

/** A DestinationRule document (validated by src/istio's parser) → snapshot `Subset`s. */
export function subsetsFromDestinationRule(dr: unknown): Subset[] {
  const problems = new Problems();
  const parsed = parseDestinationRule(new Checker(problems), isObj(dr) ? dr : {});
  if (!problems.ok) throw problemsError("DestinationRule", problems.list);
  return parsed.subsets.map((s) =>
    Object.freeze({ name: s.name, labels: Object.freeze(s.labels) })
  );
}
