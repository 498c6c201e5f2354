/**
 * VirtualService http routes (as parsed here) → the data path's per-route policies (timeout,
 * retries; src/core/route_policy.ts), for weft.yaml services and for xDS nodes alike.
 */
import type { RequestMatch, RouteStringMatch } from "../core/mod.ts";
import type { RoutePolicy } from "../core/mod.ts";
import type { HttpMatch, HttpRoute, IstioStringMatch } from "./types.ts";

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
  return out as RequestMatch;
}

/** Every route in order (first match wins), or undefined when none has a timeout or retries. */
export function routePolicies(routes: readonly HttpRoute[]): RoutePolicy[] | undefined {
  if (!routes.some((r) => r.timeoutMs !== undefined || r.retries !== undefined)) return undefined;
  return routes.map((r) => ({
    match: r.match.map(requestMatchOf),
    timeoutMs: r.timeoutMs,
    retries: r.retries && {
      attempts: r.retries.attempts,
      perTryTimeoutMs: r.retries.perTryTimeoutMs,
      retryOn: r.retries.retryOn,
      ...(r.retries.backoffMs !== undefined ? { backoffBaseMs: r.retries.backoffMs } : {}),
    },
  }));
}
