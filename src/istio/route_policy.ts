/**
 * VirtualService http routes (as parsed here) → the data path's per-route policies (timeout,
 * retries; src/core/route_policy.ts), for weft.yaml services and for xDS nodes alike.
 */
import type {
  DestinationHeaderOps,
  RequestMatch,
  RetryPolicy,
  RouteFault,
  RouteHeaders,
  RouteReply,
  RouteRewrite,
  RouteStringMatch,
} from "../core/mod.ts";
import type { RoutePolicy } from "../core/mod.ts";
import { DEFAULT_RETRY_POLICY } from "../core/mod.ts";
import type { HttpFault, HttpMatch, HttpRetry, HttpRoute, IstioStringMatch } from "./types.ts";

function one(m: IstioStringMatch): RouteStringMatch | null {
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  if (m.regex !== undefined) return { regex: m.regex };
  return null; // presence
}

function map(o: Readonly<Record<string, IstioStringMatch>>) {
  const keys = Object.keys(o);
  return keys.length === 0 ? undefined : Object.fromEntries(keys.map((k) => [k, one(o[k]!)]));
}

export function requestMatchOf(m: HttpMatch): RequestMatch {
  const out: Record<string, unknown> = {};
  for (const k of ["uri", "method", "authority", "scheme"] as const) {
    const v = m[k] ? one(m[k]) : null;
    if (v) out[k] = v;
  }
  if (m.ignoreUriCase) out.ignoreUriCase = true;
  const headers = map(m.headers);
  if (headers) out.headers = headers;
  const without = map(m.withoutHeaders);
  if (without) out.withoutHeaders = without;
  const query = map(m.queryParams);
  if (query) out.queryParams = query;
  if (m.port !== undefined) out.port = m.port;
  if (m.sourceLabels) out.sourceLabels = m.sourceLabels;
  return out as RequestMatch;
}

/** The distinct `sourceLabels` selectors of a route list (empty: no route depends on the
 * source). */
export function sourceSelectors(routes: readonly HttpRoute[]): Readonly<Record<string, string>>[] {
  const seen = new Map<string, Readonly<Record<string, string>>>();
  for (const r of routes) {
    for (const m of r.match) {
      if (m.sourceLabels) {
        seen.set(JSON.stringify(Object.entries(m.sourceLabels).sort()), m.sourceLabels);
      }
    }
  }
  return [...seen.values()];
}

/** The routes as a source with `labels` has them (Istio builds them per proxy): match blocks
 * whose sourceLabels the source lacks are dropped, a route left without blocks is dropped, the
 * rest lose their sourceLabels. */
export function routesForSource(
  routes: readonly HttpRoute[],
  labels: Readonly<Record<string, string>>,
): HttpRoute[] {
  const out: HttpRoute[] = [];
  for (const r of routes) {
    if (r.match.length === 0) {
      out.push(r);
      continue;
    }
    const kept = r.match.filter((m) =>
      !m.sourceLabels || Object.entries(m.sourceLabels).every(([k, v]) => labels[k] === v)
    );
    if (kept.length === 0) continue;
    out.push({ ...r, match: kept.map((m) => ({ ...m, sourceLabels: undefined })) });
  }
  return out;
}

/** What applies to a route, as istiod's ConvertPolicy (istio/istio
 * pilot/pkg/networking/core/route/retry/retry.go): the route's own `retries`, else MeshConfig
 * `defaultHttpRetryPolicy` (it replaces the built-in default whole, no field merge), else the
 * built-in default (src/core DEFAULT_RETRY_POLICY); `attempts: 0` turns retries off; an unset
 * `retryOn` keeps the default conditions; previous_hosts unless `retryIgnorePreviousHosts: false`. */
export function effectiveRetry(
  own: HttpRetry | undefined,
  meshDefault: HttpRetry | undefined,
): RetryPolicy | undefined {
  const r = own ?? meshDefault;
  if (!r) return DEFAULT_RETRY_POLICY;
  if (r.attempts <= 0) return undefined;
  return Object.freeze({
    attempts: r.attempts,
    perTryTimeoutMs: r.perTryTimeoutMs,
    retryOn: r.retryOn ?? DEFAULT_RETRY_POLICY.retryOn,
    ...(r.backoffMs !== undefined ? { backoffBaseMs: r.backoffMs } : {}),
    previousHosts: r.ignorePreviousHosts ?? true,
  });
}

/** Istio's `fault` → the route's fault; percent 0–100 → per million (istiod's translateFault:
 * `percentage.value` × 10 000 over MILLION). */
export function routeFaultOf(f: HttpFault): RouteFault {
  const pm = (percent: number) => Math.round(percent * 10_000);
  return Object.freeze({
    ...(f.delay ? { delay: { ms: f.delay.fixedDelayMs, perMillion: pm(f.delay.percent) } } : {}),
    ...(f.abort
      ? {
        abort: {
          httpStatus: f.abort.httpStatus ?? 200,
          ...(f.abort.grpcStatus !== undefined ? { grpcStatus: f.abort.grpcStatus } : {}),
          perMillion: pm(f.abort.percent),
        },
      }
      : {}),
  });
}

/** A route's `redirect` or `directResponse` as the reply the proxy makes for it. */
export function routeReplyOf(r: HttpRoute): RouteReply | undefined {
  if (r.directResponse) return Object.freeze({ kind: "direct", ...r.directResponse });
  const d = r.redirect;
  if (!d) return undefined;
  return Object.freeze({
    kind: "redirect",
    code: d.redirectCode,
    ...(d.uri !== undefined ? { uri: d.uri } : {}),
    ...(d.authority !== undefined ? { authority: d.authority } : {}),
    ...(d.scheme !== undefined ? { scheme: d.scheme } : {}),
    ...(d.port !== undefined ? { port: d.port } : {}),
    ...(d.derivePort === "FROM_REQUEST_PORT" ? { requestPort: true } : {}),
  });
}

/** Every route in order (first match wins), each with its timeout, its fault and the retries that apply
 * (`effectiveRetry`; those not set by the route itself are marked `defaultRetries`); no routes
 * is Istio's default route (every request, the default retries); undefined when nothing
 * applies. */
export function routePolicies(
  routes: readonly HttpRoute[],
  meshDefault?: HttpRetry,
): RoutePolicy[] | undefined {
  const list: RoutePolicy[] = (routes.length ? routes : [undefined]).map((r) => {
    const retries = effectiveRetry(r?.retries, meshDefault);
    const reply = r && routeReplyOf(r);
    const headers = r && routeHeadersOf(r);
    const mirrors = r?.mirrors?.map((m) => ({
      route: { service: m.destination.host, subset: m.destination.subset },
      perMillion: Math.round(m.percent * 10_000),
    }));
    return Object.freeze({
      match: r ? r.match.map(requestMatchOf) : [],
      timeoutMs: r?.timeoutMs,
      retries,
      ...(r?.retries === undefined && retries ? { defaultRetries: true } : {}),
      ...(r?.fault ? { fault: routeFaultOf(r.fault) } : {}),
      ...(reply ? { reply } : {}),
      ...(mirrors?.length ? { mirrors } : {}),
      ...rewriteOf(r),
      ...(headers ? { headers } : {}),
      ...(r?.clusterNotFoundStatus ? { clusterNotFoundStatus: r.clusterNotFoundStatus } : {}),
      ...(r?.cors ? { cors: r.cors } : {}),
    });
  });
  return list.some((r) =>
      r.timeoutMs !== undefined || r.retries || r.fault || r.reply || r.mirrors || r.rewrite ||
      r.clusterNotFoundStatus || r.headers || r.cors
    )
    ? list
    : undefined;
}

/** The route's `rewrite`, with the authority its request `headers` set (`host`/`:authority`,
 * istiod's host rewrite) when the rewrite names none. */
function rewriteOf(r: HttpRoute | undefined): { rewrite?: RouteRewrite } {
  const a = r?.headers?.authority;
  if (a === undefined || r?.rewrite?.authority !== undefined) {
    return r?.rewrite ? { rewrite: r.rewrite } : {};
  }
  return { rewrite: Object.freeze({ ...r?.rewrite, authority: a }) };
}

/** The route's and its destinations' header operations (Envoy route and ClusterWeight
 * `*_headers_to_add/remove`); undefined when there are none. Destination hosts are FQDNs here
 * (the config layers resolved them). */
export function routeHeadersOf(r: HttpRoute): RouteHeaders | undefined {
  const destinations: DestinationHeaderOps[] = r.route.flatMap((d) => {
    const h = d.headers;
    if (!h) return [];
    return [Object.freeze({
      service: d.destination.host,
      subset: d.destination.subset,
      ...(h.request ? { request: h.request } : {}),
      ...(h.response ? { response: h.response } : {}),
      ...(h.authority !== undefined ? { authority: h.authority } : {}),
    })];
  });
  const own = r.headers;
  if (!own?.request && !own?.response && destinations.length === 0) return undefined;
  return Object.freeze({
    ...(own?.request ? { request: own.request } : {}),
    ...(own?.response ? { response: own.response } : {}),
    ...(destinations.length ? { destinations } : {}),
    ...(destinations.length && r.route.length === 1 ? { single: true } : {}),
  });
}
