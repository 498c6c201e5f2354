/**
 * HTTP/2 downstreams (h2c prior knowledge, also inside an HBONE tunnel) for the L7 proxy: a
 * node:http2 server fed the connection (`emit("connection", duplex)`, verified on Deno 2.9.6
 * with non-net Duplex streams); each stream runs the same filter chain and is forwarded to the
 * upstream over HTTP/1.1 through the proxy's keep-alive pool, or over HTTP/2 (http2_upstream.ts)
 * when the upstream speaks it (gRPC: trailers pass through).
 */
import http2 from "node:http2";
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import type { HttpRequestContext, LocalResponse, PeerInfo, RouteChoice } from "./filter_api.ts";
import type { FilterChain } from "./filter_chain.ts";
import { HeaderList } from "./header_map.ts";
import { copyBody, type Framing, framingOf, parseHead, serializeHead } from "./http1_codec.ts";
import type { ByteReader } from "./http1_codec.ts";
import { errorMessage } from "./errors.ts";
import { forwardH2, type H2UpstreamPool } from "./http2_upstream.ts";
import { logger } from "./log.ts";

const log = logger("http_proxy");
export const H2_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
]);
const NO_BODY_METHODS = new Set(["GET", "HEAD", "DELETE", "OPTIONS"]);

/** What the HTTP/2 path needs from the proxy. */
export interface H2Backend {
  readonly direction: HttpRequestContext["direction"];
  chain(): FilterChain;
  acquire(route: RouteChoice | undefined): Promise<{ stream: Duplex; reader: ByteReader }>;
  release(up: { stream: Duplex; reader: ByteReader }): void;
  count(status: number, ctx: HttpRequestContext): void;
  nextRequestId(): string;
  /** Set when the upstream speaks HTTP/2 (gRPC, h2c services): streams stay HTTP/2 end to end. */
  readonly h2Upstream: H2UpstreamPool | undefined;
}

/** One server per downstream connection: its streams share that connection's peer info
 * (`session.socket` is a proxy object, useless as a map key). */
export function createH2Server(backend: H2Backend, peer: PeerInfo): http2.Http2Server {
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    serveStream(backend, stream as http2.ServerHttp2Stream, headers, peer).catch((e) => {
      log.debug("h2 stream error", { err: errorMessage(e) });
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
  });
  return server;
}

function respondLocal(stream: http2.ServerHttp2Stream, r: LocalResponse): void {
  if (stream.destroyed || stream.headersSent) return;
  const h: http2.OutgoingHttpHeaders = { ":status": r.grpcStatus !== undefined ? 200 : r.status };
  for (const [k, v] of r.headers) h[k.toLowerCase()] = v;
  if (r.grpcStatus !== undefined) {
    h["content-type"] = "application/grpc";
    h["grpc-status"] = String(r.grpcStatus);
  }
  stream.respond(h);
  stream.end(typeof r.body === "string" ? r.body : Buffer.from(r.body));
}

async function serveStream(
  b: H2Backend,
  stream: http2.ServerHttp2Stream,
  raw: http2.IncomingHttpHeaders,
  peer: PeerInfo,
): Promise<void> {
  const headers = new HeaderList();
  for (const [k, v] of Object.entries(raw)) {
    if (k.startsWith(":") || v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) headers.add(k, String(one));
  }
  const method = String(raw[":method"] ?? "GET");
  const authority = String(raw[":authority"] ?? headers.get("host") ?? "");
  const ctx: HttpRequestContext = {
    direction: b.direction,
    method,
    path: String(raw[":path"] ?? "/"),
    authority,
    scheme: String(raw[":scheme"] ?? "http"),
    protocol: "HTTP/2",
    requestHeaders: headers,
    peer,
    requestId: headers.get("x-request-id") ?? b.nextRequestId(),
    filterState: new Map(),
    requestBody: undefined,
  };
  const chain = b.chain();
  try {
    const verdict = await chain.onRequest(ctx);
    if (verdict.kind === "respond") {
      stream.resume();
      b.count(verdict.response.status, ctx);
      return respondLocal(stream, verdict.response);
    }
    if (b.h2Upstream) {
      const status = await forwardH2(
        b.h2Upstream,
        stream,
        ctx,
        verdict.route,
        chain,
        (r) => respondLocal(stream, r),
      );
      b.count(status, ctx);
      return;
    }
    const up = await b.acquire(verdict.route).catch(() => undefined);
    if (!up) {
      b.count(503, ctx);
      return respondLocal(stream, {
        status: 503,
        headers: [],
        body: "upstream connect error",
        details: "upstream_connect_failure",
      });
    }
    const out = ctx.requestHeaders.entries().filter(([k]) => !HOP_BY_HOP.has(k));
    if (!ctx.requestHeaders.has("host")) out.unshift(["host", authority]);
    const chunked = !ctx.requestHeaders.has("content-length") && !NO_BODY_METHODS.has(method);
    if (chunked) out.push(["transfer-encoding", "chunked"]);
    up.stream.write(serializeHead(`${method} ${ctx.path} HTTP/1.1`, out));
    for await (const c of stream) {
      const buf = c as Buffer;
      if (chunked) up.stream.write(`${buf.length.toString(16)}\r\n`);
      up.stream.write(buf);
      if (chunked) up.stream.write("\r\n");
    }
    if (chunked) up.stream.write("0\r\n\r\n");
    const resRaw = await up.reader.readHead();
    if (!resRaw) {
      up.stream.destroy();
      b.count(503, ctx);
      return respondLocal(stream, {
        status: 503,
        headers: [],
        body: "upstream reset",
        details: "upstream_reset_before_response_started",
      });
    }
    const res = parseHead(resRaw);
    const status = Number(res.line[1]);
    const resHeaders = new HeaderList(res.headers);
    const noBody = method === "HEAD" || status === 204 || status === 304;
    const framing: Framing = noBody ? { kind: "none" } : framingOf((n) => resHeaders.get(n), true);
    const resCtx = { status, responseHeaders: resHeaders, responseBody: undefined };
    const rv = await chain.onResponse(ctx, resCtx);
    if (rv.kind === "respond") {
      up.stream.destroy();
      b.count(rv.response.status, ctx);
      return respondLocal(stream, rv.response);
    }
    const h: http2.OutgoingHttpHeaders = { ":status": resCtx.status };
    for (const [k, v] of resCtx.responseHeaders.entries()) {
      if (HOP_BY_HOP.has(k)) continue;
      const prev = h[k];
      h[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [String(prev), v];
    }
    stream.respond(h);
    await copyBody(up.reader, framing, (c) => stream.write(c), true);
    stream.end();
    b.count(resCtx.status, ctx);
    if (framing.kind === "close" || resHeaders.get("connection")?.toLowerCase() === "close") {
      up.stream.destroy();
    } else b.release(up);
  } finally {
    chain.onDone(ctx);
  }
}
