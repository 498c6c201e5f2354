/**
 * weft's L7 HTTP proxy for services that have filter chains (services without filters stay L4).
 *
 * Entry point (the NodeProxy calls this for an accepted or HBONE-tunnelled connection):
 *
 *   const proxy = new HttpProxy({ chain: () => currentChain, direction: "inbound", dialUpstream });
 *   await proxy.handle(downstream, peer); // resolves when the downstream connection is done
 *
 * - `downstream`: any Duplex carrying HTTP/1.1 (net.Socket, TLS socket, an HTTP/2 CONNECT stream
 *   inside HBONE). `peer`: what is known about the connection (PeerInfo).
 * - `chain`: a getter, read once per request, so a hot-reloaded chain applies to new requests while
 *   in-flight ones finish on the chain they started with.
 * - `dialUpstream(route?)`: opens a connection to the upstream (or to the route a filter chose);
 *   idle upstream connections are kept per route and reused (keep-alive).
 * Per request: parse → request chain (local response / delay / route) → forward with the filters'
 * header changes → response chain → write. Bodies stream through with their framing untouched.
 * HTTP/2 with prior knowledge (h2c, as inside HBONE) is detected by its preface and served by
 * http2_downstream.ts with the same chain and upstream pool.
 */
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import type { Http2Server } from "node:http2";
import { createH2Server } from "./http2_downstream.ts";
import { H2UpstreamPool } from "./http2_upstream.ts";
import { isH2, replayDuplex, setNoDelay, writeLocal, writeWithBackpressure } from "./http_io.ts";
import type {
  Direction,
  HttpRequestContext,
  HttpResponseContext,
  PeerInfo,
  RouteChoice,
} from "./filter_api.ts";
import type { FilterChain } from "./filter_chain.ts";
import { HeaderList } from "./header_map.ts";
import {
  ByteReader,
  copyBody,
  type Framing,
  framingOf,
  parseHead,
  serializeHead,
} from "./http1_codec.ts";
import {
  bufferBody,
  DEFAULT_MAX_BUFFERED_BODY_BYTES,
  REQUEST_TOO_LARGE,
  RESPONSE_TOO_LARGE,
  setBufferedLength,
  wantsRequestBody,
  wantsResponseBody,
} from "./body_buffer.ts";
import {
  logResponseReset,
  requestChunkCall,
  requestStreamers,
  responseChunkCall,
  responseStreamers,
  setStreamedFraming,
  streamBody,
} from "./body_stream.ts";
import { errorMessage } from "./errors.ts";
import { logger } from "./log.ts";
import { metrics } from "./metrics.ts";

const log = logger("http_proxy");
const access = logger("http_proxy.access");
const requests = metrics.counter(
  "weft_http_requests_total",
  "HTTP requests through the L7 proxy.",
  [
    "direction",
    "code_class",
  ],
);

export interface HttpProxyOptions {
  readonly chain: () => FilterChain;
  readonly direction: Direction;
  readonly dialUpstream: (route?: RouteChoice) => Promise<Duplex>;
  /** Idle upstream connections kept per route (default 64). */
  readonly maxIdlePerRoute?: number;
  /** Largest body buffered for filters that ask for bodies (default 1 MiB, Envoy's buffer
   * limit): 413 for a larger request, 500 for a larger response. */
  readonly maxBufferedBodyBytes?: number;
  /** "h2" for HTTP2/GRPC upstreams (h2c): HTTP/2 downstream streams are forwarded over one
   * multiplexed HTTP/2 session per route, trailers included. HTTP/1.1 downstreams always use
   * HTTP/1.1 upstream connections. Default "http1". */
  readonly upstreamProtocol?: "http1" | "h2";
}

interface Upstream {
  readonly stream: Duplex;
  readonly reader: ByteReader;
  readonly key: string;
  reused: boolean;
}

let requestSeq = 0;

export class HttpProxy {
  private readonly idle = new Map<string, Upstream[]>();
  private readonly downstreams = new Set<Duplex>();
  private readonly h2Servers = new Set<Http2Server>();
  private closed = false;
  private readonly h2Pool: H2UpstreamPool | undefined;
  private readonly maxBody: number;

  constructor(readonly opts: HttpProxyOptions) {
    this.maxBody = opts.maxBufferedBodyBytes ?? DEFAULT_MAX_BUFFERED_BODY_BYTES;
    if (opts.upstreamProtocol === "h2") this.h2Pool = new H2UpstreamPool(opts.dialUpstream);
  }

  /** Serves HTTP/1.1 or h2c requests on `down` until it closes; never throws. */
  async handle(down: Duplex, peer: PeerInfo): Promise<void> {
    this.downstreams.add(down);
    setNoDelay(down);
    const reader = new ByteReader(down);
    try {
      if (await isH2(reader)) return await this.handleH2(down, reader, peer);
      while (!this.closed) {
        const raw = await reader.readHead();
        if (!raw) break;
        const keep = await this.serveOne(down, reader, raw, peer);
        if (!keep) break;
      }
    } catch (e) {
      log.debug("downstream error", { err: errorMessage(e) });
      writeLocal(down, { status: 400, headers: [], body: "", details: "http_bad_request" }, false);
    } finally {
      this.downstreams.delete(down);
      down.end();
    }
  }

  /** Returns whether the downstream connection stays open. */
  private async serveOne(
    down: Duplex,
    reader: ByteReader,
    raw: Buffer,
    peer: PeerInfo,
  ): Promise<boolean> {
    const head = parseHead(raw);
    const [method, target, version] = head.line;
    const headers = new HeaderList(head.headers);
    let reqFraming = framingOf((n) => headers.get(n), false);
    // RFC 9112 §6.1: with both, transfer-encoding wins; never forward an ambiguous pair.
    if (reqFraming.kind === "chunked") headers.remove("content-length");
    const keepAlive = version === "HTTP/1.1" &&
      headers.get("connection")?.toLowerCase() !== "close";
    const ctx: HttpRequestContext = {
      direction: this.opts.direction,
      method,
      path: target,
      authority: headers.get("host") ?? "",
      scheme: "http",
      protocol: "HTTP/1.1",
      requestHeaders: headers,
      peer,
      requestId: headers.get("x-request-id") ?? `weft-${++requestSeq}`,
      filterState: new Map(),
      requestBody: undefined,
    };
    const chain = this.opts.chain();
    try {
      if (reqFraming.kind !== "none" && wantsRequestBody(chain)) {
        // A body filter sees the whole body with the request phase (body_buffer.ts).
        const body = await bufferBody(reader, reqFraming, this.maxBody);
        if (!body) {
          this.count(413, ctx);
          return writeLocal(down, REQUEST_TOO_LARGE, false);
        }
        ctx.requestBody = body;
        reqFraming = { kind: "none" };
      }
      const v0 = chain.onRequest(ctx);
      const verdict = v0 instanceof Promise ? await v0 : v0;
      if (verdict.kind === "respond") {
        await copyBody(reader, reqFraming, () => true); // discard the request body
        this.count(verdict.response.status, ctx);
        return writeLocal(down, verdict.response, keepAlive);
      }
      return await this.forward(
        down,
        reader,
        ctx,
        method,
        target,
        reqFraming,
        verdict.route,
        keepAlive,
        chain,
      );
    } finally {
      chain.onDone(ctx);
    }
  }

  private async forward(
    down: Duplex,
    reader: ByteReader,
    ctx: HttpRequestContext,
    method: string,
    target: string,
    reqFraming: Framing,
    route: RouteChoice | undefined,
    keepAlive: boolean,
    chain: FilterChain,
  ): Promise<boolean> {
    const buffered = ctx.requestBody;
    if (buffered) setBufferedLength(ctx.requestHeaders, buffered.length);
    // Filters that stream the body may change its length: re-frame it chunked (body_stream.ts).
    const streamers = reqFraming.kind !== "none" ? requestStreamers(chain) : [];
    if (streamers.length) setStreamedFraming(ctx.requestHeaders, true);
    const reqHead = serializeHead(`${method} ${target} HTTP/1.1`, ctx.requestHeaders.entries());
    let up: Upstream;
    let resRaw: Buffer | null = null;
    for (let attempt = 0;; attempt++) {
      try {
        up = await this.acquire(route);
      } catch (e) {
        log.debug("upstream connect failed", { err: errorMessage(e) });
        this.count(503, ctx);
        return writeLocal(down, {
          status: 503,
          headers: [],
          body: "upstream connect error",
          details: "upstream_connect_failure",
        }, keepAlive);
      }
      // A small body already read shares the head's write: one segment, not head + body.
      const reqBody = reqFraming.kind === "length" && !streamers.length
        ? reader.takeBuffered(reqFraming.length)
        : undefined;
      if (buffered) up.stream.write(Buffer.concat([reqHead, buffered]));
      else if (streamers.length) {
        up.stream.write(reqHead);
        const local = await streamBody(
          reader,
          reqFraming,
          up.stream,
          writeWithBackpressure,
          streamers,
          requestChunkCall(ctx),
          ctx,
          true,
        );
        if (local) {
          up.stream.destroy();
          this.count(local.status, ctx);
          return writeLocal(down, local, false);
        }
      } else if (reqBody) up.stream.write(Buffer.concat([reqHead, reqBody]));
      else {
        up.stream.write(reqHead);
        await copyBody(reader, reqFraming, (b) => writeWithBackpressure(up.stream, b));
      }
      resRaw = await up.reader.readHead().catch(() => null);
      // A reused keep-alive connection may have been closed by the upstream: retry once, fresh.
      if (resRaw || !up.reused || reqFraming.kind !== "none" || buffered || attempt > 0) break;
      up.stream.destroy();
    }
    if (!resRaw) {
      up.stream.destroy();
      this.count(503, ctx);
      return writeLocal(down, {
        status: 503,
        headers: [],
        body: "upstream reset",
        details: "upstream_reset_before_response_started",
      }, keepAlive);
    }
    let res = parseHead(resRaw);
    while (res.line[1].startsWith("1") && res.line[1] !== "101") {
      const next = await up.reader.readHead();
      if (!next) break;
      res = parseHead(next);
    }
    const status = Number(res.line[1]);
    const resHeaders = new HeaderList(res.headers);
    const noBody = method === "HEAD" || status === 204 || status === 304;
    let resFraming: Framing = noBody ? { kind: "none" } : framingOf((n) => resHeaders.get(n), true);
    const resCtx: HttpResponseContext = {
      status,
      responseHeaders: resHeaders,
      responseBody: undefined,
    };
    let upstreamDone = false;
    if (resFraming.kind !== "none" && wantsResponseBody(chain)) {
      const body = await bufferBody(up.reader, resFraming, this.maxBody);
      if (!body) {
        up.stream.destroy();
        this.count(500, ctx);
        return writeLocal(down, RESPONSE_TOO_LARGE, false);
      }
      upstreamDone = resFraming.kind !== "close";
      resCtx.responseBody = body;
      resFraming = { kind: "none" };
    }
    const v0 = chain.onResponse(ctx, resCtx);
    const verdict = v0 instanceof Promise ? await v0 : v0;
    if (verdict.kind === "respond") {
      up.stream.destroy(); // its body is not wanted; closing beats draining
      this.count(verdict.response.status, ctx);
      return writeLocal(down, verdict.response, keepAlive);
    }
    const closeAfter = !keepAlive || resFraming.kind === "close";
    const resBody = resCtx.responseBody;
    if (resBody) setBufferedLength(resCtx.responseHeaders, resBody.length);
    const resStreamers = resFraming.kind !== "none" ? responseStreamers(chain) : [];
    // Chunked to a keep-alive (HTTP/1.1) client, close-delimited otherwise.
    if (resStreamers.length) setStreamedFraming(resCtx.responseHeaders, !closeAfter);
    const out = resCtx.responseHeaders.entries();
    if (closeAfter && resFraming.kind !== "close") out.push(["connection", "close"]);
    const resHead = serializeHead(`HTTP/1.1 ${resCtx.status} ${res.line[2] || "OK"}`, out);
    const small = resFraming.kind === "length" && !resStreamers.length
      ? up.reader.takeBuffered(resFraming.length)
      : undefined;
    if (resBody) down.write(Buffer.concat([resHead, resBody]));
    else if (resStreamers.length) {
      down.write(resHead);
      const reset = await streamBody(
        up.reader,
        resFraming,
        down,
        writeWithBackpressure,
        resStreamers,
        responseChunkCall(ctx, resCtx),
        ctx,
        !closeAfter,
      );
      if (reset) {
        logResponseReset(ctx, reset.details);
        up.stream.destroy();
        down.destroy();
        return false;
      }
    } else if (small) down.write(Buffer.concat([resHead, small]));
    else {
      down.write(resHead);
      await copyBody(up.reader, resFraming, (b) => writeWithBackpressure(down, b));
    }
    this.count(resCtx.status, ctx);
    const upstreamClosing = resHeaders.get("connection")?.toLowerCase() === "close";
    if (resFraming.kind === "close" || upstreamClosing || (resBody && !upstreamDone)) {
      up.stream.destroy();
    } else this.release(up);
    return !closeAfter;
  }

  private handleH2(down: Duplex, reader: ByteReader, peer: PeerInfo): Promise<void> {
    const server = createH2Server({
      direction: this.opts.direction,
      chain: () => this.opts.chain(),
      acquire: (route) => this.acquire(route),
      release: (up) => this.release(up as Upstream),
      count: (status, ctx) => this.count(status, ctx),
      nextRequestId: () => `weft-${++requestSeq}`,
      h2Upstream: this.h2Pool,
    }, peer);
    this.h2Servers.add(server);
    // node:http2 on Deno reads a net.Socket through its native handle, so bytes already read
    // (the preface) cannot be unshifted: hand it a plain Duplex that replays them first.
    const wrapped = replayDuplex(down, reader.detach());
    const done = new Promise<void>((r) =>
      wrapped.once("close", () => {
        this.h2Servers.delete(server);
        r();
      })
    );
    server.emit("connection", wrapped);
    return done;
  }

  /** Counts the request and writes its access record (debug level: opt-in, it costs µs). */
  private count(status: number, ctx: HttpRequestContext): void {
    requests.inc({ direction: this.opts.direction, code_class: `${Math.floor(status / 100)}xx` });
    if (access.enabled("debug")) {
      access.debug("request", {
        requestId: ctx.requestId,
        direction: ctx.direction,
        protocol: ctx.protocol,
        method: ctx.method,
        path: ctx.path,
        authority: ctx.authority,
        status,
        source: ctx.peer.sourcePrincipal ?? ctx.peer.sourceAddress,
      });
    }
  }

  private async acquire(route: RouteChoice | undefined): Promise<Upstream> {
    const key = route ? `${route.service}|${route.subset ?? ""}` : "";
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const u = list.pop()!;
      if (!u.stream.destroyed && !u.reader.atEnd && u.reader.buffered === 0) {
        u.reused = true;
        return u;
      }
      u.stream.destroy();
    }
    const stream = await this.opts.dialUpstream(route);
    setNoDelay(stream);
    stream.on("error", () => {}); // surfaced through the reader
    return { stream, reader: new ByteReader(stream), key, reused: false };
  }

  private release(u: Upstream): void {
    if (this.closed) {
      u.stream.destroy();
      return;
    }
    let list = this.idle.get(u.key);
    if (!list) this.idle.set(u.key, list = []);
    if (list.length >= (this.opts.maxIdlePerRoute ?? 64)) u.stream.destroy();
    else list.push(u);
  }

  /** Stops accepting requests, closes idle upstreams and open downstreams. */
  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const u of list) u.stream.destroy();
    this.idle.clear();
    for (const d of this.downstreams) d.destroy();
    for (const s of this.h2Servers) s.close();
    this.h2Pool?.close();
  }
}
