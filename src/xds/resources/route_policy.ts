/**
 * RouteAction `timeout` and `retry_policy` → the data path's per-route policy
 * (src/core/route_policy.ts), and a rule's match → the policy's request match. Conditions weft's
 * proxy does not implement (e.g. envoy-ratelimited, retriable-headers) are left out rather than
 * NACKed, so the rest of the policy applies; istiod's default gRPC-status ones (unavailable,
 * cancelled) are kept and act on HTTP/2 upstreams.
 */
import type { Duration } from "@bufbuild/protobuf/wkt";
import type { RouteAction } from "../gen/envoy/config/route/v3/route_components_pb.ts";
import {
  type RequestMatch,
  RETRY_CONDITIONS,
  type RetryPolicy,
  type RouteCors,
  type RouteFault,
  type RouteMirror,
  type RouteReply,
  type RouteRewrite,
  type RouteStringMatch,
} from "../../core/mod.ts";
import type { Route } from "../gen/envoy/config/route/v3/route_components_pb.ts";
import { invalid } from "./resource_type.ts";
import type { RuleHeaders } from "./route_headers.ts";
import type { HeaderMatch, RouteMatch } from "./route.ts";

export interface RulePolicy {
  readonly timeoutMs: number | undefined;
  readonly retries: RetryPolicy | undefined;
  /** The route's HTTPFault (typed_per_filter_config) when it is what istiod's translateFault
   * writes (a fixed delay and/or an HTTP or gRPC abort, percentages, nothing else). */
  readonly fault?: RouteFault;
  /** RouteAction redirect / direct_response: the route answers itself. */
  readonly reply?: RouteReply;
  /** request_mirror_policies. */
  readonly mirrors?: readonly RouteMirror[];
  /** prefix_rewrite / regex_rewrite / host_rewrite_literal. */
  readonly rewrite?: RouteRewrite;
  /** The retry policy is istiod's default (what it sends on a route whose VirtualService sets
   * no retries): it does not by itself send the port through the L7 proxy. */
  readonly defaultRetries?: boolean;
  /** RouteAction `cluster_not_found_response_code` when not Envoy's default 503. */
  readonly clusterNotFoundStatus?: 404 | 500;
  /** Route and weighted-cluster header operations (route_headers.ts). */
  readonly headers?: RuleHeaders;
  /** The route's CorsPolicy (typed_per_filter_config, route_cors.ts). */
  readonly cors?: RouteCors;
}

/** istiod's retry_on when no retries are set (istio/istio route/retry/retry.go). */
const ISTIO_DEFAULT_ON =
  "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";
const PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts";

function ms(d: Duration | undefined): number | undefined {
  if (!d) return undefined;
  return Number(d.seconds) * 1000 + d.nanos / 1e6;
}

const KNOWN: readonly string[] = RETRY_CONDITIONS;
const ENVOY_DEFAULT_TIMEOUT_MS = 15_000;

const PER = { HUNDRED: 10_000, TEN_THOUSAND: 100, MILLION: 1 } as const;

/** Proto-JSON Duration ("0.300s") → ms. */
function jsonMs(v: unknown): number | undefined {
  const m = typeof v === "string" ? /^(\d+(?:\.\d+)?)s$/.exec(v) : null;
  return m ? Number(m[1]) * 1000 : undefined;
}

/** A per-route HTTPFault (proto JSON, as http_filters.ts decodes it) as a route fault, or
 * undefined when it uses more than istiod's translateFault writes (headers, header-controlled
 * faults, max_active_faults, rate limits): such a fault stays a gated filter (route_scope.ts). */
export function routeFaultOf(cfg: unknown): RouteFault | undefined {
  type Pct = { numerator?: number; denominator?: keyof typeof PER };
  const c = cfg as {
    delay?: { fixedDelay?: string; percentage?: Pct; [k: string]: unknown };
    abort?: { httpStatus?: number; grpcStatus?: number; percentage?: Pct; [k: string]: unknown };
    [k: string]: unknown;
  };
  if (!c || Object.keys(c).some((k) => k !== "delay" && k !== "abort")) return undefined;
  // F1: an unset percentage is numerator 0 (never fires); above the denominator, always.
  const pm = (p: Pct | undefined) =>
    Math.min(1_000_000, (p?.numerator ?? 0) * (PER[p?.denominator ?? "HUNDRED"] ?? NaN));
  const d = c.delay, ab = c.abort;
  const delayMs = jsonMs(d?.fixedDelay);
  if (
    d &&
    (delayMs === undefined || Object.keys(d).some((k) => k !== "fixedDelay" && k !== "percentage"))
  ) {
    return undefined;
  }
  const abortKeys = ["httpStatus", "grpcStatus", "percentage"];
  if (
    ab && ((ab.httpStatus === undefined) === (ab.grpcStatus === undefined) ||
      Object.keys(ab).some((k) => !abortKeys.includes(k)))
  ) return undefined;
  if (!d && !ab) return undefined;
  const out: RouteFault = {
    ...(d ? { delay: { ms: delayMs!, perMillion: pm(d.percentage) } } : {}),
    ...(ab
      ? {
        abort: {
          httpStatus: ab.httpStatus ?? 200,
          ...(ab.grpcStatus !== undefined ? { grpcStatus: ab.grpcStatus } : {}),
          perMillion: pm(ab.percentage),
        },
      }
      : {}),
  };
  const nums = [out.delay?.perMillion ?? 0, out.abort?.perMillion ?? 0];
  return nums.every((n) => Number.isFinite(n) && n >= 0) ? out : undefined;
}

const REDIRECT_STATUS = [301, 302, 303, 307, 308];

/** A route whose action is a redirect or a direct response, as the reply the proxy makes; the
 * redirect rewrites weft cannot make (prefix_rewrite, regex_rewrite, strip_query) are refused. */
export function routeReplyOfAction(r: Route, what: string): RouteReply | undefined {
  const a = r.action;
  if (a.case === "directResponse") {
    const b = a.value.body?.specifier;
    if (b && b.case !== "inlineString" && b.case !== "inlineBytes") {
      throw invalid(what, `direct_response body ${b.case} is not supported (inline only)`);
    }
    const body = !b
      ? ""
      : typeof b.value === "string"
      ? b.value
      : new TextDecoder().decode(b.value);
    if (a.value.status < 200 || a.value.status > 599) {
      throw invalid(what, `direct_response status ${a.value.status} is out of range`);
    }
    return { kind: "direct", status: a.value.status, body };
  }
  if (a.case !== "redirect") return undefined;
  const v = a.value;
  const path = v.pathRewriteSpecifier;
  if ((path.case && path.case !== "pathRedirect") || v.stripQuery) {
    throw invalid(what, "redirect prefix_rewrite, regex_rewrite and strip_query are not supported");
  }
  const code = REDIRECT_STATUS[v.responseCode];
  if (code === undefined) throw invalid(what, `redirect response code ${v.responseCode} unknown`);
  const sc = v.schemeRewriteSpecifier;
  const scheme = sc.case === "schemeRedirect"
    ? sc.value
    : sc.case === "httpsRedirect" && sc.value
    ? "https"
    : undefined;
  return {
    kind: "redirect",
    code,
    ...(path.case === "pathRedirect" ? { uri: path.value } : {}),
    ...(v.hostRedirect ? { authority: v.hostRedirect } : {}),
    ...(scheme ? { scheme } : {}),
    ...(v.portRedirect ? { port: v.portRedirect } : {}),
  };
}

/** request_mirror_policies → mirrors: the cluster name's service and subset (Istio's
 * `outbound|<port>|<subset>|<fqdn>`; another name is taken as a service host), the runtime
 * fraction's default (absent = every request, S7). cluster_header is refused. */
export function mirrorsOf(a: RouteAction, what: string): RouteMirror[] {
  return a.requestMirrorPolicies.map((m) => {
    if (!m.cluster) {
      throw invalid(what, "request mirror without a cluster (cluster_header unsupported)");
    }
    const parts = m.cluster.split("|");
    const [service, subset] = parts.length === 4
      ? [parts[3]!, parts[2] || undefined]
      : [m.cluster, undefined];
    const f = m.runtimeFraction?.defaultValue;
    const perMillion = f
      ? Math.min(1_000_000, f.numerator * ([10_000, 100, 1][f.denominator] ?? NaN))
      : 1_000_000;
    if (!Number.isFinite(perMillion)) {
      throw invalid(what, "request mirror fraction: unknown denominator");
    }
    return { route: { service, subset }, perMillion };
  });
}

/** A literal regex prefix `^<escaped text>` → the text, or undefined. */
function literalPrefix(re: string): string | undefined {
  if (!re.startsWith("^")) return undefined;
  let out = "";
  for (let i = 1; i < re.length; i++) {
    const ch = re[i]!;
    if (ch === "\\") {
      const n = re[++i];
      if (n === undefined || /[A-Za-z0-9]/.test(n)) return undefined;
      out += n;
    } else if (/[.*+?^${}()|[\]]/.test(ch)) return undefined;
    else out += ch;
  }
  return out;
}

/** The RouteAction's path and host rewrite, with the route's own prefix match (`matchPrefix`;
 * undefined for a path or regex match). Rewrites weft cannot make are refused. */
export function rewriteOf(
  a: RouteAction,
  what: string,
  matchPrefix: string | undefined,
  exactPath: boolean,
): RouteRewrite | undefined {
  let uri: string | undefined, prefix: string | undefined;
  if (a.prefixRewrite) {
    if (matchPrefix === undefined && !exactPath) {
      throw invalid(what, "prefix_rewrite needs a prefix or path match");
    }
    uri = a.prefixRewrite;
    prefix = matchPrefix;
  } else if (a.regexRewrite) {
    const re = a.regexRewrite.pattern?.regex ?? "";
    uri = a.regexRewrite.substitution;
    if (re !== "^.*$" && re !== ".*") {
      prefix = literalPrefix(re);
      if (prefix === undefined) {
        throw invalid(what, `regex_rewrite ${JSON.stringify(re)}: only ^<literal prefix> or ^.*$`);
      }
    }
  }
  const h = a.hostRewriteSpecifier;
  const authority = h.case === "hostRewriteLiteral" ? h.value : undefined;
  if (uri === undefined && authority === undefined) return undefined;
  return {
    ...(uri !== undefined ? { uri } : {}),
    ...(prefix !== undefined ? { prefix } : {}),
    ...(authority !== undefined ? { authority } : {}),
  };
}

export function rulePolicyOf(
  a: RouteAction | undefined,
  what: string,
  fault?: RouteFault,
  reply?: RouteReply,
  match?: { readonly prefix?: string; readonly path?: string },
  headers?: RuleHeaders,
): RulePolicy | undefined {
  if (!a) {
    // A route that answers itself: no upstream, so no timeout or retries.
    return reply || fault
      ? {
        timeoutMs: undefined,
        retries: undefined,
        ...(fault ? { fault } : {}),
        ...(reply ? { reply } : {}),
        // The route's response operations finalize its own reply, as Envoy's router does.
        ...(reply && headers ? { headers } : {}),
      }
      : undefined;
  }
  const t = ms(a.timeout);
  if (t !== undefined && (!Number.isFinite(t) || t < 0)) throw invalid(what, "negative timeout");
  // 0 = disabled (istiod sends it on every route: Istio's default); absent = Envoy's own default,
  // 15 s (RouteAction.timeout, l7-semantics S7), as a control plane other than istiod may leave it.
  const timeoutMs = a.timeout === undefined ? ENVOY_DEFAULT_TIMEOUT_MS : t ? t : undefined;
  const rp = a.retryPolicy;
  let retries: RetryPolicy | undefined;
  let defaulted = false;
  if (rp) {
    const on: string[] = [];
    for (const c of rp.retryOn.split(",").map((x) => x.trim())) {
      if (KNOWN.includes(c)) on.push(c);
      else if (c === "retriable-status-codes") on.push(...rp.retriableStatusCodes.map(String));
    }
    const attempts = rp.numRetries ?? 1; // Envoy's default
    const perTry = ms(rp.perTryTimeout);
    const base = ms(rp.retryBackOff?.baseInterval);
    const previousHosts = rp.retryHostPredicate.some((p) => p.name === PREVIOUS_HOSTS);
    if (attempts > 0 && on.length > 0) {
      retries = {
        attempts: Math.min(attempts, 100),
        perTryTimeoutMs: perTry ? perTry : undefined,
        retryOn: on,
        ...(base ? { backoffBaseMs: base } : {}),
        ...(previousHosts ? { previousHosts } : {}),
      };
      defaulted = attempts === 2 && rp.retryOn === ISTIO_DEFAULT_ON &&
        // Istio before 1.24 also listed 503 in its default.
        rp.retriableStatusCodes.every((c) => c === 503) && !perTry && !base;
    }
  }
  const mirrors = a.requestMirrorPolicies?.length ? mirrorsOf(a, what) : undefined;
  const rewrite = a.hostRewriteSpecifier
    ? rewriteOf(a, what, match?.prefix, match?.path !== undefined)
    : undefined;
  // SERVICE_UNAVAILABLE (0) = 503, NOT_FOUND (1), INTERNAL_SERVER_ERROR (2).
  const clusterNotFoundStatus = ([undefined, 404, 500] as const)[a.clusterNotFoundResponseCode];
  if (
    timeoutMs === undefined && retries === undefined && !fault && !reply && !mirrors &&
    !rewrite && !clusterNotFoundStatus && !headers
  ) {
    return undefined;
  }
  return {
    timeoutMs,
    retries,
    ...(defaulted ? { defaultRetries: true } : {}),
    ...(fault ? { fault } : {}),
    ...(reply ? { reply } : {}),
    ...(mirrors ? { mirrors } : {}),
    ...(rewrite ? { rewrite } : {}),
    ...(clusterNotFoundStatus ? { clusterNotFoundStatus } : {}),
    ...(headers ? { headers } : {}),
  };
}

function one(m: HeaderMatch): RouteStringMatch | null {
  if ("exact" in m) return { exact: m.exact };
  if ("prefix" in m) return { prefix: m.prefix };
  if ("regex" in m) return { regex: m.regex };
  return null;
}

function map(o: Readonly<Record<string, HeaderMatch>> | undefined) {
  return o && Object.fromEntries(Object.entries(o).map(([k, v]) => [k, one(v)]));
}

/** A rule's match (one Envoy route) on the listener's `port`. */
export function requestMatchOfRule(m: RouteMatch, port: number): RequestMatch {
  const uri: RouteStringMatch | undefined = m.path !== undefined
    ? { exact: m.path }
    : m.regex !== undefined
    ? { regex: m.regex }
    : m.prefix
    ? { prefix: m.prefix }
    : undefined;
  const out: Record<string, unknown> = { port };
  if (uri) out.uri = uri;
  if (m.ignoreUriCase) out.ignoreUriCase = true;
  for (const k of ["method", "authority", "scheme"] as const) {
    const v = m[k] ? one(m[k]) : null;
    if (v) out[k] = v;
  }
  if (m.headers) out.headers = map(m.headers);
  if (m.withoutHeaders) out.withoutHeaders = map(m.withoutHeaders);
  if (m.queryParams) out.queryParams = map(m.queryParams);
  return out as RequestMatch;
}
