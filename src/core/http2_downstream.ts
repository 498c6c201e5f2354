/**
 * HTTP/2 downstreams (h2c prior knowledge, also inside an HBONE tunnel) for the L7 proxy, on
 * weft's own HTTP/2 (src/core/h2: flow control, stream and flood limits) rather than node:http2,
 * which crashes Deno under h2c load. Each stream runs the same filter chain and is forwarded to
 * the upstream over HTTP/1.1 through the proxy's keep-alive pool, or over HTTP/2
 * (http2_upstream.ts) when the upstream speaks it (gRPC: trailers pass through).
 */
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import type { HttpRequestContext, LocalResponse, PeerInfo, RouteChoice } from "./filter_api.ts";
import type { FilterChain } from "./filter_chain.ts";
import { HeaderList } from "./header_map.ts";
import { copyBody, type Framing, framingOf, parseHead, serializeHead } from "./http1_codec.ts";
import { errorMessage } from "./errors.ts";
import { forwardH2, type H2UpstreamPool } from "./http2_upstream.ts";
import { H2Session, type H2Stream } from "./h2/mod.ts";
import { logger } from "./log.ts";
import type { Upstream } from "./http1_upstream.ts";
import type { RoutePolicy } from "./route_policy.ts";
import { exchange, guardResponse } from "./route_exchange.ts";

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
  acquire(route: RouteChoice | undefined): Promise<Upstream>;
  release(up: Upstream): void;
  count(status: number, ctx: HttpRequestContext): void;
  nextRequestId(): string;
  /** Set when the upstream speaks HTTP/2 (gRPC, h2c services): streams stay HTTP/2 end to end. */
  readonly h2Upstream: H2UpstreamPool | undefined;
  /** The request's route policy (timeout, retries) for HTTP/1.1 upstreams (route_exchange.ts). */
  routePolicy?(ctx: HttpRequestContext): RoutePolicy | undefined;
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
      stream.destroy();
    });
  });
  down.resume();
  return session;
}

function respondLocal(stream: H2Stream, r: LocalResponse): void {
  if (stream.destroyed || stream.headersSent) return;
  const h: [string, string][] = [];
  for (const [k, v] of r.headers) h.push([k.toLowerCase(), v]);
  if (r.grpcStatus !== undefined) {
    h.push(["content-type", "application/grpc"], ["grpc-status", String(r.grpcStatus)]);
  }
  stream.respond(r.grpcStatus !== undefined ? 200 : r.status, h);
  stream.end(typeof r.body === "string" ? r.body : Buffer.from(r.body));
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
    const out = ctx.requestHeaders.entries().filter(([k]) => !HOP_BY_HOP.has(k));
    if (!ctx.requestHeaders.has("host")) out.unshift(["host", authority]);
    const chunked = !ctx.requestHeaders.has("content-length") && !NO_BODY_METHODS.has(method);
    if (chunked) out.push(["transfer-encoding", "chunked"]);
    const send = async (up: Upstream, held?: Buffer[]): Promise<undefined> => {
      up.stream.write(serializeHead(`${method} ${ctx.path} HTTP/1.1`, out));
      const put = (buf: Buffer): boolean => {
        if (chunked) up.stream.write(`${buf.length.toString(16)}\r\n`);
        const ok = up.stream.write(buf);
        if (chunked) up.stream.write("\r\n");
        return ok;
      };
      if (held) { for (const c of held) put(c); }
      else await eachChunk(stream, put, up.stream);
      if (chunked) up.stream.write("0\r\n\r\n");
      return undefined;
    };
    const policy = b.routePolicy?.(ctx);
    let up: Upstream | undefined;
    let resRaw: Buffer | null = null;
    let disarm = (): void => {};
    if (policy) {
      // As on HTTP/1.1 (route_exchange.ts): a body is held for a retry only when its length is
      // known and within the limit; others are sent once.
      const len = Number(ctx.requestHeaders.get("content-length") ?? (chunked ? NaN : 0));
      const held = policy.retries && len <= (b.maxReplayBytes ?? 1 << 20)
        ? await collect(stream)
        : undefined;
      const r = await exchange(policy, {
        acquire: () => b.acquire(verdict.route),
        send: (u) => send(u, held),
        replayable: held !== undefined,
      });
      if (r.kind === "local") {
        b.count(r.response.status, ctx);
        return respondLocal(stream, r.response);
      }
      const got = r.up;
      up = got;
      resRaw = r.head;
      disarm = guardResponse(r.leftMs, () => {
        got.stream.destroy();
        stream.destroy();
      });
    } else {
      up = await b.acquire(verdict.route).catch(() => undefined);
      if (!up) {
        b.count(503, ctx);
        return respondLocal(stream, {
          status: 503,
          headers: [],
          body: "upstream connect error",
          details: "upstream_connect_failure",
        });
      }
      await send(up);
      resRaw = await up.reader.readHead();
    }
    try {
      await respondFrom(b, stream, ctx, chain, up, resRaw);
    } finally {
      disarm();
    }
  } finally {
    chain.onDone(ctx);
  }
}

/** The upstream's HTTP/1.1 response (head already read) → the downstream HTTP/2 stream. */
async function respondFrom(
  b: H2Backend,
  stream: H2Stream,
  ctx: HttpRequestContext,
  chain: FilterChain,
  up: Upstream,
  resRaw: Buffer | null,
): Promise<void> {
  const method = ctx.method;
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
  const h = resCtx.responseHeaders.entries().filter(([k]) => !HOP_BY_HOP.has(k));
  stream.respond(resCtx.status, h, framing.kind === "none");
  if (framing.kind !== "none") {
    await copyBody(up.reader, framing, (c) => writeWithBackpressure(stream, c), true);
    stream.end();
  }
  b.count(resCtx.status, ctx);
  if (framing.kind === "close" || resHeaders.get("connection")?.toLowerCase() === "close") {
    up.stream.destroy();
  } else b.release(up);
}

/** The whole request body of a stream, for a retry to send again. */
async function collect(src: Duplex): Promise<Buffer[]> {
  const parts: Buffer[] = [];
  await eachChunk(src, (c) => {
    parts.push(c);
    return true;
  }, src);
  return parts;
}

function writeWithBackpressure(s: Duplex, chunk: Uint8Array): boolean | Promise<void> {
  if (s.destroyed) throw new Error("downstream stream closed");
  if (s.write(chunk)) return true;
  {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        s.off("drain", done);
        s.off("close", gone);
        resolve();
      };
      const gone = (): void => {
        s.off("drain", done);
        reject(new Error("downstream stream closed"));
      };
      s.once("drain", done);
      s.once("close", gone);
    });
  }
}

/** Read the request body to its end without destroying the stream (`for await` would, and the
 * response still has to go out on it); pauses while `dst` is above its high-water mark. */
function eachChunk(src: Duplex, onChunk: (b: Buffer) => boolean, dst: Duplex): Promise<void> {
  if (src.readableEnded) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onData = (c: Buffer): void => {
      if (!onChunk(c)) {
        src.pause();
        dst.once("drain", () => src.resume());
      }
    };
    const done = (err?: Error): void => {
      src.off("data", onData);
      src.off("end", done);
      src.off("close", onClose);
      if (err) reject(err);
      else resolve();
    };
    const onClose = (): void => done(new Error("downstream stream closed"));
    src.on("data", onData);
    src.once("end", done);
    src.once("close", onClose);
  });
}
