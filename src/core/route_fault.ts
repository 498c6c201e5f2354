/**
 * Fault injection on the request's route (Istio VirtualService `fault`, Envoy's per-route
 * HTTPFault; l7-semantics §3): the outbound proxy applies the fault of the route the request
 * takes (route_policy.ts, first match wins, as Envoy reads a route's typed_per_filter_config),
 * before the request goes upstream and before the route's timeout starts, as Envoy's fault filter
 * runs before the router. The delay is drawn first, then the abort independently (F4, F14); a
 * delay alone continues (F6); the abort is `fault filter abort` with details
 * `fault_filter_abort`, or for a gRPC status HTTP 200 with that grpc-status (F5). Percentages are
 * per million (Istio's `percentage.value` × 10 000, F15). The request body is not read meanwhile
 * (back-pressure).
 */
import type { HttpRequestContext, LocalResponse } from "./filter_api.ts";
import { metrics } from "./metrics.ts";
import type { RouteFault, RoutePolicy, RouteReply } from "./route_policy.ts";
import { applyOps, type HeaderOps } from "./route_headers.ts";
import { HeaderList } from "./header_map.ts";

const injected = metrics.counter(
  "weft_http_faults_injected_total",
  "Faults injected by route fault policies (Envoy's fault.delays_injected/aborts_injected).",
  ["kind"],
);

const fires = (perMillion: number, random: () => number): boolean =>
  perMillion > 0 && random() * 1_000_000 < perMillion;

const ABORT_BODY = "fault filter abort";

function abortReply(a: NonNullable<RouteFault["abort"]>): LocalResponse {
  return a.grpcStatus !== undefined
    ? {
      status: 200,
      headers: [["grpc-message", ABORT_BODY]],
      body: "",
      details: "fault_filter_abort",
      grpcStatus: a.grpcStatus,
    }
    : { status: a.httpStatus, headers: [], body: ABORT_BODY, details: "fault_filter_abort" };
}

/** The abort reply, if the fault aborts this request; a Promise only when a delay fires. */
export function injectFault(
  f: RouteFault,
  random: () => number = Math.random,
): LocalResponse | undefined | Promise<LocalResponse | undefined> {
  const abort = (): LocalResponse | undefined => {
    if (!f.abort || !fires(f.abort.perMillion, random)) return undefined;
    injected.inc({ kind: "abort" });
    return abortReply(f.abort);
  };
  if (!f.delay || !fires(f.delay.perMillion, random)) return abort();
  injected.inc({ kind: "delay" });
  const ms = f.delay.ms;
  return new Promise((resolve) => setTimeout(() => resolve(abort()), ms));
}

/** The reply of a route that answers itself: Envoy's direct_response (the body as text/plain) or
 * redirect (`location` built from the request with the route's replacements: path with the
 * request's query kept unless the new one has its own, authority, scheme, port). The route's
 * response header operations apply to it, as Envoy's router finalizes a direct response's
 * headers with the route's (`response_headers_to_add/remove`), then a CORS request's. */
export function routeReply(
  r: RouteReply,
  ctx: HttpRequestContext,
  routeOps?: HeaderOps,
): LocalResponse {
  if (r.kind === "local") return r.response;
  if (r.kind === "direct") {
    return {
      status: r.status,
      headers: withAfter(r.body ? [["content-type", "text/plain"]] : [], routeOps, r.after),
      body: r.body,
      details: "direct_response",
    };
  }
  const q = ctx.path.indexOf("?");
  const path = r.uri === undefined
    ? ctx.path
    : r.uri.includes("?") || q < 0
    ? r.uri
    : r.uri + ctx.path.slice(q);
  const scheme = r.scheme ?? ctx.scheme;
  let host = r.authority ?? ctx.authority;
  const bare = host.replace(/:\d+$/, "");
  const requestPort = /:(\d+)$/.exec(ctx.authority)?.[1];
  if (r.port !== undefined) host = `${bare}:${r.port}`;
  else if (r.requestPort && requestPort !== undefined) host = `${bare}:${requestPort}`;
  else if (r.scheme !== undefined && r.scheme !== ctx.scheme) host = bare; // the new scheme's default
  return {
    status: r.code,
    headers: withAfter([["location", `${scheme}://${host}${path}`]], routeOps, r.after),
    body: "",
    details: "direct_response",
  };
}

/** A reply's headers with the route's operations, then `after` (a CORS request's,
 * route_cors.ts), applied over them. */
function withAfter(
  headers: readonly (readonly [string, string])[],
  routeOps: HeaderOps | undefined,
  after: HeaderOps | undefined,
): readonly (readonly [string, string])[] {
  if (!after && !routeOps) return headers;
  const h = new HeaderList(headers);
  applyOps(routeOps, h);
  applyOps(after, h);
  return h.entries();
}

/** What the request's route does before the upstream: its fault (a delay, an abort), then its own
 * reply (redirect, direct response). A local reply ends the request; a Promise only when a
 * delay fires. */
export function beforeUpstream(
  policy: RoutePolicy,
  ctx: HttpRequestContext,
): LocalResponse | undefined | Promise<LocalResponse | undefined> {
  const reply = policy.reply;
  const f = policy.fault ? injectFault(policy.fault) : undefined;
  const ops = policy.headers?.response;
  if (f instanceof Promise) return reply ? f.then((a) => a ?? routeReply(reply, ctx, ops)) : f;
  return f ?? (reply ? routeReply(reply, ctx, ops) : undefined);
}

/** Applies the route's rewrite to the request before it goes upstream: the uri prefix the
 * request matched (the first of the route's prefix matches the path starts with), or the whole
 * path, keeping the query (Envoy's prefix_rewrite); the authority and Host
 * (host_rewrite_literal). */
export function rewriteRequest(policy: RoutePolicy, ctx: HttpRequestContext): void {
  const rw = policy.rewrite;
  if (!rw) return;
  const c = ctx as { path: string; authority: string };
  if (rw.uri !== undefined) {
    const q = ctx.path.indexOf("?");
    const path = q < 0 ? ctx.path : ctx.path.slice(0, q);
    const query = q < 0 ? "" : ctx.path.slice(q);
    let prefix = rw.prefix !== undefined && path.startsWith(rw.prefix) ? rw.prefix : undefined;
    for (const m of rw.prefix !== undefined ? [] : policy.match) {
      const u = m.uri;
      if (u && "prefix" in u && path.startsWith(u.prefix)) {
        prefix = u.prefix;
        break;
      }
    }
    const next = prefix !== undefined ? rw.uri + path.slice(prefix.length) : rw.uri;
    c.path = (next.startsWith("/") ? next : "/" + next) + query;
  }
  if (rw.authority !== undefined) {
    c.authority = rw.authority;
    if (ctx.requestHeaders.has("host")) ctx.requestHeaders.set("host", rw.authority);
  }
}
