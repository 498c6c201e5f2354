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
import { serveH2 } from "./http2_downstream.ts";
import type { H2Session } from "./h2/mod.ts";
import { H2UpstreamPool } from "./http2_upstream.ts";
import { isH2, setNoDelay, writeLocal, writeWithBackpressure } from "./http_io.ts";
import type {
  Direction,
  HttpRequestContext,
  HttpResponseContext,
  LocalResponse,
  PeerInfo,
  RouteChoice,
} from "./filter_api.ts";
import type { RoutePolicy } from "./route_policy.ts";
import { bufferForReplay, exchange, guardResponse } from "./route_exchange.ts";
import type { FilterChain } from "./filter_chain.ts";
import { HeaderList } from "./header_map.ts";
import {
  bad,
  ByteReader,
  checkRequestLine,
  copyBody,
  type Framing,
  framingOf,
  httpErrorStatus,
  parseHead,
  serializeHead,
  type Trailer,
} from "./http1_codec.ts";
import { requestTrailers, responseTrailers } from "./trailers.ts";
import { Http1UpstreamPool, type Upstream, upstreamHead } from "./http1_upstream.ts";
import {
  bufferBody,
  chunkedWithTrailers,
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
import { errorCode, errorMessage } from "./errors.ts";
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

const codecErrors = metrics.counter(
  "weft_http_codec_errors_total",
  "HTTP/1.1 requests refused by the codec or header timeout (connection closed after each)",
  ["direction", "status"],
);

interface ConnState {
  /** A response (head) was written for the current request: an error can no longer answer. */
  responding: boolean;
  /** Waiting for a request head with none started (drain closes such connections now). */
  idle: boolean;
}

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
  /** A request head must be complete within this time (408 and close); default 10 s, 0 = off. */
  readonly requestHeadersTimeoutMs?: number;
  /** The request's route policy (timeout, retries: route_exchange.ts), read per request. */
  readonly routePolicy?: (ctx: HttpRequestContext) => RoutePolicy | undefined;
}

let requestSeq = 0;

export class HttpProxy {
  private readonly upstreams: Http1UpstreamPool;
  private readonly downstreams = new Set<Duplex>();
  private readonly h2Sessions = new Set<H2Session>();
  private closed = false;
  private draining = false;
  private readonly states = new Map<Duplex, ConnState>();
  private readonly h2Pool: H2UpstreamPool | undefined;
  private readonly maxBody: number;

  constructor(readonly opts: HttpProxyOptions) {
    this.maxBody = opts.maxBufferedBodyBytes ?? DEFAULT_MAX_BUFFERED_BODY_BYTES;
    if (opts.upstreamProtocol === "h2") this.h2Pool = new H2UpstreamPool(opts.dialUpstream);
    this.upstreams = new Http1UpstreamPool(opts.dialUpstream, opts.maxIdlePerRoute);
  }

  /** Serves HTTP/1.1 or h2c requests on `down` until it closes; never throws. After an error
   * response (400/408/431/501/505, or 502 for a bad upstream) or `Connection: close` the
   * connection is closed. */
  async handle(down: Duplex, peer: PeerInfo): Promise<void> {
    this.downstreams.add(down);
    setNoDelay(down);
    const reader = new ByteReader(down);
    const state: ConnState = { responding: false, idle: true };
    this.states.set(down, state);
    const timeoutMs = this.opts.requestHeadersTimeoutMs ?? 10_000;
    // The first request's head (and the h2 preface check) must arrive within the header timeout
    // from accept; later keep-alive requests from their first byte (Envoy request_headers_timeout).
    let timer: ReturnType<typeof setTimeout> | undefined = timeoutMs > 0
      ? setTimeout(
        () => reader.abort(bad("request headers timeout", "http_header_timeout")),
        timeoutMs,
      )
      : undefined;
    try {
      if (await isH2(reader)) {
        clearTimeout(timer);
        return await this.handleH2(down, reader, peer);
      }
      for (let first = true; !this.closed && !this.draining; first = false) {
        state.idle = true;
        const raw = await reader.readHead(first ? {} : { timeoutMs, timeFromFirstByte: true });
        clearTimeout(timer);
        timer = undefined;
        if (!raw) break;
        state.idle = false;
        state.responding = false;
        const keep = await this.serveOne(down, reader, raw, peer, state);
        if (!keep) break;
      }
    } catch (e) {
      const status = httpErrorStatus(e);
      codecErrors.inc({ direction: this.opts.direction, status: String(status) });
      log.debug("downstream error", { status, code: errorCode(e), err: errorMessage(e) });
      // Mid-response nothing can be said any more: the connection just closes.
      if (!state.responding) {
        writeLocal(down, { status, headers: [], body: "", details: errorCode(e) }, false);
      }
    } finally {
      clearTimeout(timer);
      this.downstreams.delete(down);
      this.states.delete(down);
      down.end(); // FIN after the response; the L4 record closes its side when done
    }
  }

  /** Returns whether the downstream connection stays open. */
  private async serveOne(
    down: Duplex,
    reader: ByteReader,
    raw: Buffer,
    peer: PeerInfo,
    state: ConnState,
  ): Promise<boolean> {
    const head = parseHead(raw);
    checkRequestLine(head.line, raw);
    const [method, target, version] = head.line;
    const headers = new HeaderList(head.headers);
    const hosts = headers.getAll("host");
    if (hosts.length > 1 || (version === "HTTP/1.1" && hosts.length !== 1)) {
      throw bad("HTTP/1.1 requires exactly one Host header");
    }
    let reqFraming = framingOf((n) => headers.getAll(n), false);
    if (reqFraming.kind === "length") headers.set("content-length", String(reqFraming.length));
    const connection = (headers.get("connection") ?? "").toLowerCase().split(",").map((x) =>
      x.trim()
    );
    const keepAlive = version === "HTTP/1.1" && !connection.includes("close");
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
    const reqTrailers: Trailer[] = [];
    try {
      if (reqFraming.kind !== "none" && wantsRequestBody(chain)) {
        // A body filter sees the whole body with the request phase (body_buffer.ts).
        const body = await bufferBody(reader, reqFraming, this.maxBody, reqTrailers);
        if (!body) {
          this.count(413, ctx);
          state.responding = true;
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
        state.responding = true;
        return writeLocal(down, verdict.response, keepAlive && !this.draining);
      }
      return await this.forward(
        down,
        reader,
        ctx,
        reqFraming,
        verdict.route,
        keepAlive,
        chain,
        state,
        reqTrailers,
      );
    } finally {
      chain.onDone(ctx);
    }
  }

  private async forward(
    down: Duplex,
    reader: ByteReader,
    ctx: HttpRequestContext,
    reqFraming: Framing,
    route: RouteChoice | undefined,
    keepAlive: boolean,
    chain: FilterChain,
    state: ConnState,
    reqTrailers: Trailer[],
  ): Promise<boolean> {
    const buffered = ctx.requestBody;
    // A buffered body keeps its trailers by going on chunked (one chunk + trailer section).
    const onReqTrailers = requestTrailers(chain, ctx);
    const bufTrailers = buffered ? onReqTrailers(reqTrailers) : [];
    if (buffered) setBufferedLength(ctx.requestHeaders, buffered.length, bufTrailers.length > 0);
    // Filters that stream the body may change its length: re-frame it chunked (body_stream.ts).
    const streamers = reqFraming.kind !== "none" ? requestStreamers(chain) : [];
    if (streamers.length) setStreamedFraming(ctx.requestHeaders, true);
    const reqHead = serializeHead(
      `${ctx.method} ${ctx.path} HTTP/1.1`,
      ctx.requestHeaders.entries(),
    );
    const send = async (u: Upstream, body = buffered): Promise<LocalResponse | undefined> => {
      if (body) {
        const all = bufTrailers.length ? chunkedWithTrailers(body, bufTrailers) : body;
        u.stream.write(Buffer.concat([reqHead, all]));
      } else if (streamers.length) {
        u.stream.write(reqHead);
        return await streamBody(
          reader,
          reqFraming,
          u.stream,
          writeWithBackpressure,
          streamers,
          requestChunkCall(ctx),
          ctx,
          true,
          onReqTrailers,
        );
      } else {
        // The head leaves with the first body bytes, once what is buffered validated.
        await copyBody(
          reader,
          reqFraming,
          (b) => writeWithBackpressure(u.stream, b),
          false,
          reqHead,
          onReqTrailers,
        );
      }
      return undefined;
    };
    const policy = this.opts.routePolicy?.(ctx);
    if (policy) {
      // The route's timeout and retries (route_exchange.ts); a body is held for replay only
      // when its length is known and within the buffer limit, others are sent once.
      const replay = buffered ??
        (policy.retries && !streamers.length
          ? await bufferForReplay(reader, reqFraming, this.maxBody, reqTrailers)
          : undefined);
      const r = await exchange(policy, {
        acquire: () => this.upstreams.acquire(route),
        send: (u) => send(u, replay),
        replayable: replay !== undefined || reqFraming.kind === "none",
      });
      if (r.kind === "local") {
        this.count(r.response.status, ctx);
        state.responding = true;
        return writeLocal(down, r.response, r.keepAlive && keepAlive && !this.draining);
      }
      const disarm = guardResponse(r.leftMs, () => {
        r.up.stream.destroy();
        down.destroy();
      });
      try {
        return await this.respond(down, r.up, r.head, ctx, keepAlive, chain, state);
      } catch (e) {
        r.up.stream.destroy();
        throw e;
      } finally {
        disarm();
      }
    }
    let up: Upstream;
    let resRaw: Buffer | null = null;
    for (let attempt = 0;; attempt++) {
      try {
        up = await this.upstreams.acquire(route);
      } catch (e) {
        log.debug("upstream connect failed", { err: errorMessage(e) });
        this.count(503, ctx);
        state.responding = true;
        return writeLocal(down, {
          status: 503,
          headers: [],
          body: "upstream connect error",
          details: "upstream_connect_failure",
          // An unsent request body is still unread on the connection: close after answering.
        }, keepAlive && !this.draining && (reqFraming.kind === "none" || buffered !== undefined));
      }
      const u = up;
      try {
        const local = await send(u);
        if (local) {
          u.stream.destroy();
          this.count(local.status, ctx);
          state.responding = true;
          return writeLocal(down, local, false);
        }
      } catch (e) {
        u.stream.destroy(); // a request cut short leaves the upstream in doubt: never reuse it
        throw e;
      }
      resRaw = await u.reader.readHead().catch(() => null);
      // A reused keep-alive connection may have been closed by the upstream: retry once, fresh.
      if (resRaw || !u.reused || reqFraming.kind !== "none" || buffered || attempt > 0) break;
      u.stream.destroy();
    }
    if (!resRaw) {
      up.stream.destroy();
      this.count(503, ctx);
      state.responding = true;
      return writeLocal(down, {
        status: 503,
        headers: [],
        body: "upstream reset",
        details: "upstream_reset_before_response_started",
      }, keepAlive && !this.draining);
    }
    try {
      return await this.respond(down, up, resRaw, ctx, keepAlive, chain, state);
    } catch (e) {
      up.stream.destroy(); // any framing doubt: this upstream connection is never reused
      throw e;
    }
  }

  private async respond(
    down: Duplex,
    up: Upstream,
    resRaw: Buffer,
    ctx: HttpRequestContext,
    keepAlive: boolean,
    chain: FilterChain,
    state: ConnState,
  ): Promise<boolean> {
    let res = upstreamHead(resRaw);
    while (res.line[1].startsWith("1") && res.line[1] !== "101") {
      const next = await up.reader.readHead();
      if (!next) {
        throw bad("upstream closed after an interim response", "http_upstream_bad_message");
      }
      res = upstreamHead(next);
    }
    const status = Number(res.line[1]);
    const resHeaders = new HeaderList(res.headers);
    const noBody = ctx.method === "HEAD" || status === 204 || status === 304;
    let resFraming: Framing;
    try {
      resFraming = noBody ? { kind: "none" } : framingOf((n) => resHeaders.getAll(n), true);
    } catch (e) {
      throw bad(`upstream: ${errorMessage(e)}`, "http_upstream_bad_message");
    }
    const resCtx: HttpResponseContext = {
      status,
      responseHeaders: resHeaders,
      responseBody: undefined,
    };
    let upstreamDone = false;
    const resTrailers: Trailer[] = [];
    if (resFraming.kind !== "none" && wantsResponseBody(chain)) {
      const body = await bufferBody(up.reader, resFraming, this.maxBody, resTrailers);
      if (!body) {
        up.stream.destroy();
        this.count(500, ctx);
        state.responding = true;
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
      state.responding = true;
      return writeLocal(down, verdict.response, keepAlive && !this.draining);
    }
    const closeAfter = !keepAlive || resFraming.kind === "close" || this.draining;
    const resBody = resCtx.responseBody;
    const onResTrailers = responseTrailers(chain, ctx, resCtx);
    // Trailers of a buffered body go on chunked to a keep-alive client, else they are dropped.
    const bufTrailers = resBody && !closeAfter ? onResTrailers(resTrailers) : [];
    if (resBody) setBufferedLength(resCtx.responseHeaders, resBody.length, bufTrailers.length > 0);
    const resStreamers = resFraming.kind !== "none" ? responseStreamers(chain) : [];
    // Chunked to a keep-alive (HTTP/1.1) client, close-delimited otherwise.
    if (resStreamers.length) setStreamedFraming(resCtx.responseHeaders, !closeAfter);
    const out = resCtx.responseHeaders.entries().filter(([k]) => k !== "connection");
    if (resFraming.kind === "length" && !resStreamers.length) {
      const i = out.findIndex(([k]) => k === "content-length");
      if (i >= 0) out.splice(i, 1);
      out.push(["content-length", String(resFraming.length)]);
    }
    if (closeAfter && resFraming.kind !== "close") out.push(["connection", "close"]);
    const resHead = serializeHead(`HTTP/1.1 ${resCtx.status} ${res.line[2] || "OK"}`, out);
    state.responding = true;
    if (resBody) {
      const body = bufTrailers.length ? chunkedWithTrailers(resBody, bufTrailers) : resBody;
      down.write(Buffer.concat([resHead, body]));
    } else if (resStreamers.length) {
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
        onResTrailers,
      );
      if (reset) {
        logResponseReset(ctx, reset.details);
        up.stream.destroy();
        down.destroy();
        return false;
      }
    } else {
      await copyBody(
        up.reader,
        resFraming,
        (b) => writeWithBackpressure(down, b),
        false,
        resHead,
        onResTrailers,
      );
    }
    this.count(resCtx.status, ctx);
    const upClose = (resHeaders.get("connection") ?? "").toLowerCase().includes("close");
    if (resFraming.kind === "close" || upClose || (resBody && !upstreamDone)) {
      up.stream.destroy();
    } else this.upstreams.release(up);
    return !closeAfter;
  }

  private handleH2(down: Duplex, reader: ByteReader, peer: PeerInfo): Promise<void> {
    const session = serveH2(
      {
        direction: this.opts.direction,
        chain: () => this.opts.chain(),
        acquire: (route) => this.upstreams.acquire(route),
        release: (up) => this.upstreams.release(up as Upstream),
        count: (status, ctx) => this.count(status, ctx),
        nextRequestId: () => `weft-${++requestSeq}`,
        h2Upstream: this.h2Pool,
        routePolicy: (ctx) => this.opts.routePolicy?.(ctx),
        maxReplayBytes: this.maxBody,
      },
      peer,
      down,
      reader.detach(),
    );
    this.h2Sessions.add(session);
    return session.closed.then(() => {
      this.h2Sessions.delete(session);
    });
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

  /** Drain: idle keep-alive downstreams close now, busy ones after their current response
   * (sent with `connection: close`); h2 downstreams get GOAWAY. */
  drain(): void {
    this.draining = true;
    for (const [d, st] of this.states) if (st.idle && !d.destroyed) d.end();
    for (const s of this.h2Sessions) s.close().catch(() => {});
  }

  /** Stops accepting requests, closes idle upstreams and open downstreams. */
  close(): void {
    this.closed = true;
    this.upstreams.close();
    for (const d of this.downstreams) d.destroy();
    for (const s of this.h2Sessions) s.destroy();
    this.h2Pool?.close();
  }
}
