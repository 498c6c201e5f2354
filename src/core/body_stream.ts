/**
 * Streamed bodies for filters that take them chunk by chunk (HttpFilter.streamsRequestBody /
 * streamsResponseBody): each chunk goes through those filters (request in chain order, response
 * in reverse), possibly replaced, and on with chunked framing (close-delimited for a response to
 * a client that cannot take chunked), trailers included when both sides are chunked. The end of the body is one more call with an empty chunk
 * and end-of-stream. A request filter may still answer locally (the upstream is abandoned); a
 * response filter cannot once the response started (the stream is reset, as Envoy does). A
 * failing filter follows its fail policy: FAIL_OPEN passes the chunk, otherwise the request is
 * answered with the fail response (request) or reset (response).
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
import { type ByteReader, copyBody, type Framing, lastChunk, type Trailer } from "./http1_codec.ts";
import { logger } from "./log.ts";

const log = logger("http_proxy");

export function requestStreamers(chain: FilterChain): HttpFilter[] {
  return chain.filters.filter((f) => f.streamsRequestBody && f.onRequestBodyChunk);
}

export function responseStreamers(chain: FilterChain): HttpFilter[] {
  return chain.filters.filter((f) => f.streamsResponseBody && f.onResponseBodyChunk).reverse();
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

function runChunk(
  filters: readonly HttpFilter[],
  call: (f: HttpFilter, chunk: Uint8Array) => BodyOutcome,
  chunk: Uint8Array,
  ctx: HttpRequestContext,
): Step {
  let bytes = chunk;
  for (const f of filters) {
    let out: BodyOutcome;
    try {
      out = call(f, bytes);
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

function frame(bytes: Uint8Array, chunked: boolean): Buffer | undefined {
  if (!chunked) {
    return bytes.length ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length) : undefined;
  }
  if (!bytes.length) return undefined;
  return Buffer.concat([
    Buffer.from(`${bytes.length.toString(16)}\r\n`),
    bytes,
    Buffer.from("\r\n"),
  ]);
}

class LocalReply extends Error {
  constructor(readonly response: LocalResponse) {
    super("local reply from a body filter");
  }
}

/** Copy a body from `from` to `to` through `filters`. Returns a local response when one
 * answered (request side); throws when the copy itself fails. */
export async function streamBody(
  from: ByteReader,
  framing: Framing,
  to: Duplex,
  write: (to: Duplex, b: Buffer) => boolean | Promise<void>,
  filters: readonly HttpFilter[],
  call: (f: HttpFilter, chunk: Uint8Array, eos: boolean) => BodyOutcome,
  ctx: HttpRequestContext,
  chunked: boolean,
  onTrailers: (t: Trailer[]) => Trailer[] = (t) => t,
): Promise<LocalResponse | undefined> {
  const step = async (chunk: Uint8Array, eos: boolean): Promise<void> => {
    const r = runChunk(filters, (f, c) => call(f, c, eos), chunk, ctx);
    if ("respond" in r) throw new LocalReply(r.respond);
    const framed = frame(r.bytes, chunked);
    if (framed) await write(to, framed);
  };
  let trailers: Trailer[] = [];
  try {
    await copyBody(from, framing, (b) => step(b, false), true, undefined, (t) => {
      trailers = onTrailers(t);
    });
    await step(new Uint8Array(0), true);
  } catch (e) {
    if (e instanceof LocalReply) return e.response;
    throw e;
  }
  // The trailers of a chunked body follow it when it goes on chunked (else they are dropped).
  if (chunked) await write(to, lastChunk(trailers));
  return undefined;
}

export function requestChunkCall(
  ctx: HttpRequestContext,
): (f: HttpFilter, chunk: Uint8Array, eos: boolean) => BodyOutcome {
  return (f, chunk, eos) => f.onRequestBodyChunk!(ctx, chunk, eos);
}

export function responseChunkCall(
  ctx: HttpRequestContext,
  res: HttpResponseContext,
): (f: HttpFilter, chunk: Uint8Array, eos: boolean) => BodyOutcome {
  return (f, chunk, eos) => f.onResponseBodyChunk!(ctx, res, chunk, eos);
}

export function logResponseReset(ctx: HttpRequestContext, why: string): void {
  log.warn("response reset by a body filter", { requestId: ctx.requestId, why });
}
