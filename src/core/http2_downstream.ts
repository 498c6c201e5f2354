/**
 * HTTP/2 downstreams (h2c prior knowledge, also inside an HBONE tunnel) for the L7 proxy, on
 * weft's own HTTP/2 (src/core/h2: flow control, stream and flood limits) rather than node:http2,
 * which crashes Deno under h2c load. Each stream runs the same filter chain and is forwarded to
 * the upstream over HTTP/1.1 through the proxy's keep-alive pool (http2_to_http1.ts, with the
 * route's timeout and retries), or over HTTP/2 (http2_upstream.ts) when the upstream speaks it
 * (gRPC: trailers pass through); body phases and the response phase: http2_phases.ts.
 */
import type { Duplex } from "node:stream";
import type { HttpRequestContext, LocalResponse, PeerInfo, RouteChoice } from "./filter_api.ts";
import type { FilterChain } from "./filter_chain.ts";
import { HeaderList } from "./header_map.ts";
import type { Trailer } from "./http1_codec.ts";
import type { Upstream } from "./http1_upstream.ts";
import { errorMessage } from "./errors.ts";
import { forwardH2, type H2UpstreamPool } from "./http2_upstream.ts";
import { forwardH1 } from "./http2_to_http1.ts";
import { ErrorCode, H2ProtocolError, H2Session, type H2Stream } from "./h2/mod.ts";
import { h2HasBody } from "./body_source.ts";
import {
  bufferRequest,
  HOP_BY_HOP,
  planRequest,
  type RequestPlan,
  respondLocal,
} from "./http2_phases.ts";
import type { RoutePolicy } from "./route_policy.ts";
import { beforeUpstream, rewriteRequest } from "./route_fault.ts";
import { applyRequestHeaders } from "./route_headers.ts";
import { withCors } from "./route_cors.ts";
import { latchCors } from "./router_reply.ts";
import { mirrorRequest } from "./route_mirror.ts";
import { logger } from "./log.ts";
import { hasLowerCase, normalizePath } from "./path_normalize.ts";
import { TrailersReply } from "./trailers.ts";

const log = logger("http_proxy");
export const H2_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/** What the HTTP/2 path needs from the proxy. */
export interface H2Backend {
  readonly direction: HttpRequestContext["direction"];
  chain(): FilterChain;
  acquire(route: RouteChoice | undefined, tried?: Set<string>): Promise<Upstream>;
  release(up: Upstream): void;
  count(status: number, ctx: HttpRequestContext): void;
  nextRequestId(): string;
  /** Set when the upstream speaks HTTP/2 (gRPC, h2c services): streams stay HTTP/2 end to end. */
  readonly h2Upstream: H2UpstreamPool | undefined;
  /** Largest body buffered for body filters (body_buffer.ts). */
  readonly maxBufferedBodyBytes: number;
  /** The request's route policy (timeout, retries; route_exchange.ts, http2_upstream.ts). */
  routePolicy?(ctx: HttpRequestContext): RoutePolicy | undefined;
  /** A chosen route with no service or subset behind it → its local answer (http_proxy.ts). */
  routeReply?(route: RouteChoice, status?: number): LocalResponse | undefined;
  /** Largest request body held for a retry. */
  readonly maxReplayBytes?: number;
}

/** Serve one h2c downstream connection; `initial` holds the bytes sniffing already read (the
 * preface). Resolves when the connection is gone. */
export function serveH2(
  backend: H2Backend,
  peer: PeerInfo,
  down: Duplex,
  initial: Uint8Array,
): H2Session {
  const session = new H2Session(down, "server", {
    initialBytes: initial,
    maxConcurrentStreams: 256,
    streamWindowBytes: 256 * 1024,
    connectionWindowBytes: 1 << 20,
    maxFrameBytes: 16384,
  });
  session.onConnect((raw, _respond, stream) => {
    serveStream(backend, stream, raw, peer).catch((e) => {
      log.debug("h2 stream error", { err: errorMessage(e) });
      // A reset (RST_STREAM), never a "clean" end: the response may not have started, and an
      // END_STREAM without a HEADERS frame is a protocol error that costs the whole session.
      stream.destroy(e instanceof Error ? e : new Error(String(e)));
    });
  });
  down.resume();
  return session;
}

async function serveStream(
  b: H2Backend,
  stream: H2Stream,
  raw: Record<string, string>,
  peer: PeerInfo,
): Promise<void> {
  const headers = new HeaderList();
  for (const [k, v] of stream.headerList) if (!k.startsWith(":")) headers.add(k, v);
  const method = String(raw[":method"] ?? "GET");
  const authority = String(raw[":authority"] ?? headers.get("host") ?? "");
  const rawPath = String(raw[":path"] ?? "/");
  const path = normalizePath(rawPath, method);
  const ctx: HttpRequestContext = {
    direction: b.direction,
    method,
    path: path ?? rawPath,
    authority,
    scheme: String(raw[":scheme"] ?? "http"),
    protocol: "HTTP/2",
    requestHeaders: headers,
    peer,
    requestId: headers.get("x-request-id") ?? b.nextRequestId(),
    filterState: new Map(),
    requestBody: undefined,
    bodyFollows: h2HasBody(stream),
  };
  const malformed = badContentLength(headers)
    ? "a malformed content-length"
    : connectionSpecific(headers);
  // Istio's request normalisation (path_normalize.ts): refused with 400, as on HTTP/1.1.
  if (!malformed && (path === undefined || hasLowerCase(method))) {
    stream.resume();
    b.count(400, ctx);
    return respondLocal(stream, {
      status: 400,
      headers: [["content-type", "text/plain"]],
      body: path === undefined
        ? "a request path with %00, or not a path"
        : "method not in upper case",
      details: "path_normalization_failed",
    });
  }
  if (malformed) {
    // RFC 9113 §8.1.1: a malformed request is a stream error of type PROTOCOL_ERROR.
    log.debug("malformed h2 request", { requestId: ctx.requestId, reason: malformed });
    return void stream.destroy(new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, malformed));
  }
  if (headers.has("content-length")) {
    headers.set("content-length", headers.get("content-length")!.trim());
  }
  const chain = b.chain();
  try {
    const reqTrailers: Trailer[] = [];
    if (!await bufferRequest(stream, ctx, chain, b.maxBufferedBodyBytes, reqTrailers)) {
      return b.count(413, ctx);
    }
    const verdict = await chain.onRequest(ctx);
    if (verdict.kind === "respond") {
      stream.resume();
      b.count(verdict.response.status, ctx);
      return respondLocal(stream, verdict.response);
    }
    let policy = b.routePolicy?.(ctx);
    // CORS reads the request as it came, before the route's rewrite and header operations.
    if (policy?.cors) latchCors(stream, (policy = withCors(policy, ctx)).headers?.after);
    if (policy?.rewrite) rewriteRequest(policy, ctx);
    if (policy?.headers) applyRequestHeaders(policy.headers, verdict.route, ctx);
    if (policy?.fault || policy?.reply) {
      // The route's fault and own reply, before the upstream and its timeout (route_fault.ts).
      const f = beforeUpstream(policy, ctx);
      const abort = f instanceof Promise ? await f : f;
      if (abort) {
        stream.resume();
        b.count(abort.status, ctx);
        return respondLocal(stream, abort);
      }
    }
    const missing = verdict.route && b.routeReply?.(verdict.route, policy?.clusterNotFoundStatus);
    if (missing) {
      stream.resume();
      b.count(missing.status, ctx);
      return respondLocal(stream, missing);
    }
    let plan: RequestPlan;
    try {
      plan = await planRequest(stream, ctx, chain, reqTrailers, !b.h2Upstream);
    } catch (e) {
      if (!(e instanceof TrailersReply)) throw e;
      b.count(e.response.status, ctx);
      return respondLocal(stream, e.response);
    }
    if (policy?.mirrors && (plan.empty || plan.buffered)) {
      mirrorRequest(policy.mirrors, ctx, plan.buffered?.body, (r) => b.acquire(r));
    }
    const status = b.h2Upstream
      ? await forwardH2(
        b.h2Upstream,
        stream,
        ctx,
        verdict.route,
        chain,
        plan,
        b.maxBufferedBodyBytes,
        policy,
        b.maxReplayBytes,
      )
      : await forwardH1(b, stream, ctx, verdict.route, chain, plan, policy);
    b.count(status, ctx);
  } finally {
    chain.onDone(ctx);
  }
}

/** Malformed per RFC 9113 §8.1.1 unless every content-length value is the same integer. */
function badContentLength(h: HeaderList): boolean {
  const all = h.getAll("content-length");
  if (all.length === 0) return false;
  const v = all[0]!.trim();
  return !/^\d{1,15}$/.test(v) || all.some((x) => x.trim() !== v);
}

/** RFC 9113 §8.2.2: connection-specific fields make an HTTP/2 request malformed (what nghttp2,
 * and so Envoy, enforce); `te` may only say "trailers". The reason, or undefined. */
function connectionSpecific(h: HeaderList): string | undefined {
  for (const n of HOP_BY_HOP) if (h.has(n)) return `a connection-specific field (${n})`;
  for (const v of h.getAll("te")) {
    if (v.trim().toLowerCase() !== "trailers") return "te other than trailers";
  }
  return undefined;
}
