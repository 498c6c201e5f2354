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
 * Per request: parse and request chain (http1_request.ts: local response / delay / route, body
 * buffered for body filters) → upstream exchange (http1_forward.ts: the filters' header changes,
 * the request body as the chain asks, the route's timeout and retries) → response phase
 * (http1_response.ts) →
 * accounting (http_access.ts). Bodies without body filters stream through with their framing.
 * HTTP/2 with prior knowledge (h2c, as inside HBONE) is detected by its preface and served by
 * http2_downstream.ts with the same chain and upstream pool.
 */
import type { Duplex } from "node:stream";
import { serveH2 } from "./http2_downstream.ts";
import type { H2Session } from "./h2/mod.ts";
import { H2UpstreamPool } from "./http2_upstream.ts";
import { DOWNSTREAM_GONE, isH2, setNoDelay, writeLocal } from "./http_io.ts";
import type {
  Direction,
  HttpRequestContext,
  LocalResponse,
  PeerInfo,
  RouteChoice,
} from "./filter_api.ts";
import type { RoutePolicy } from "./route_policy.ts";
import type { FilterChain } from "./filter_chain.ts";
import { bad, ByteReader, httpErrorStatus } from "./http1_codec.ts";
import { nextRequestId, type RequestDeps, serveRequest } from "./http1_request.ts";
import { type ConnState, respondH1, type ResponseDeps } from "./http1_response.ts";
import { type ForwardDeps, forwardRequest } from "./http1_forward.ts";
import { countRequest } from "./http_access.ts";
import type { Upstream } from "./http1_upstream.ts";
import { Http1UpstreamPool } from "./http1_pool.ts";
import { DEFAULT_MAX_BUFFERED_BODY_BYTES } from "./body_buffer.ts";
import { errorCode, errorMessage } from "./errors.ts";
import { logger } from "./log.ts";
import { metrics } from "./metrics.ts";

const log = logger("http_proxy");
const codecErrors = metrics.counter(
  "weft_http_codec_errors_total",
  "HTTP/1.1 requests refused by the codec or header timeout (connection closed after each)",
  ["direction", "status"],
);

const NO_LIMITS = {};

export interface HttpProxyOptions {
  readonly chain: () => FilterChain;
  readonly direction: Direction;
  /** `tried`: endpoints a retried request used already; the dialler prefers another and adds
   * the one it picks (Envoy's previous_hosts retry predicate). */
  readonly dialUpstream: (route?: RouteChoice, tried?: Set<string>) => Promise<Duplex>;
  /** Idle upstream connections kept per route (default 64). */
  readonly maxIdlePerRoute?: number;
  /** A pooled HTTP/1.1 upstream connection idle this long is closed (default 1 h, Envoy's
   * upstream idle_timeout; weft.yaml `timeouts.upstreamIdle`). */
  readonly upstreamIdleTimeoutMs?: number;
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
  /** The local answer for a route a filter chose that names no known service or subset
   * (Envoy's 503 NC `cluster_not_found`; `status`: the route policy's own), or undefined. */
  readonly routeReply?: (route: RouteChoice, status?: number) => LocalResponse | undefined;
}

export class HttpProxy {
  private readonly upstreams: Http1UpstreamPool;
  private readonly downstreams = new Set<Duplex>();
  private readonly h2Sessions = new Set<H2Session>();
  private closed = false;
  private draining = false;
  private readonly states = new Map<Duplex, ConnState>();
  private readonly h2Pool: H2UpstreamPool | undefined;
  private readonly maxBody: number;
  private readonly responseDeps: ResponseDeps;
  private readonly requestDeps: RequestDeps;
  private readonly forwardDeps: ForwardDeps;

  constructor(readonly opts: HttpProxyOptions) {
    this.maxBody = opts.maxBufferedBodyBytes ?? DEFAULT_MAX_BUFFERED_BODY_BYTES;
    if (opts.upstreamProtocol === "h2") this.h2Pool = new H2UpstreamPool(opts.dialUpstream);
    this.upstreams = new Http1UpstreamPool(
      opts.dialUpstream,
      opts.maxIdlePerRoute,
      opts.upstreamIdleTimeoutMs,
    );
    this.responseDeps = {
      maxBody: this.maxBody,
      draining: () => this.draining,
      count: (status, ctx) => this.count(status, ctx),
      release: (up) => this.upstreams.release(up),
    };
    this.forwardDeps = {
      ...this.responseDeps,
      acquire: (route, tried) => this.upstreams.acquire(route, tried),
      idle: (route) => this.upstreams.idleFor(route),
      routePolicy: (ctx) => this.opts.routePolicy?.(ctx),
      routeReply: (route, status) => this.opts.routeReply?.(route, status),
      // Explicit parameters: a rest/spread wrapper allocates an array per request.
      respond: (down, up, resRaw, ctx, keepAlive, chain, state) =>
        respondH1(this.responseDeps, down, up, resRaw, ctx, keepAlive, chain, state),
    };
    this.requestDeps = {
      ...this.responseDeps,
      direction: opts.direction,
      chain: () => this.opts.chain(),
      forward: (down, reader, ctx, framing, route, keepAlive, chain, state, trailers) =>
        forwardRequest(
          this.forwardDeps,
          down,
          reader,
          ctx,
          framing,
          route,
          keepAlive,
          chain,
          state,
          trailers,
        ),
    };
  }

  /** Serves HTTP/1.1 or h2c requests on `down` until it closes; never throws. After an error
   * response (400/408/431/501/505, or 502 for a bad upstream) or `Connection: close` the
   * connection is closed. */
  async handle(down: Duplex, peer: PeerInfo): Promise<void> {
    this.downstreams.add(down);
    setNoDelay(down);
    const reader = new ByteReader(down);
    const state: ConnState = {
      responding: false,
      idle: true,
      upgrade: false,
      closing: false,
      reader,
      up: undefined,
      routeHeaders: undefined,
    };
    // A client gone mid-exchange (reset, or closed both ways) frees its upstream connection now
    // (ConnState.up); a half-close (FIN) is no close and still gets its response.
    down.once("close", () => {
      const u = state.up;
      state.up = undefined;
      if (u !== undefined && u.owner === down) u.stream.destroy();
    });
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
    // Later keep-alive heads: the timeout from their first byte (one object per connection).
    const later = { timeoutMs, timeFromFirstByte: true };
    try {
      if (await isH2(reader)) {
        clearTimeout(timer);
        return await this.handleH2(down, reader, peer);
      }
      for (let first = true; !this.closed && !this.draining; first = false) {
        state.idle = true;
        const raw = await reader.readHead(first ? NO_LIMITS : later);
        clearTimeout(timer);
        timer = undefined;
        if (!raw) break;
        state.idle = false;
        state.responding = false;
        const served = serveRequest(this.requestDeps, down, reader, raw, peer, state);
        const keep = served instanceof Promise ? await served : served;
        if (!keep) break;
      }
    } catch (e) {
      // The client left mid-response: nothing to refuse or count, the connection is gone.
      if (errorCode(e) === DOWNSTREAM_GONE) return;
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

  private handleH2(down: Duplex, reader: ByteReader, peer: PeerInfo): Promise<void> {
    const session = serveH2(
      {
        direction: this.opts.direction,
        chain: () => this.opts.chain(),
        acquire: (route, tried) => this.upstreams.acquire(route, tried),
        release: (up) => this.upstreams.release(up as Upstream),
        count: (status, ctx) => this.count(status, ctx),
        nextRequestId,
        h2Upstream: this.h2Pool,
        maxBufferedBodyBytes: this.maxBody,
        routePolicy: (ctx) => this.opts.routePolicy?.(ctx),
        routeReply: (route, status) => this.opts.routeReply?.(route, status),
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

  private count(status: number, ctx: HttpRequestContext): void {
    countRequest(this.opts.direction, status, ctx);
  }

  /** Idle pooled HTTP/1.1 upstream connections (every route). */
  get idleUpstreams(): number {
    return this.upstreams.idleCount;
  }

  /** Drain: idle keep-alive downstreams close now, busy ones after their current response
   * (sent with `connection: close`); h2 downstreams get GOAWAY; idle upstreams are ended now and
   * busy ones when their response is done (none is kept any more). */
  drain(): void {
    this.draining = true;
    this.upstreams.close();
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
