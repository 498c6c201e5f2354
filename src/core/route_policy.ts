/**
 * Per-route request policy of an L7 service: Istio VirtualService `http` routes' `timeout` and
 * `retries` (Envoy RouteAction `timeout` and `retry_policy`). Routes are tried in order and the
 * first whose match fits the request is the request's route, as in Envoy: its policy applies
 * (a route with neither keeps weft's single attempt). Routes a VirtualService sets no `retries` on
 * carry Istio's default retry policy (`DEFAULT_RETRY_POLICY`, or MeshConfig
 * `defaultHttpRetryPolicy`), marked `defaultRetries`: it applies on a port the L7 proxy serves for
 * another reason (filters, a route's own timeout or retries) but does not send a port there by
 * itself, as ztunnel forwards bytes and leaves retries to an L7 proxy. Matches are plain data
 * (config layers build them); regular expressions are compiled once per match object.
 */
import type { HttpRequestContext, LocalResponse, RouteChoice } from "./filter_api.ts";
import type { HeaderOps, RouteHeaders } from "./route_headers.ts";
import type { RouteCors } from "./route_cors.ts";
import { compileFullRegex } from "./re2_match.ts";

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
  /** Envoy's `previous_hosts` retry host predicate (Istio's default, `retryIgnorePreviousHosts`):
   * a retry prefers an endpoint no earlier try of the request used, when the service has one. */
  readonly previousHosts?: boolean;
}

/** Istio's retry policy for a route whose VirtualService sets no `retries` (istio/istio
 * pilot/pkg/networking/core/route/retry/retry.go, DefaultPolicy): 2 retries on
 * `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes` with the
 * previous_hosts predicate (host selection up to 5 attempts). Its retriable_status_codes list is
 * empty since Istio 1.24 ("exclude unsafe 503 from default RetryPolicy", istio/istio#52111):
 * an upstream's own 503 is not retried by default, only failures before a response (the
 * reference's S14 lists the same four conditions; older Istio retried 503 too). */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  attempts: 2,
  perTryTimeoutMs: undefined,
  retryOn: Object.freeze(["connect-failure", "refused-stream", "unavailable", "cancelled"]),
  previousHosts: true,
});

/** A route's fault injection (Istio VirtualService `fault`, Envoy's per-route HTTPFault): a delay
 * and an abort drawn independently, the abort after the delay (route_fault.ts). */
export interface RouteFault {
  readonly delay?: { readonly ms: number; readonly perMillion: number };
  /** `grpcStatus` set: Envoy's gRPC abort (HTTP 200 with that grpc-status). */
  readonly abort?: {
    readonly httpStatus: number;
    readonly grpcStatus?: number;
    readonly perMillion: number;
  };
}

/** A route that answers itself (Istio `redirect` / `directResponse`, Envoy's RouteAction
 * redirect / direct_response): route_fault.ts `routeReply`. `after`: response headers set last
 * (a CORS request's, route_cors.ts); `local`: a CORS preflight's answer. */
export type RouteReply =
  | {
    readonly kind: "direct";
    readonly status: number;
    readonly body: string;
    readonly after?: HeaderOps;
  }
  | { readonly kind: "local"; readonly response: LocalResponse }
  | {
    readonly kind: "redirect";
    readonly after?: HeaderOps;
    readonly code: number;
    readonly uri?: string;
    readonly authority?: string;
    readonly scheme?: string;
    readonly port?: number;
    /** Keep the request's port (Istio derivePort FROM_REQUEST_PORT). */
    readonly requestPort?: boolean;
  };

/** A route's request mirror (Istio `mirror`/`mirrors`, Envoy request_mirror_policies). */
export interface RouteMirror {
  readonly route: RouteChoice;
  /** Share of requests mirrored, per million (absent percentage = all). */
  readonly perMillion: number;
}

/** A route's request rewrite (Istio `rewrite`, Gateway API URLRewrite, Envoy prefix_rewrite and
 * host_rewrite_literal): route_fault.ts `rewriteRequest`. */
export interface RouteRewrite {
  /** Replaces `prefix` (or the route's matched uri prefix), else the whole path; the query
   * stays. */
  readonly uri?: string;
  /** The prefix `uri` replaces, when not the route's prefix match (Gateway API
   * ReplacePrefixMatch, RouteAction regex_rewrite `^<prefix>`). */
  readonly prefix?: string;
  readonly authority?: string;
}

export interface RoutePolicy {
  /** Empty = every request. */
  readonly match: readonly RequestMatch[];
  /** Whole request, every try included; undefined = none (Istio's default). */
  readonly timeoutMs: number | undefined;
  readonly retries: RetryPolicy | undefined;
  /** `retries` is the mesh's default, not the route's own: it applies when the port is served by
   * the L7 proxy anyway and does not make it so (l7_dispatch.ts `l7Outbound`). */
  readonly defaultRetries?: boolean;
  /** Faults to inject on this route's requests before they go upstream. */
  readonly fault?: RouteFault;
  /** The route answers the request itself (after its fault). */
  readonly reply?: RouteReply;
  /** Copies of the request sent elsewhere, not awaited (route_mirror.ts). */
  readonly mirrors?: readonly RouteMirror[];
  /** The request as it goes upstream (and to mirrors): path and authority rewritten. */
  readonly rewrite?: RouteRewrite;
  /** Header operations on the request and the response, the route's and its destinations'
   * (route_headers.ts). */
  readonly headers?: RouteHeaders;
  /** The status for a destination the node has no service or subset for (Envoy's
   * RouteAction `cluster_not_found_response_code`): 503 when absent; a Gateway API route's invalid
   * backend answers 500. */
  readonly clusterNotFoundStatus?: 404 | 500 | 503;
  /** The route's CORS policy (route_cors.ts). */
  readonly cors?: RouteCors;
}

/** A route with only the default retry policy, for services with no VirtualService routes. */
export function defaultRoute(retries: RetryPolicy | undefined = DEFAULT_RETRY_POLICY): RoutePolicy {
  return Object.freeze({ match: [], timeoutMs: undefined, retries, defaultRetries: true });
}

/** Whether a route's policy is its own (a timeout, or retries it set): such a route needs the L7
 * proxy; a default retry policy alone does not. */
export function ownPolicy(r: RoutePolicy): boolean {
  return r.timeoutMs !== undefined || (r.retries !== undefined && !r.defaultRetries) ||
    r.fault !== undefined || r.reply !== undefined || r.mirrors !== undefined ||
    r.rewrite !== undefined || r.headers !== undefined || r.cors !== undefined;
}

/** What a request carries that routes match on, besides its context. */
export interface RouteInput {
  readonly port: number;
  readonly sourceLabels?: Readonly<Record<string, string>> | undefined;
}

const regexes = new WeakMap<object, (s: string) => boolean>();
const NOTHING = (): boolean => false;

function fullRegex(m: { readonly regex: string }): (s: string) => boolean {
  let re = regexes.get(m);
  if (!re) {
    // Envoy's safe_regex: RE2, matching the whole value in time linear in it (re2_match.ts); an
    // invalid one (refused by config validation) matches nothing.
    const c = compileFullRegex(m.regex);
    re = typeof c === "function" ? c : NOTHING;
    regexes.set(m, re);
  }
  return re;
}

export function stringMatches(m: RouteStringMatch, v: string, ignoreCase = false): boolean {
  if ("exact" in m) return ignoreCase ? v.toLowerCase() === m.exact.toLowerCase() : v === m.exact;
  if ("prefix" in m) {
    return ignoreCase ? v.toLowerCase().startsWith(m.prefix.toLowerCase()) : v.startsWith(m.prefix);
  }
  return fullRegex(m)(v);
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
  if (m.headers === undefined && m.withoutHeaders === undefined && m.queryParams === undefined) {
    return true; // the common match (a uri, a method, a port): no closure made per request
  }
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

/** The request's route (the first that matches) if it has a timeout, retries or a fault. */
export function routePolicyFor(
  routes: readonly RoutePolicy[] | undefined,
  ctx: HttpRequestContext,
  at: RouteInput,
): RoutePolicy | undefined {
  if (!routes) return undefined;
  for (const r of routes) {
    if (anyMatches(r.match, ctx, at)) {
      return r.timeoutMs !== undefined || r.retries !== undefined || r.fault || r.reply ||
          r.mirrors || r.rewrite || r.headers || r.cors
        ? r
        : undefined;
    }
  }
  return undefined;
}

/** No match list (a catch-all route) or one of its matches (a loop: no closure per request). */
function anyMatches(
  match: readonly RequestMatch[],
  ctx: HttpRequestContext,
  at: RouteInput,
): boolean {
  if (match.length === 0) return true;
  for (let i = 0; i < match.length; i++) if (requestMatches(match[i]!, ctx, at)) return true;
  return false;
}
