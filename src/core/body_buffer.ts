/**
 * Whole-body buffering for filter chains that ask for bodies (HttpFilter.wantsRequestBody /
 * wantsResponseBody), with Envoy's limits: a request body over the limit is answered 413
 * ("request_payload_too_large"), a response body over it 500 ("response_payload_too_large"),
 * as Envoy's buffering filters do. The limit defaults to Envoy's per-connection buffer limit
 * (1 MiB). Chains without body filters never come here: bodies stream through untouched.
 */
import { Buffer } from "node:buffer";
import type { FilterChain } from "./filter_chain.ts";
import type { LocalResponse } from "./filter_api.ts";
import { type ByteReader, type Framing, lastChunk, type Trailer } from "./http1_codec.ts";
import { type BodyReader, h1Reader } from "./body_source.ts";

/** Envoy's default `per_connection_buffer_limit_bytes`. */
export const DEFAULT_MAX_BUFFERED_BODY_BYTES = 1024 * 1024;

class TooLarge extends Error {}

/** The whole body (de-chunked), or undefined when it exceeds `maxBytes` (reading stops there).
 * The trailers of a chunked body are pushed onto `trailers`. */
export function bufferBody(
  r: ByteReader,
  framing: Framing,
  maxBytes: number,
  trailers: Trailer[] = [],
): Promise<Uint8Array | undefined> {
  if (framing.kind === "none") return Promise.resolve(new Uint8Array(0));
  if (framing.kind === "length" && framing.length > maxBytes) return Promise.resolve(undefined);
  return bufferFrom(h1Reader(r, framing), maxBytes, trailers);
}

/** `bufferBody` for any wire (body_source.ts): HTTP/2 bodies are buffered with the same limit. */
export async function bufferFrom(
  src: BodyReader,
  maxBytes: number,
  trailers: Trailer[] = [],
): Promise<Uint8Array | undefined> {
  const parts: Buffer[] = [];
  let size = 0;
  try {
    const t = await src((b) => {
      size += b.length;
      if (size > maxBytes) throw new TooLarge();
      parts.push(b);
      return true;
    });
    trailers.push(...t);
  } catch (e) {
    if (e instanceof TooLarge) return undefined;
    throw e;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

export function wantsRequestBody(chain: FilterChain): boolean {
  for (const f of chain.filters) if (f.wantsRequestBody) return true;
  return false;
}

export function wantsResponseBody(chain: FilterChain): boolean {
  for (const f of chain.filters) if (f.wantsResponseBody) return true;
  return false;
}

export const REQUEST_TOO_LARGE: LocalResponse = Object.freeze({
  status: 413,
  headers: [],
  body: "Payload Too Large",
  details: "request_payload_too_large",
});

export const RESPONSE_TOO_LARGE: LocalResponse = Object.freeze({
  status: 500,
  headers: [],
  body: "Internal Server Error",
  details: "response_payload_too_large",
});

/** Headers for a buffered body sent on: its exact length, no transfer coding; or, when it has
 * trailers to carry, chunked (one chunk then the trailer section). */
export function setBufferedLength(
  h: { set(n: string, v: string): void; remove(n: string): void },
  length: number,
  chunked = false,
): void {
  h.remove("transfer-encoding");
  h.remove("content-length");
  if (chunked) h.set("transfer-encoding", "chunked");
  else h.set("content-length", String(length));
}

/** A buffered body framed as one chunk plus its trailer section. */
export function chunkedWithTrailers(body: Uint8Array, trailers: readonly Trailer[]): Buffer {
  const parts: Uint8Array[] = [];
  if (body.length) {
    parts.push(Buffer.from(body.length.toString(16) + "\r\n"), body, Buffer.from("\r\n"));
  }
  parts.push(lastChunk(trailers));
  return Buffer.concat(parts);
}
