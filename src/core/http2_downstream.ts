/**
 * HTTP/2 downstreams (h2c prior knowledge, also inside an HBONE tunnel) for the L7 proxy, on
 * weft's own HTTP/2 (src/core/h2: flow control, stream and flood limits) rather than node:http2,
 * which crashes Deno under h2c load. Each stream runs the same filter chain and is forwarded to
 * the upstream over HTTP/1.1 through the proxy's keep-alive pool, or over HTTP/2
 * (http2_upstream.ts) when the upstream speaks it (gRPC: trailers pass through).
 */
import type { Duplex } from "node:stream";
import type { HttpRequestContext, PeerInfo, RouteChoice } from "./filter_api.ts";
import type { FilterChain } from "./filter_chain.ts";
import { HeaderList } from "./header_map.ts";
import { framingOf, parseHead, serializeHead, type Trailer } from "./http1_codec.ts";
import type { ByteReader } from "./http1_codec.ts";
import { errorMessage } from "./errors.ts";
import { forwardH2, type H2UpstreamPool } from "./http2_upstream.ts";
import { H2Session, type H2Stream } from "./h2/mod.ts";
import { exactLength, h1Reader, h1Sink, h2HasBody, writeH2 } from "./body_source.ts";
import { requestChunkCall, sendBody } from "./body_stream.ts";
import {
  answer,
  bufferRequest,
  HOP_BY_HOP,
  planRequest,
  type RequestPlan,
  respondLocal,
} from "./http2_phases.ts";
import { logger } from "./log.ts";
import { TrailersReply } from "./trailers.ts";

const log = logger("http_proxy");
export const H2_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

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
  /** Largest body buffered for body filters (body_buffer.ts). */
  readonly maxBufferedBodyBytes: number;
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
    bodyFollows: h2HasBody(stream),
  };
  if (badContentLength(headers)) {
    log.debug("h2 request with a malformed content-length", { requestId: ctx.requestId });
    return void stream.destroy(new Error("malformed content-length"));
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
    let plan: RequestPlan;
    try {
      plan = await planRequest(stream, ctx, chain, reqTrailers, !b.h2Upstream);
    } catch (e) {
      if (!(e instanceof TrailersReply)) throw e;
      b.count(e.response.status, ctx);
      return respondLocal(stream, e.response);
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
      )
      : await forwardH1(b, stream, ctx, verdict.route, chain, plan);
    b.count(status, ctx);
  } finally {
    chain.onDone(ctx);
  }
}

/** The request's content-length (checked at the stream's start: one non-negative integer). */
function declared(ctx: HttpRequestContext): number {
  return Number(ctx.requestHeaders.get("content-length"));
}

/** Malformed per RFC 9113 §8.1.1 unless every content-length value is the same integer. */
function badContentLength(h: HeaderList): boolean {
  const all = h.getAll("content-length");
  if (all.length === 0) return false;
  const v = all[0]!.trim();
  return !/^\d{1,15}$/.test(v) || all.some((x) => x.trim() !== v);
}

/** An h2 stream to an HTTP/1.1 upstream from the proxy's keep-alive pool; the status sent. */
async function forwardH1(
  b: H2Backend,
  stream: H2Stream,
  ctx: HttpRequestContext,
  route: RouteChoice | undefined,
  chain: FilterChain,
  plan: RequestPlan,
): Promise<number> {
  const up = await b.acquire(route).catch(() => undefined);
  if (!up) {
    respondLocal(stream, {
      status: 503,
      headers: [],
      body: "upstream connect error",
      details: "upstream_connect_failure",
    });
    return 503;
  }
  let keep = false;
  try {
    const out = ctx.requestHeaders.entries().filter(([k]) => !HOP_BY_HOP.has(k));
    if (!ctx.requestHeaders.has("host")) out.unshift(["host", ctx.authority]);
    if (plan.chunked) out.push(["transfer-encoding", "chunked"]);
    up.stream.write(serializeHead(`${ctx.method} ${ctx.path} HTTP/1.1`, out));
    const raw = h1Sink(up.stream, plan.chunked, writeH2);
    // Copied raw (by its content-length): exactly that many bytes, or the stream is reset.
    const sink = plan.src && !plan.chunked ? exactLength(raw, declared(ctx)) : raw;
    const call = requestChunkCall(ctx);
    const { src, buffered, streamers, onTrailers } = plan;
    const local = await sendBody(sink, src, buffered, streamers, call, ctx, onTrailers);
    if (local) {
      stream.resume();
      respondLocal(stream, local);
      return local.status;
    }
    let resRaw = await up.reader.readHead();
    let res = resRaw && parseHead(resRaw);
    while (res && res.line[1].startsWith("1")) { // interim responses are not forwarded
      resRaw = await up.reader.readHead();
      res = resRaw && parseHead(resRaw);
    }
    if (!res) {
      respondLocal(stream, {
        status: 503,
        headers: [],
        body: "upstream reset",
        details: "upstream_reset_before_response_started",
      });
      return 503;
    }
    const status = Number(res.line[1]);
    const resHeaders = new HeaderList(res.headers);
    const noBody = ctx.method === "HEAD" || status === 204 || status === 304;
    const framing = noBody
      ? { kind: "none" as const }
      : framingOf((n) => resHeaders.getAll(n), true);
    const sent = await answer(stream, ctx, chain, b.maxBufferedBodyBytes, {
      status,
      headers: resHeaders,
      src: framing.kind === "none" ? undefined : h1Reader(up.reader, framing),
      declaredLength: framing.kind === "length" ? framing.length : 0,
      drop: () => up.stream.destroy(),
    });
    keep = !up.stream.destroyed && framing.kind !== "close" &&
      resHeaders.get("connection")?.toLowerCase() !== "close";
    return sent;
  } finally {
    if (keep) b.release(up);
    else up.stream.destroy(); // any doubt about its framing: never reused
  }
}
