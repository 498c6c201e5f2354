/**
 * HTTP/1.1 body framing (RFC 9112 §6-7), strict as hyper/llhttp/Envoy: `framingOf` decides the
 * framing from the headers (one Content-Length or equal duplicates; Transfer-Encoding with
 * `chunked` final and alone; both → 400), `bodyChunks` is the body framer (yields the body's data
 * chunks, dechunked, with strict hex sizes, CRLF after each chunk and validated trailers), and
 * `copyBody` forwards a body re-framed by weft itself (chunk extensions dropped), so what the
 * upstream sees is exactly what weft parsed.
 */
import { Buffer } from "node:buffer";
import type { ByteReader } from "./http1_codec.ts";
import { bad, MAX_HEAD_BYTES, MAX_HEADERS } from "./http1_codec.ts";

/** One trailer field (name as sent, value trimmed). */
export type Trailer = [string, string];

/** Fields a sender must not put in a trailer section (RFC 9110 §6.5.1: framing, routing,
 * request modifiers, authentication, response control data, content metadata) and hop-by-hop
 * fields: dropped on receipt, never merged into the headers nor forwarded. */
export const FORBIDDEN_TRAILERS: ReadonlySet<string> = new Set([
  "content-length",
  "transfer-encoding",
  "host",
  "te",
  "trailer",
  "connection",
  "keep-alive",
  "proxy-connection",
  "upgrade",
  "content-type",
  "content-encoding",
  "content-range",
  "expect",
  "max-forwards",
  "range",
  "if-match",
  "if-none-match",
  "if-modified-since",
  "if-unmodified-since",
  "if-range",
  "authorization",
  "proxy-authorization",
  "www-authenticate",
  "proxy-authenticate",
  "cookie",
  "set-cookie",
  "cache-control",
  "pragma",
  "age",
  "expires",
  "date",
  "location",
  "retry-after",
  "vary",
]);

/** Serialized trailer section of a chunked body: last-chunk, fields, final CRLF. Fields whose
 * name or value could split the section are skipped (a filter may have set them). */
export function lastChunk(trailers: readonly Trailer[]): Buffer {
  let s = "0\r\n";
  for (const [k, v] of trailers) {
    if (!TOKEN.test(k) || BAD_VALUE.test(v) || FORBIDDEN_TRAILERS.has(k.toLowerCase())) continue;
    s += k + ": " + v + "\r\n";
  }
  return Buffer.from(s + "\r\n", "latin1");
}

export type Framing =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  | { readonly kind: "close" };

type HeaderValues = (name: string) => string | string[] | undefined;

const NONE: Framing = Object.freeze({ kind: "none" });
const CLOSE: Framing = Object.freeze({ kind: "close" });

function values(v: string | string[] | undefined): string[] {
  const out: string[] = [];
  if (v === undefined) return out;
  for (const x of Array.isArray(v) ? v : [v]) {
    if (x.indexOf(",") < 0) out.push(x.trim());
    else for (const part of x.split(",")) out.push(part.trim());
  }
  return out;
}

/** Body framing from headers (lower-case names; `get` may return every value of a name).
 * Requests: TE + CL → 400; a coding other than `chunked` → 501; `chunked` not final or twice →
 * 400; differing Content-Lengths → 400. Responses: bad framing throws too (the caller answers
 * 502 and drops the upstream); a TE whose final coding is not chunked is read until close. */
export function framingOf(get: HeaderValues, isResponse: boolean): Framing {
  return framingFrom(get("transfer-encoding"), get("content-length"), isResponse);
}

/** framingOf from the transfer-encoding and content-length values themselves (each a value, the
 * list of every value, or undefined/empty when absent). */
export function framingFrom(
  teRaw: string | string[] | undefined,
  clRaw: string | string[] | undefined,
  isResponse: boolean,
): Framing {
  // The common heads first, without the lists below: no transfer-encoding and at most one
  // plain content-length (anything else takes the general path and its checks).
  if (teRaw === undefined || (Array.isArray(teRaw) && teRaw.length === 0)) {
    if (clRaw === undefined || (Array.isArray(clRaw) && clRaw.length === 0)) {
      return isResponse ? CLOSE : NONE;
    }
    const one = typeof clRaw === "string" ? clRaw : clRaw.length === 1 ? clRaw[0]! : undefined;
    if (one !== undefined && isDigits(one, 15)) {
      const n = Number(one);
      return n === 0 ? NONE : { kind: "length", length: n };
    }
  }
  const te = values(teRaw).map((x) => x.toLowerCase());
  const cls = values(clRaw);
  if (te.length > 0) {
    if (cls.length > 0) throw bad("both transfer-encoding and content-length");
    const chunkedAt = te.indexOf("chunked");
    if (chunkedAt >= 0 && chunkedAt !== te.length - 1) throw bad("chunked is not the final coding");
    if (isResponse) return chunkedAt < 0 ? { kind: "close" } : { kind: "chunked" };
    if (te.length !== 1 || chunkedAt !== 0) {
      throw bad(`unsupported transfer-encoding "${te.join(", ")}"`, "http_not_implemented");
    }
    return { kind: "chunked" };
  }
  if (cls.length > 0) {
    const first = cls[0]!;
    if (!isDigits(first, 15)) throw bad("bad content-length");
    if (cls.some((x) => x !== first)) throw bad("conflicting content-length values");
    const n = Number(first);
    return n === 0 ? { kind: "none" } : { kind: "length", length: n };
  }
  return isResponse ? { kind: "close" } : { kind: "none" };
}

/** 1 to `max` ASCII digits. */
function isDigits(s: string, max: number): boolean {
  if (s.length === 0 || s.length > max) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** Largest chunk accepted (16 hex digits could overflow a double; Envoy/hyper refuse overflow). */
export const MAX_CHUNK_BYTES = 2 ** 40;

/** The size of a chunk-size line (RFC 9112 §7.1: 1-11 hex digits, then optional extensions
 * after `;` with no control character but HTAB, then CRLF), or -1 when malformed. A char scan,
 * no regex call per chunk. */
export function chunkSize(line: string): number {
  const n = line.length;
  if (n < 3 || line.charCodeAt(n - 2) !== 0x0d || line.charCodeAt(n - 1) !== 0x0a) return -1;
  let size = 0;
  let i = 0;
  for (; i < n - 2 && i < 12; i++) {
    const c = line.charCodeAt(i);
    const d = c >= 0x30 && c <= 0x39
      ? c - 0x30
      : c >= 0x61 && c <= 0x66
      ? c - 0x57
      : c >= 0x41 && c <= 0x46
      ? c - 0x37
      : -1;
    if (d < 0) break;
    size = size * 16 + d;
  }
  if (i === 0 || i > 11) return -1;
  if (i === n - 2) return size;
  while (i < n - 2 && (line.charCodeAt(i) === 0x20 || line.charCodeAt(i) === 0x09)) i++;
  if (line.charCodeAt(i) !== 0x3b) return -1; // ;
  for (i++; i < n - 2; i++) {
    const c = line.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return -1;
  }
  return size;
}
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

// deno-lint-ignore no-control-regex -- control characters are what is refused
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

/** The body framer: yields the body's data in chunks (at most `max` bytes each); returns the
 * trailer fields of a chunked body (validated as header fields are, forbidden ones dropped). */
export async function* bodyChunks(
  r: ByteReader,
  framing: Framing,
  max = 1 << 20,
): AsyncGenerator<Buffer, Trailer[], void> {
  switch (framing.kind) {
    case "none":
      return [];
    case "length": {
      let left = framing.length;
      while (left > 0) {
        const c = await r.readSome(Math.min(left, max));
        if (!c) throw bad("connection closed inside a body");
        left -= c.length;
        yield c;
      }
      return [];
    }
    case "close":
      for (;;) {
        const c = await r.readSome(max);
        if (!c) return [];
        yield c;
      }
    case "chunked":
      for (;;) {
        const size = chunkSize((await r.readLine()).toString("latin1"));
        if (size < 0) throw bad("bad chunk size line");
        if (size > MAX_CHUNK_BYTES) throw bad("chunk too large");
        if (size === 0) return await trailers(r);
        let left = size;
        while (left > 0) {
          const c = await r.readSome(Math.min(left, max));
          if (!c) throw bad("connection closed inside a chunk");
          left -= c.length;
          yield c;
        }
        const end = await r.readLine(2);
        if (end.length !== 2) throw bad("chunk data not followed by CRLF");
      }
  }
}

/** The trailer section (RFC 9112 §7.1.2), with the head's rules: tchar names, no CTL in values,
 * no obsolete folding, at most MAX_HEADERS fields and MAX_HEAD_BYTES in all (else 431). */
async function trailers(r: ByteReader): Promise<Trailer[]> {
  const out: Trailer[] = [];
  let count = 0;
  let size = 0;
  for (;;) {
    const t = await r.readLine();
    if (t.length === 2) return out;
    size += t.length;
    if (size > MAX_HEAD_BYTES) throw bad("trailer section too large", "http_head_too_large");
    if (++count > MAX_HEADERS) throw bad("too many trailers", "http_head_too_large");
    const s = t.toString("latin1", 0, t.length - 2);
    if (s[0] === " " || s[0] === "\t") throw bad("obsolete line folding in a trailer");
    const c = s.indexOf(":");
    if (c <= 0 || !TOKEN.test(s.slice(0, c))) throw bad("malformed trailer");
    const value = s.slice(c + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (BAD_VALUE.test(value)) throw bad("control character in a trailer");
    const name = s.slice(0, c);
    if (FORBIDDEN_TRAILERS.has(name.toLowerCase())) continue;
    out.push([name, value]);
  }
}

/** Bytes of body gathered before the first write when they are already buffered. */
const PREFETCH_BYTES = 64 * 1024;

/** Copies one body from `r` to `write`: length and close bodies as they are, chunked bodies
 * re-chunked by weft with their trailers (or, with `dechunk`, only their data: for HTTP/2
 * downstreams and filters). `head`, if given, is written with the first body bytes.
 * `onTrailers` sees the trailers of a chunked body (and may replace those forwarded, or hold
 * them: a Promise, or throw). Nothing is written while more of the body is
 * already buffered (up to 64 KiB): a message that arrived whole is validated whole before its
 * first byte (head included) goes out, so a malformed body reaches nobody. */
export function copyBody(
  r: ByteReader,
  framing: Framing,
  write: (b: Buffer) => boolean | Promise<void>,
  dechunk = false,
  head?: Buffer,
  onTrailers?: (t: Trailer[]) => Trailer[] | Promise<Trailer[]> | void,
): Promise<void> | undefined {
  // Fast paths, no generator and no Promise unless the write waits: no body (the head alone),
  // and a body of known length already buffered whole (one write with its head).
  let whole: Buffer | undefined;
  if (framing.kind === "none") whole = head;
  else if (framing.kind === "length" && framing.length <= PREFETCH_BYTES) {
    const body = r.takeBuffered(framing.length);
    if (!body) return copyChunks(r, framing, write, dechunk, head, onTrailers);
    whole = head ? Buffer.concat([head, body]) : body;
  } else return copyChunks(r, framing, write, dechunk, head, onTrailers);
  if (!whole) return undefined;
  const w = write(whole);
  return w === true || w === false ? undefined : w;
}

async function copyChunks(
  r: ByteReader,
  framing: Framing,
  write: (b: Buffer) => boolean | Promise<void>,
  dechunk: boolean,
  head: Buffer | undefined,
  onTrailers: ((t: Trailer[]) => Trailer[] | Promise<Trailer[]> | void) | undefined,
): Promise<void> {
  const chunked = framing.kind === "chunked" && !dechunk;
  const it = bodyChunks(r, framing);
  const pending: Buffer[] = head ? [head] : [];
  let size = 0;
  for (;;) {
    const n = await it.next();
    if (n.done) {
      let seen = onTrailers && framing.kind === "chunked" ? onTrailers(n.value) : undefined;
      if (seen instanceof Promise) seen = await seen;
      const t = seen || n.value;
      if (chunked) pending.push(lastChunk(t));
      if (pending.length) await write(pending.length === 1 ? pending[0]! : Buffer.concat(pending));
      return;
    }
    if (chunked) pending.push(Buffer.from(n.value.length.toString(16) + "\r\n"), n.value, CRLF);
    else pending.push(n.value);
    size += n.value.length;
    if (size >= PREFETCH_BYTES || !moreBuffered(r, framing)) {
      await write(pending.length === 1 ? pending[0]! : Buffer.concat(pending));
      pending.length = 0;
      size = 0;
    }
  }
}

/** Whether the next body step can go on from what is buffered. After a chunk's data what is
 * left is its CRLF: the next chunk is there only with its whole size line (else the data held so
 * far would wait on the peer's next bytes — a request streamed chunk by chunk, its response
 * awaited before the next, would never reach the upstream). */
function moreBuffered(r: ByteReader, framing: Framing): boolean {
  if (r.buffered === 0) return false;
  return framing.kind !== "chunked" || r.lineBuffered(2);
}

const CRLF = Buffer.from("\r\n");
