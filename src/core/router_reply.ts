/**
 * A CORS request's headers on weft's router replies. Envoy's cors filter sits after the fault
 * filter and before the router in istiod's chain (pilot/pkg/networking/core listener_builder.go:
 * fault, cors, ..., router). It latches an allowed actual request in decodeHeaders and adds
 * `access-control-allow-origin`/`-allow-credentials`/`-expose-headers` in encodeHeaders; a local
 * reply runs every encoder filter (FilterManager::sendLocalReplyViaFilterChain →
 * encodeHeaders(nullptr, ..)), so the router's own replies (503 cluster not found, connect
 * failure, reset; 504 timeout) get those headers, while a reply made before the cors filter saw
 * the request (a fault abort, an earlier filter's reply) gets none: the filter never latched it.
 * The request paths latch the CORS operations (route_cors.ts `withCors`) under the request's key
 * (its context on HTTP/1.1, its stream on h2c); the two local-reply writers apply them to replies
 * whose details are the router's. A WeakMap: nothing to clear, and only CORS requests pay.
 */
import type { LocalResponse } from "./filter_api.ts";
import { HeaderList } from "./header_map.ts";
import { applyOps, type HeaderOps } from "./route_headers.ts";

/** Envoy's response code details of the replies its router makes (weft uses the same). */
const ROUTER_DETAILS: ReadonlySet<string> = new Set([
  "cluster_not_found",
  "upstream_connect_failure",
  "upstream_reset_before_response_started",
  "upstream_reset_before_response_started{protocol_error}",
  "upstream_response_timeout",
  "upstream_per_try_timeout",
]);

const latched = new WeakMap<object, HeaderOps>();

/** The CORS operations of an allowed actual request (the route policy's `headers.after`). */
export function latchCors(key: object, ops: HeaderOps | undefined): void {
  if (ops) latched.set(key, ops);
}

/** `r` with the request's CORS headers when the router made it. */
export function routerReply(key: object, r: LocalResponse): LocalResponse {
  const ops = latched.get(key);
  if (!ops || !ROUTER_DETAILS.has(r.details)) return r;
  const h = new HeaderList(r.headers);
  applyOps(ops, h);
  return { ...r, headers: h.entries() };
}
