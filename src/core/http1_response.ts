/**
 * The response phase of an HTTP/1.1 request in the L7 proxy: the upstream's head (interim
 * responses skipped, strict checks: any doubt is a 502), the response body buffered for body
 * filters (Envoy's limit: 500), the response chain (a local reply replaces the upstream's), then
 * the head and body downstream (http1_response_send.ts): buffered (its own length, or chunked
 * with trailers), streamed through filters (re-framed), or copied as framed; trailers through the
 * trailer hooks. The upstream connection goes back to the pool only when nothing about its
 * framing is in doubt.
 */
import type { Duplex } from "node:stream";
import type { Buffer } from "node:buffer";
import type { HttpFilter, HttpRequestContext, RouteChoice } from "./filter_api.ts";
import { applyResponseHeaders, type RouteHeaders } from "./route_headers.ts";
import type { FilterChain, ResponseVerdict } from "./filter_chain.ts";
import { bad, type ByteReader, type Framing, framingFrom } from "./http1_codec.ts";
import type { HeaderList } from "./header_map.ts";
import { type Upstream, upstreamHeadList } from "./http1_upstream.ts";
import { replyLocal, writeWithBackpressure } from "./http_io.ts";
import { bufferBody, RESPONSE_TOO_LARGE, wantsResponseBody } from "./body_buffer.ts";
import { responseStreamers, setStreamedFraming } from "./body_stream.ts";
import { errorMessage } from "./errors.ts";
import { plainConnection, stripResponseNamed } from "./http1_hop.ts";
import { switchProtocols } from "./http1_upgrade.ts";
import {
  finish,
  NO_TRAILERS,
  type ResHead,
  type Resp,
  responseHead,
  sendBuffered,
  sendCopied,
  sendStreamed,
} from "./http1_response_send.ts";

/** Largest response body sent in its head's write when it already arrived whole. */
const WHOLE_BYTES = 64 * 1024;

/** Per downstream connection. */
export interface ConnState {
  /** A response (head) was written for the current request: an error can no longer answer. */
  responding: boolean;
  /** Waiting for a request head with none started (drain closes such connections now). */
  idle: boolean;
  /** The current request asks for a WebSocket upgrade (http1_hop.ts): a 101 makes the
   * connection a byte tunnel (http1_upgrade.ts). */
  upgrade: boolean;
  /** The current request said `Connection: close` (HTTP/1.1): that field is not forwarded (it is
   * hop-by-hop), but the upstream connection that served the request is ended after it rather
   * than pooled, as when the field went through (weft's pool keeps idle connections with no
   * idle timeout; a client that closes is often a one-shot one, and the next hop then closes its
   * side of the exchange, and logs it, at once). */
  closing: boolean;
  /** The downstream's reader (the tunnel after a 101 reads on through it). */
  readonly reader: ByteReader;
  /** The upstream connection serving the current request (while its `owner` is this
   * downstream): a client that resets or closes its connection mid-exchange has it destroyed, as
   * Envoy resets the upstream request on a downstream disconnect, instead of it waiting on an
   * upstream that answers late or never. */
  up: Upstream | undefined;
  /** The current request's route header operations and the destination it took, when the
   * route has any: the response's are applied to the upstream's head (route_headers.ts). */
  routeHeaders: readonly [RouteHeaders, RouteChoice | undefined] | undefined;
}

/** What the response phase needs from its proxy. */
export interface ResponseDeps {
  readonly maxBody: number;
  draining(): boolean;
  count(status: number, ctx: HttpRequestContext): void;
  release(up: Upstream): void;
}

const NO_BODY: Framing = Object.freeze({ kind: "none" });
const NO_FILTERS: HttpFilter[] = [];

/** The response's framing from one pass over its fields (lists only when a name repeats); a
 * `connection` that names other fields has them removed (hop-by-hop, RFC 9110 §7.6.1; the
 * RESPONSE_HOP fields themselves are left out by headBytes, with no allocation). */
function responseFraming(h: HeaderList, noBody: boolean): Framing {
  let te: string | string[] | undefined;
  let cl: string | string[] | undefined;
  let named = false;
  const pairs = h.fields().pairs;
  for (let i = 0; i < pairs.length; i++) {
    const f = pairs[i]!;
    if (f[0] === "content-length") cl = cl === undefined ? f[1] : [...values(cl), f[1]];
    else if (f[0] === "transfer-encoding") te = te === undefined ? f[1] : [...values(te), f[1]];
    else if (f[0] === "connection" && !plainConnection(f[1])) named = true;
  }
  if (named) stripResponseNamed(h);
  return noBody ? NO_BODY : framingFrom(te, cl, true);
}

function values(v: string | string[]): string[] {
  return typeof v === "string" ? [v] : v;
}

/** The response phase. Synchronous in the common case — a head without interim responses, no
 * body filter, a synchronous chain and a small body that already arrived whole (one write with
 * its head) — so the request costs no Promise or async frame here; any step that must wait
 * (interim heads, a buffered or streamed body, a suspended filter, a body still arriving) goes on
 * asynchronously from that step. */
export function respondH1(
  p: ResponseDeps,
  down: Duplex,
  up: Upstream,
  resRaw: Buffer,
  ctx: HttpRequestContext,
  keepAlive: boolean,
  chain: FilterChain,
  state: ConnState,
): boolean | Promise<boolean> {
  const res = upstreamHeadList(resRaw);
  if (res.line[1].startsWith("1") && res.line[1] !== "101") {
    return afterInterim(p, down, up, res, ctx, keepAlive, chain, state);
  }
  return respondHead(p, down, up, res, ctx, keepAlive, chain, state);
}

async function afterInterim(
  p: ResponseDeps,
  down: Duplex,
  up: Upstream,
  res: ResHead,
  ctx: HttpRequestContext,
  keepAlive: boolean,
  chain: FilterChain,
  state: ConnState,
): Promise<boolean> {
  while (res.line[1].startsWith("1") && res.line[1] !== "101") {
    const next = await up.reader.readHead();
    if (!next) {
      throw bad("upstream closed after an interim response", "http_upstream_bad_message");
    }
    res = upstreamHeadList(next);
  }
  return await respondHead(p, down, up, res, ctx, keepAlive, chain, state);
}

function respondHead(
  p: ResponseDeps,
  down: Duplex,
  up: Upstream,
  res: ResHead,
  ctx: HttpRequestContext,
  keepAlive: boolean,
  chain: FilterChain,
  state: ConnState,
): boolean | Promise<boolean> {
  const status = Number(res.line[1]);
  if (status === 101) return switchProtocols(p, down, up, res, ctx, chain, state);
  const noBody = ctx.method === "HEAD" || status === 204 || status === 304;
  let resFraming: Framing;
  try {
    resFraming = responseFraming(res.headers, noBody);
  } catch (e) {
    throw bad(`upstream: ${errorMessage(e)}`, "http_upstream_bad_message");
  }
  const rh = state.routeHeaders;
  if (rh) applyResponseHeaders(rh[0], rh[1], res.headers);
  const r: Resp = {
    res,
    resCtx: {
      status,
      responseHeaders: res.headers,
      responseBody: undefined,
      bodyFollows: resFraming.kind !== "none",
    },
    resFraming,
    upstreamDone: false,
    resTrailers: NO_TRAILERS,
  };
  if (resFraming.kind !== "none" && wantsResponseBody(chain)) {
    return bufferedResponse(p, down, up, r, ctx, keepAlive, chain, state);
  }
  const v = chain.onResponse(ctx, r.resCtx);
  if (v instanceof Promise) {
    return v.then((verdict) => afterVerdict(p, down, up, r, ctx, keepAlive, chain, state, verdict));
  }
  return afterVerdict(p, down, up, r, ctx, keepAlive, chain, state, v);
}

/** A body filter sees the whole response body with the response phase (Envoy's limit: 500). */
async function bufferedResponse(
  p: ResponseDeps,
  down: Duplex,
  up: Upstream,
  r: Resp,
  ctx: HttpRequestContext,
  keepAlive: boolean,
  chain: FilterChain,
  state: ConnState,
): Promise<boolean> {
  r.resTrailers = [];
  const body = await bufferBody(up.reader, r.resFraming, p.maxBody, r.resTrailers);
  if (!body) {
    up.stream.destroy();
    return replyLocal(p, down, ctx, state, RESPONSE_TOO_LARGE, false);
  }
  r.upstreamDone = r.resFraming.kind !== "close";
  r.resCtx.responseBody = body;
  if (r.resTrailers.length) r.resCtx.responseTrailersFollow = true;
  r.resFraming = NO_BODY;
  const v = chain.onResponse(ctx, r.resCtx);
  const verdict = v instanceof Promise ? await v : v;
  return await afterVerdict(p, down, up, r, ctx, keepAlive, chain, state, verdict);
}

function afterVerdict(
  p: ResponseDeps,
  down: Duplex,
  up: Upstream,
  r: Resp,
  ctx: HttpRequestContext,
  keepAlive: boolean,
  chain: FilterChain,
  state: ConnState,
  verdict: ResponseVerdict,
): boolean | Promise<boolean> {
  if (verdict.kind === "respond") {
    up.stream.destroy(); // its body is not wanted; closing beats draining
    return replyLocal(p, down, ctx, state, verdict.response, keepAlive && !p.draining());
  }
  const closeAfter = !keepAlive || r.resFraming.kind === "close" || p.draining();
  if (r.resCtx.responseBody) {
    return sendBuffered(p, down, up, r, ctx, chain, state, closeAfter);
  }
  const resStreamers = r.resFraming.kind !== "none" ? responseStreamers(chain) : NO_FILTERS;
  // Chunked to a keep-alive (HTTP/1.1) client, close-delimited otherwise.
  if (resStreamers.length) {
    setStreamedFraming(r.resCtx.responseHeaders, !closeAfter);
    const head = responseHead(r, closeAfter, false, undefined);
    state.responding = true;
    down.write(head);
    return sendStreamed(p, down, up, r, ctx, chain, state, closeAfter, resStreamers);
  }
  // A small body of known length that already arrived (the common case) leaves in the head's
  // write.
  const f = r.resFraming;
  const whole = f.kind === "length" && f.length <= WHOLE_BYTES
    ? up.reader.takeBuffered(f.length)
    : undefined;
  const head = responseHead(r, closeAfter, true, whole);
  state.responding = true;
  if (whole) {
    down.write(head);
    return finish(p, up, r, ctx, state, closeAfter);
  }
  if (f.kind === "none") {
    // The head alone (HEAD, 204, 304): as copyBody would, wait for a full downstream to drain.
    const w = writeWithBackpressure(down, head);
    if (w === true || w === false) return finish(p, up, r, ctx, state, closeAfter);
    return w.then(() => finish(p, up, r, ctx, state, closeAfter));
  }
  return sendCopied(p, down, up, r, ctx, chain, state, closeAfter, head);
}
