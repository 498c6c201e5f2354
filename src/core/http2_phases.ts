/**
 * The body and response phases of one HTTP/2 downstream stream (h2c, also inside HBONE), shared
 * by its two upstream kinds (HTTP/1.1: http2_downstream.ts, HTTP/2: http2_upstream.ts): the
 * request body buffered for body filters with Envoy's limit (413), the plan for sending it on
 * (buffered and replaced, streamed through filters, or as it comes, trailers included), and the
 * response phase onto the stream (500 over the limit, streamed chunks, local replies, trailers
 * as an HTTP/2 trailers HEADERS frame whatever the upstream's wire). As the HTTP/1.1 path
 * (http_proxy.ts), a response filter cannot answer once the response started: the stream is reset.
 */
import { Buffer } from "node:buffer";
import type { HttpRequestContext, HttpResponseContext, LocalResponse } from "./filter_api.ts";
import type { FilterChain } from "./filter_chain.ts";
import type { HeaderList } from "./header_map.ts";
import type { HeaderMap } from "./filter_api.ts";
import type { Trailer } from "./http1_codec.ts";
import { ErrorCode, H2ProtocolError, type H2Stream } from "./h2/mod.ts";
import { httpToGrpc } from "./grpc_status.ts";
import { routerReply } from "./router_reply.ts";
import { type BodyReader, h2HasBody, h2Reader, h2Sink } from "./body_source.ts";
import {
  bufferFrom,
  REQUEST_TOO_LARGE,
  RESPONSE_TOO_LARGE,
  setBufferedLength,
  wantsRequestBody,
  wantsResponseBody,
} from "./body_buffer.ts";
import {
  logResponseReset,
  requestStreamers,
  responseChunkCall,
  responseStreamers,
  sendBody,
  setStreamedFraming,
} from "./body_stream.ts";
import { requestTrailers, responseTrailers, TrailersReply, type TrailersStep } from "./trailers.ts";

/** Cut `stream`'s response short: RST_STREAM CANCEL. A destroy without an error would end the
 * stream cleanly (END_STREAM) once the client has ended its side (h2/tunnel.ts), and the client
 * would take the part it got for the whole response. */
export function cutStream(stream: H2Stream, why: string): void {
  stream.destroy(new H2ProtocolError(ErrorCode.CANCEL, why));
}

export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
]);

/** How the request body goes on to the upstream. */
export interface RequestPlan {
  /** The body as it comes (undefined: none, or it was buffered). */
  readonly src: BodyReader | undefined;
  /** The buffered (possibly replaced) body and its trailers after the trailer hooks. */
  readonly buffered: { body: Uint8Array; trailers: Trailer[] } | undefined;
  readonly streamers: ReturnType<typeof requestStreamers>;
  readonly onTrailers: (t: Trailer[]) => TrailersStep;
  /** Nothing at all to send after the head (END_STREAM on it). */
  readonly empty: boolean;
  /** To an HTTP/1.1 upstream: send it chunked (else by its content-length). */
  readonly chunked: boolean;
}

export function respondLocal(stream: H2Stream, r: LocalResponse): void {
  if (stream.destroyed || stream.headersSent) return;
  r = routerReply(stream, r); // a CORS request's headers on the router's replies
  const h: [string, string][] = [];
  for (const [k, v] of r.headers) h.push([k.toLowerCase(), v]);
  if (r.grpcStatus !== undefined) {
    h.push(["content-type", "application/grpc"], ["grpc-status", String(r.grpcStatus)]);
  } else if (isGrpcRequest(stream)) {
    // Envoy's local reply to a gRPC request: trailers-only (HTTP 200, no body, END_STREAM on the
    // HEADERS), grpc-status from the HTTP status by gRPC's mapping (503/504 → UNAVAILABLE) and the
    // reply's text as grpc-message. A body would be read as a malformed gRPC message.
    h.push(["content-type", "application/grpc"], ["grpc-status", String(httpToGrpc(r.status))]);
    const text = typeof r.body === "string" ? r.body : Buffer.from(r.body).toString("utf8");
    if (text) h.push(["grpc-message", encodeURIComponent(text)]);
    stream.respond(200, h, true);
    return;
  }
  stream.respond(r.grpcStatus !== undefined ? 200 : r.status, h);
  stream.end(typeof r.body === "string" ? r.body : Buffer.from(r.body));
}

/** Whether the request on `stream` is gRPC (content-type application/grpc, +proto, +json …). */
function isGrpcRequest(stream: H2Stream): boolean {
  for (const [k, v] of stream.headerList) {
    if (k === "content-type") return v.startsWith("application/grpc");
  }
  return false;
}

function declaredLength(h: HeaderMap): number {
  const v = h.get("content-length");
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : 0;
}

/** Buffers the request body when a filter of `chain` wants it: false when it was over the limit
 * (413 already answered, the rest of the body discarded). */
export async function bufferRequest(
  stream: H2Stream,
  ctx: HttpRequestContext,
  chain: FilterChain,
  maxBytes: number,
  trailers: Trailer[],
): Promise<boolean> {
  if (!h2HasBody(stream) || !wantsRequestBody(chain)) return true;
  const body = declaredLength(ctx.requestHeaders) > maxBytes
    ? undefined
    : await bufferFrom(h2Reader(stream), maxBytes, trailers);
  if (body) {
    ctx.requestBody = body;
    if (trailers.length) ctx.requestTrailersFollow = true;
    return true;
  }
  stream.resume(); // the rest is read and dropped: the client may finish sending
  respondLocal(stream, REQUEST_TOO_LARGE);
  return false;
}

/** After the request phase: how the body goes on, with `ctx.requestHeaders` set for it
 * (`chunked`: the upstream is HTTP/1.1, whose framing must carry trailers). Throws
 * `TrailersReply` when a trailers hook answered a buffered body's trailers locally. */
export async function planRequest(
  stream: H2Stream,
  ctx: HttpRequestContext,
  chain: FilterChain,
  reqTrailers: Trailer[],
  chunked: boolean,
): Promise<RequestPlan> {
  const onTrailers = requestTrailers(chain, ctx);
  const h = ctx.requestHeaders;
  const none = { src: undefined, buffered: undefined, streamers: [], onTrailers };
  if (ctx.requestBody) {
    const trailers = await onTrailers(reqTrailers);
    const c = chunked && trailers.length > 0;
    setBufferedLength(h, ctx.requestBody.length, c);
    return { ...none, buffered: { body: ctx.requestBody, trailers }, empty: false, chunked: c };
  }
  if (!h2HasBody(stream)) return { ...none, empty: true, chunked: false };
  const streamers = requestStreamers(chain);
  if (streamers.length) setStreamedFraming(h, chunked);
  const c = chunked && !h.has("content-length");
  return { ...none, src: h2Reader(stream), streamers, empty: false, chunked: c };
}

/** What the upstream answered, for `answer`. */
export interface UpstreamResponse {
  readonly status: number;
  readonly headers: HeaderList;
  readonly src: BodyReader | undefined;
  /** Its Content-Length when known (an early 500 over the limit). */
  readonly declaredLength: number;
  /** Abandon the upstream (its body is not wanted, or the downstream is gone). */
  drop(): void;
}

/** The response phase onto the downstream stream; returns the status sent. Throws when either
 * side fails mid-body (the caller resets the stream). */
export async function answer(
  stream: H2Stream,
  ctx: HttpRequestContext,
  chain: FilterChain,
  maxBytes: number,
  up: UpstreamResponse,
): Promise<number> {
  const resCtx: HttpResponseContext = {
    status: up.status,
    responseHeaders: up.headers,
    responseBody: undefined,
    bodyFollows: up.src !== undefined,
  };
  const resTrailers: Trailer[] = [];
  if (up.src && wantsResponseBody(chain)) {
    const body = up.declaredLength > maxBytes
      ? undefined
      : await bufferFrom(up.src, maxBytes, resTrailers);
    if (!body) {
      up.drop();
      respondLocal(stream, RESPONSE_TOO_LARGE);
      return RESPONSE_TOO_LARGE.status;
    }
    resCtx.responseBody = body;
    if (resTrailers.length) resCtx.responseTrailersFollow = true;
  }
  const rv = await chain.onResponse(ctx, resCtx);
  if (rv.kind === "respond") {
    up.drop();
    respondLocal(stream, rv.response);
    return rv.response.status;
  }
  const onTrailers = responseTrailers(chain, ctx, resCtx);
  const h = resCtx.responseHeaders;
  const body = resCtx.responseBody;
  let buffered: { body: Uint8Array; trailers: Trailer[] } | undefined;
  try {
    buffered = body ? { body, trailers: await onTrailers(resTrailers) } : undefined;
  } catch (e) {
    if (!(e instanceof TrailersReply)) throw e;
    up.drop(); // the response has not started: the local reply answers it
    respondLocal(stream, e.response);
    return e.response.status;
  }
  if (body) setBufferedLength(h, body.length, false);
  const src = buffered ? undefined : up.src;
  const streamers = src ? responseStreamers(chain) : [];
  if (streamers.length) setStreamedFraming(h, false);
  const out = h.entries().filter(([k]) => !HOP_BY_HOP.has(k) && k !== "host");
  const empty = !src && !buffered;
  stream.respond(resCtx.status, out, empty);
  if (empty) return resCtx.status;
  const call = responseChunkCall(ctx, resCtx);
  const local = await sendBody(h2Sink(stream), src, buffered, streamers, call, ctx, onTrailers);
  if (local) {
    logResponseReset(ctx, local.details);
    up.drop();
    cutStream(stream, "a response filter answered mid-body");
  }
  return resCtx.status;
}
