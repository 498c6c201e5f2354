/**
 * Streamed bodies for filters that take them chunk by chunk (HttpFilter.streamsRequestBody /
 * streamsResponseBody): each chunk goes through those filters (request in chain order, response
 * in reverse), possibly replaced, and on with chunked framing (close-delimited for a response to
 * a client that cannot take chunked), trailers included when both sides are chunked. The end of
 * the body is one more call with an empty chunk and end-of-stream, unless trailers follow: then,
 * as Envoy, no body call ends the stream; each filter releases what it holds (it goes on through
 * the later filters) and the trailers hooks end the message. A request filter may still answer locally (the upstream is abandoned); a
 * response filter cannot once the response started (the stream is reset, as Envoy does). A
 * failing filter follows its fail policy: FAIL_OPEN passes the chunk, otherwise the request is
 * answered with the fail response (request) or reset (response). A trailers hook that answers
 * locally (trailers.ts `TrailersReply`) ends the body the same way.
 */
import { Buffer } from "node:buffer";
import type { Duplex } from "node:stream";
import { failResponse, type FilterChain } from "./filter_chain.ts";
import type {
  BodyOutcome,
  HttpFilter,
  HttpRequestContext,
  HttpResponseContext,
  LocalResponse,
} from "./filter_api.ts";
import type { ByteReader, Framing, Trailer } from "./http1_codec.ts";
import { type BodyReader, type BodySink, h1Reader, h1Sink } from "./body_source.ts";
import { logger } from "./log.ts";
import { TrailersReply, type TrailersStep } from "./trailers.ts";

const log = logger("http_proxy");

/** No streaming filters (the same empty list every time; never changed by callers). */
const NONE: HttpFilter[] = [];

// Looked at per message with a body: no list is built unless a filter streams (the common chain
// has none), and no closure either.
const streamsRequest = (f: HttpFilter): boolean =>
  (f.streamsRequestBody ?? false) && f.onRequestBodyChunk !== undefined;
const streamsResponse = (f: HttpFilter): boolean =>
  (f.streamsResponseBody ?? false) && f.onResponseBodyChunk !== undefined;

export function requestStreamers(chain: FilterChain): HttpFilter[] {
  const fs = chain.filters;
  for (let i = 0; i < fs.length; i++) if (streamsRequest(fs[i]!)) return fs.filter(streamsRequest);
  return NONE;
}

export function responseStreamers(chain: FilterChain): HttpFilter[] {
  const fs = chain.filters;
  for (let i = 0; i < fs.length; i++) {
    if (streamsResponse(fs[i]!)) return fs.filter(streamsResponse).reverse();
  }
  return NONE;
}

/** Headers for a body whose length the filters may change. */
export function setStreamedFraming(
  h: { set(n: string, v: string): void; remove(n: string): void },
  chunked: boolean,
): void {
  h.remove("content-length");
  if (chunked) h.set("transfer-encoding", "chunked");
  else h.remove("transfer-encoding");
}

type Step = { bytes: Uint8Array } | { respond: LocalResponse };

/** One body hook call on a chunk (a filter may take time: proxy-wasm stopped at the end).
 * `beforeTrailers`: trailers follow and the body is over: the filter's before-trailers hook
 * releases what it holds, or (without that hook) a last empty chunk with end-of-stream true. */
export type ChunkCall = (
  f: HttpFilter,
  chunk: Uint8Array,
  eos: boolean,
  beforeTrailers?: boolean,
) => BodyOutcome | Promise<BodyOutcome>;

async function runChunk(
  filters: readonly HttpFilter[],
  call: (f: HttpFilter, chunk: Uint8Array) => BodyOutcome | Promise<BodyOutcome>,
  chunk: Uint8Array,
  ctx: HttpRequestContext,
): Promise<Step> {
  let bytes = chunk;
  for (const f of filters) {
    let out: BodyOutcome;
    try {
      const o = call(f, bytes);
      out = o instanceof Promise ? await o : o;
    } catch (e) {
      out = { action: "failed", kind: "trap", message: String(e) };
    }
    if (out.action === "replace") bytes = out.body;
    else if (out.action === "respond") return { respond: out.response };
    else if (out.action === "failed" && f.failPolicy !== "FAIL_OPEN") {
      return { respond: failResponse(ctx) };
    }
  }
  return { bytes };
}

class LocalReply extends Error {
  constructor(readonly response: LocalResponse) {
    super("local reply from a body filter");
  }
}

/** Copy a body from `from` to `to` through `filters`. Returns a local response when one
 * answered (request side); throws when the copy itself fails. */
export function streamBody(
  from: ByteReader,
  framing: Framing,
  to: Duplex,
  write: (to: Duplex, b: Buffer) => boolean | Promise<void>,
  filters: readonly HttpFilter[],
  call: ChunkCall,
  ctx: HttpRequestContext,
  chunked: boolean,
  onTrailers: (t: Trailer[]) => TrailersStep = (t) => t,
): Promise<LocalResponse | undefined> {
  const sink = h1Sink(to, chunked, write);
  return streamThrough(h1Reader(from, framing), sink, filters, call, ctx, onTrailers);
}

/** `streamBody` for any wire (body_source.ts): the trailers go where the sink's framing has a
 * place for them (HTTP/1.1 chunked, HTTP/2). */
export async function streamThrough(
  src: BodyReader,
  sink: BodySink,
  filters: readonly HttpFilter[],
  call: ChunkCall,
  ctx: HttpRequestContext,
  onTrailers: (t: Trailer[]) => TrailersStep = (t) => t,
): Promise<LocalResponse | undefined> {
  const step = async (chunk: Uint8Array, eos: boolean): Promise<void> => {
    const r = await runChunk(filters, (f, c) => call(f, c, eos), chunk, ctx);
    if ("respond" in r) throw new LocalReply(r.respond);
    if (r.bytes.length) await sink.write(r.bytes);
  };
  let trailers: Trailer[];
  try {
    const raw = await src((b) => step(b, false));
    // With trailers, no body call ends the stream (Envoy): what the filters hold goes on first.
    if (raw.length) await releaseHeld(filters, call, ctx, sink);
    else await step(EMPTY, true);
    const t = onTrailers(raw);
    trailers = t instanceof Promise ? await t : t;
  } catch (e) {
    if (e instanceof LocalReply || e instanceof TrailersReply) return e.response;
    throw e;
  }
  await sink.end(trailers);
  return undefined;
}

const EMPTY = new Uint8Array(0);

/** Trailers follow: each filter in turn releases the bytes it holds, which go on through the
 * filters after it (end-of-stream false) and out, before any trailers hook runs. */
async function releaseHeld(
  filters: readonly HttpFilter[],
  call: ChunkCall,
  ctx: HttpRequestContext,
  sink: BodySink,
): Promise<void> {
  for (let i = 0; i < filters.length; i++) {
    const f = filters[i]!;
    const r = await runChunk([f], (g, c) => call(g, c, false, true), EMPTY, ctx);
    if ("respond" in r) throw new LocalReply(r.respond);
    if (!r.bytes.length) continue;
    const on = await runChunk(filters.slice(i + 1), (g, c) => call(g, c, false), r.bytes, ctx);
    if ("respond" in on) throw new LocalReply(on.respond);
    if (on.bytes.length) await sink.write(on.bytes);
  }
}

/** Sends a body on through `sink` the way the chain asks: the buffered (possibly replaced) body
 * with its trailers, chunk by chunk through streaming filters, or as it comes. Returns a local
 * response when a streaming filter answered. */
export async function sendBody(
  sink: BodySink,
  src: BodyReader | undefined,
  buffered: { body: Uint8Array; trailers: Trailer[] } | undefined,
  streamers: readonly HttpFilter[],
  call: ChunkCall,
  ctx: HttpRequestContext,
  onTrailers: (t: Trailer[]) => TrailersStep,
): Promise<LocalResponse | undefined> {
  if (buffered) {
    if (buffered.body.length) await sink.write(buffered.body);
    await sink.end(buffered.trailers);
    return undefined;
  }
  if (!src) {
    await sink.end([]);
    return undefined;
  }
  if (streamers.length) return await streamThrough(src, sink, streamers, call, ctx, onTrailers);
  try {
    const t = await src((b) => sink.write(b));
    await sink.end(await onTrailers(t));
  } catch (e) {
    if (e instanceof TrailersReply) return e.response;
    throw e;
  }
  return undefined;
}

export function requestChunkCall(
  ctx: HttpRequestContext,
): ChunkCall {
  return (f, chunk, eos, before) =>
    before && f.onRequestBodyBeforeTrailers
      ? f.onRequestBodyBeforeTrailers(ctx)
      : f.onRequestBodyChunk!(ctx, chunk, eos || before === true);
}

export function responseChunkCall(
  ctx: HttpRequestContext,
  res: HttpResponseContext,
): ChunkCall {
  return (f, chunk, eos, before) =>
    before && f.onResponseBodyBeforeTrailers
      ? f.onResponseBodyBeforeTrailers(ctx, res)
      : f.onResponseBodyChunk!(ctx, res, chunk, eos || before === true);
}

export function logResponseReset(ctx: HttpRequestContext, why: string): void {
  log.warn("response reset by a body filter", { requestId: ctx.requestId, why });
}
