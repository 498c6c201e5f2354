/**
 * The response phase of an HTTP/1.1 request in the L7 proxy: the upstream's head (interim
 * responses skipped, strict checks: any doubt is a 502), the response body buffered for body
 * filters (Envoy's limit: 500), the response chain (a local reply replaces the upstream's), then
 * the head and body downstream: buffered (its own length, or chunked with trailers), streamed
 * through filters (re-framed), or copied as framed; trailers through the trailer hooks. The
 * upstream connection goes back to the pool only when nothing about its framing is in doubt.
 */
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import type { HttpRequestContext, HttpResponseContext } from "./filter_api.ts";
import type { FilterChain } from "./filter_chain.ts";
import {
  bad,
  type ByteReader,
  copyBody,
  type Framing,
  framingFrom,
  headBytes,
  type Trailer,
} from "./http1_codec.ts";
import type { HeaderList } from "./header_map.ts";
import { endUpstream, type Upstream, upstreamHeadList } from "./http1_upstream.ts";
import { writeLocal, writeWithBackpressure } from "./http_io.ts";
import {
  bufferBody,
  chunkedWithTrailers,
  RESPONSE_TOO_LARGE,
  setBufferedLength,
  wantsResponseBody,
} from "./body_buffer.ts";
import {
  logResponseReset,
  responseChunkCall,
  responseStreamers,
  setStreamedFraming,
  streamBody,
} from "./body_stream.ts";
import { responseTrailers, TrailersReply } from "./trailers.ts";
import { errorMessage } from "./errors.ts";
import { plainConnection, RESPONSE_HOP, stripResponseNamed } from "./http1_hop.ts";
import { switchProtocols } from "./http1_upgrade.ts";

const CONNECTION_CLOSE: readonly (readonly [string, string])[] = [["connection", "close"]];
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
}

/** What the response phase needs from its proxy. */
export interface ResponseDeps {
  readonly maxBody: number;
  draining(): boolean;
  count(status: number, ctx: HttpRequestContext): void;
  release(up: Upstream): void;
}

const NO_BODY: Framing = Object.freeze({ kind: "none" });

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

export async function respondH1(
  p: ResponseDeps,
  down: Duplex,
  up: Upstream,
  resRaw: Buffer,
  ctx: HttpRequestContext,
  keepAlive: boolean,
  chain: FilterChain,
  state: ConnState,
): Promise<boolean> {
  let res = upstreamHeadList(resRaw);
  while (res.line[1].startsWith("1") && res.line[1] !== "101") {
    const next = await up.reader.readHead();
    if (!next) {
      throw bad("upstream closed after an interim response", "http_upstream_bad_message");
    }
    res = upstreamHeadList(next);
  }
  const status = Number(res.line[1]);
  if (status === 101) return switchProtocols(p, down, up, res, ctx, chain, state);
  const resHeaders = res.headers;
  const noBody = ctx.method === "HEAD" || status === 204 || status === 304;
  let resFraming: Framing;
  try {
    resFraming = responseFraming(resHeaders, noBody);
  } catch (e) {
    throw bad(`upstream: ${errorMessage(e)}`, "http_upstream_bad_message");
  }
  const resCtx: HttpResponseContext = {
    status,
    responseHeaders: resHeaders,
    responseBody: undefined,
    bodyFollows: resFraming.kind !== "none",
  };
  let upstreamDone = false;
  const resTrailers: Trailer[] = [];
  if (resFraming.kind !== "none" && wantsResponseBody(chain)) {
    const body = await bufferBody(up.reader, resFraming, p.maxBody, resTrailers);
    if (!body) {
      up.stream.destroy();
      p.count(500, ctx);
      state.responding = true;
      return writeLocal(down, RESPONSE_TOO_LARGE, false);
    }
    upstreamDone = resFraming.kind !== "close";
    resCtx.responseBody = body;
    if (resTrailers.length) resCtx.responseTrailersFollow = true;
    resFraming = { kind: "none" };
  }
  const v0 = chain.onResponse(ctx, resCtx);
  const verdict = v0 instanceof Promise ? await v0 : v0;
  if (verdict.kind === "respond") {
    up.stream.destroy(); // its body is not wanted; closing beats draining
    p.count(verdict.response.status, ctx);
    state.responding = true;
    return writeLocal(down, verdict.response, keepAlive && !p.draining());
  }
  const closeAfter = !keepAlive || resFraming.kind === "close" || p.draining();
  const resBody = resCtx.responseBody;
  const onResTrailers = responseTrailers(chain, ctx, resCtx);
  // Trailers of a buffered body go on chunked to a keep-alive client, else they are dropped.
  let bufTrailers: Trailer[] = [];
  try {
    if (resBody && !closeAfter) bufTrailers = await onResTrailers(resTrailers);
  } catch (e) {
    if (!(e instanceof TrailersReply)) throw e;
    up.stream.destroy(); // nothing of the response left yet: the local reply answers
    p.count(e.response.status, ctx);
    state.responding = true;
    return writeLocal(down, e.response, false);
  }
  if (resBody) setBufferedLength(resCtx.responseHeaders, resBody.length, bufTrailers.length > 0);
  const resStreamers = resFraming.kind !== "none" ? responseStreamers(chain) : [];
  // Chunked to a keep-alive (HTTP/1.1) client, close-delimited otherwise.
  if (resStreamers.length) setStreamedFraming(resCtx.responseHeaders, !closeAfter);
  // The whole body when it is at hand: a buffered one, or a small one of known length that
  // already arrived (the common case): it leaves in the head's write.
  let whole: Uint8Array | undefined;
  if (resBody) whole = bufTrailers.length ? chunkedWithTrailers(resBody, bufTrailers) : resBody;
  else if (
    !resStreamers.length && resFraming.kind === "length" && resFraming.length <= WHOLE_BYTES
  ) whole = up.reader.takeBuffered(resFraming.length);
  // Hop-by-hop fields never pass (RESPONSE_HOP; those `connection` names are gone already); a
  // known length is re-stated (the first content-length field gives way to the normalised one,
  // appended).
  const resHead = headBytes(`HTTP/1.1 ${resCtx.status} ${res.line[2] || "OK"}`, resHeaders, {
    omit: RESPONSE_HOP,
    replace: resFraming.kind === "length" && !resStreamers.length
      ? ["content-length", String(resFraming.length)]
      : undefined,
    extra: closeAfter && resFraming.kind !== "close" ? CONNECTION_CLOSE : undefined,
  }, whole);
  state.responding = true;
  if (whole) {
    down.write(resHead);
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
    let started = false; // a response that arrived whole is held until its trailers are seen
    try {
      const copied = copyBody(
        up.reader,
        resFraming,
        (b) => {
          started = true;
          return writeWithBackpressure(down, b);
        },
        false,
        resHead,
        onResTrailers,
      );
      if (copied) await copied; // a whole small response is written synchronously
    } catch (e) {
      if (!(e instanceof TrailersReply)) throw e;
      up.stream.destroy();
      if (!started) {
        p.count(e.response.status, ctx);
        return writeLocal(down, e.response, false);
      }
      logResponseReset(ctx, e.response.details); // too late to answer: reset, as Envoy
      down.destroy();
      return false;
    }
  }
  p.count(resCtx.status, ctx);
  const upClose = (resHeaders.get("connection") ?? "").toLowerCase().includes("close");
  if (resBody && !upstreamDone) up.stream.destroy();
  else if (resFraming.kind === "close" || upClose || state.closing) endUpstream(up.stream);
  else p.release(up);
  return !closeAfter;
}
