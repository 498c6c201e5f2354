/**
 * Per-route request policy of an L7 service: Istio VirtualService `http` routes' `timeout` and
 * `retries` (Envoy RouteAction `timeout` and `retry_policy`). Routes are tried in order and the
 * first whose match fits the request is the request's route, as in Envoy: its policy applies
 * (a route with neither keeps weft's single attempt). Matches are plain data (config layers
 * build them); regular expressions are compiled once per match object.
 */
import type { HttpRequestContext } from "./filter_api.ts";

export type RouteStringMatch =
  | { readonly exact: string }
  | { readonly prefix: string }
  | { readonly regex: string };

/** One Istio HTTPMatchRequest; every field set must match. `null` = the header is present. */
export interface RequestMatch {
  readonly uri?: RouteStringMatch;
  readonly ignoreUriCase?: boolean;
  readonly method?: RouteStringMatch;
  readonly authority?: RouteStringMatch;
  readonly scheme?: RouteStringMatch;
  /** Lower-case names. */
  readonly headers?: Readonly<Record<string, RouteStringMatch | null>>;
  readonly withoutHeaders?: Readonly<Record<string, RouteStringMatch | null>>;
  readonly queryParams?: Readonly<Record<string, RouteStringMatch | null>>;
  /** The service port the request came to. */
  readonly port?: number;
  /** Labels the calling workload carries (known on the source node). */
  readonly sourceLabels?: Readonly<Record<string, string>>;
}

/** Envoy retry_on conditions weft implements (router filter `x-envoy-retry-on`, and the gRPC ones
 * of `x-envoy-retry-grpc-on`, read from the grpc-status of a headers-only response on HTTP/2
 * upstreams: route_exchange.ts GRPC_RETRY_CONDITIONS), plus plain status codes
 * (`retriable-status-codes`). */
export const RETRY_CONDITIONS = [
  "5xx",
  "gateway-error",
  "reset",
  "connect-failure",
  "refused-stream",
  "retriable-4xx",
  "cancelled",
  "deadline-exceeded",
  "internal",
  "resource-exhausted",
  "unavailable",
] as const;

export interface RetryPolicy {
  /** Retries after the first try (Istio `attempts`, Envoy `num_retries`). */
  readonly attempts: number;
  readonly perTryTimeoutMs: number | undefined;
  /** RETRY_CONDITIONS names and status codes as strings ("503"). */
  readonly retryOn: readonly string[];
  /** Back-off base interval (Envoy's default 25 ms; the cap is 10 times it). */
  readonly backoffBaseMs?: number;
}

export interface RoutePolicy {
  /** Empty = every request. */
  readonly match: readonly RequestMatch[];
  /** Whole request, every try included; undefined = none (Istio's default). */
  readonly timeoutMs: number | undefined;
  readonly retries: RetryPolicy | undefined;
}

/** What a request carries that routes match on, besides its context. */
export interface RouteInput {
  readonly port: number;
  readonly sourceLabels?: Readonly<Record<string, string>> | undefined;
}

const regexes = new WeakMap<object, RegExp>();

function fullRegex(m: { readonly regex: string }): RegExp {
  let re = regexes.get(m);
  if (!re) {
    // Envoy's safe_regex matches the whole value; an invalid one (refused by config
    // validation) matches nothing.
    try {
      re = new RegExp(`^(?:${m.regex})$`, "s");
    } catch {
      re = /(?!)/;
    }
    regexes.set(m, re);
  }
  return re;
}

export function stringMatches(m: RouteStringMatch, v: string, ignoreCase = false): boolean {
  if ("exact" in m) return ignoreCase ? v.toLowerCase() === m.exact.toLowerCase() : v === m.exact;
  if ("prefix" in m) {
    return ignoreCase ? v.toLowerCase().startsWith(m.prefix.toLowerCase()) : v.startsWith(m.prefix);
  }
  return fullRegex(m).test(v);
}

function mapMatches(
  want: Readonly<Record<string, RouteStringMatch | null>>,
  get: (name: string) => string | undefined,
): boolean {
  for (const name in want) {
    const v = get(name);
    const m = want[name]!;
    if (v === undefined || (m !== null && !stringMatches(m, v))) return false;
  }
  return true;
}

function queryOf(path: string): URLSearchParams | undefined {
  const q = path.indexOf("?");
  return q < 0 ? undefined : new URLSearchParams(path.slice(q + 1));
}

export function requestMatches(m: RequestMatch, ctx: HttpRequestContext, at: RouteInput): boolean {
  if (m.port !== undefined && m.port !== at.port) return false;
  if (m.sourceLabels) {
    for (const k in m.sourceLabels) {
      if (at.sourceLabels?.[k] !== m.sourceLabels[k]) return false;
    }
  }
  const q = ctx.path.indexOf("?");
  const path = q < 0 ? ctx.path : ctx.path.slice(0, q);
  if (m.uri && !stringMatches(m.uri, path, m.ignoreUriCase)) return false;
  if (m.method && !stringMatches(m.method, ctx.method)) return false;
  if (m.authority && !stringMatches(m.authority, ctx.authority)) return false;
  if (m.scheme && !stringMatches(m.scheme, ctx.scheme)) return false;
  const header = (n: string) => ctx.requestHeaders.get(n) ?? undefined;
  if (m.headers && !mapMatches(m.headers, header)) return false;
  if (m.withoutHeaders) {
    for (const name in m.withoutHeaders) {
      if (mapMatches({ [name]: m.withoutHeaders[name]! }, header)) return false;
    }
  }
  if (m.queryParams) {
    const params = queryOf(ctx.path);
    if (!mapMatches(m.queryParams, (n) => params?.get(n) ?? undefined)) return false;
  }
  return true;
}

/** The request's route (the first that matches) if it has a timeout or retries. */
export function routePolicyFor(
  routes: readonly RoutePolicy[] | undefined,
  ctx: HttpRequestContext,
  at: RouteInput,
): RoutePolicy | undefined {
  if (!routes) return undefined;
  for (const r of routes) {
    if (r.match.length === 0 || r.match.some((m) => requestMatches(m, ctx, at))) {
      return r.timeoutMs !== undefined || r.retries !== undefined ? r : undefined;
    }
  }
  return undefined;
}
