/**
 * The request side of an HTTP/1.1 upstream exchange in the L7 proxy: the request head (as received
 * when nothing changed it) and its body onto the upstream connection — buffered, streamed through
 * filters (re-framed), or copied as framed — every write through writeUpstream, so a connection
 * the upstream closed ends the copy (http_io.ts).
 */
import { Buffer } from "node:buffer";
import type { HttpFilter, HttpRequestContext, LocalResponse } from "./filter_api.ts";
import { type ByteReader, copyBody, type Framing, type Trailer } from "./http1_codec.ts";
import type { Upstream } from "./http1_upstream.ts";
import { HeaderList } from "./header_map.ts";
import { writeUpstream } from "./http_io.ts";
import { chunkedWithTrailers } from "./body_buffer.ts";
import { requestChunkCall, streamBody } from "./body_stream.ts";
import type { TrailersStep } from "./trailers.ts";

/** The request head exactly as received, when sending it re-encoded would give the same bytes:
 * an HTTP/1.1 start line with the same method and target, and no field set, added or removed
 * (HeaderList.receivedHead). Saves building and copying the head per request. */
export function receivedRequestHead(ctx: HttpRequestContext): Buffer | undefined {
  const h = ctx.requestHeaders;
  const src = h instanceof HeaderList ? h.receivedHead() : undefined;
  if (!src) return undefined;
  const m = ctx.method, t = ctx.path;
  const sp2 = m.length + 1 + t.length;
  const eol = sp2 + 1 + HTTP11.length;
  if (src.length < eol + 2 || src[eol] !== 0x0d || src[eol + 1] !== 0x0a) return undefined;
  if (src[m.length] !== 0x20 || src[sp2] !== 0x20) return undefined;
  for (let i = 0; i < m.length; i++) if (src[i] !== m.charCodeAt(i)) return undefined;
  for (let i = 0; i < t.length; i++) {
    if (src[m.length + 1 + i] !== t.charCodeAt(i)) return undefined;
  }
  for (let i = 0; i < HTTP11.length; i++) {
    if (src[sp2 + 1 + i] !== HTTP11.charCodeAt(i)) return undefined;
  }
  return src;
}

const HTTP11 = "HTTP/1.1";

/** What goes upstream for one request (fixed before the first try). */
export interface Outgoing {
  readonly reader: ByteReader;
  readonly ctx: HttpRequestContext;
  readonly reqFraming: Framing;
  readonly reqHead: Buffer;
  readonly bufTrailers: Trailer[];
  readonly streamers: HttpFilter[];
  readonly onReqTrailers: (t: Trailer[]) => TrailersStep;
}

/** Writes the request on `u`; synchronous when it goes out in one write (a request without a
 * body, or with one that already arrived whole). `body`: a buffered body to send instead of
 * reading one. */
export function sendRequest(
  o: Outgoing,
  u: Upstream,
  body: Uint8Array | undefined,
): LocalResponse | undefined | Promise<LocalResponse | undefined> {
  if (body) {
    const all = o.bufTrailers.length ? chunkedWithTrailers(body, o.bufTrailers) : body;
    u.stream.write(Buffer.concat([o.reqHead, all]));
  } else if (o.streamers.length) {
    u.stream.write(o.reqHead);
    return streamBody(
      o.reader,
      o.reqFraming,
      u.stream,
      writeUpstream,
      o.streamers,
      requestChunkCall(o.ctx),
      o.ctx,
      true,
      o.onReqTrailers,
    );
  } else if (o.reqFraming.kind === "none") {
    // The head alone (as copyBody would write it, without a closure to write through).
    const w = writeUpstream(u.stream, o.reqHead);
    if (w !== true && w !== false) return w.then(NOTHING);
  } else {
    // The head leaves with the first body bytes, once what is buffered validated.
    const copied = copyBody(
      o.reader,
      o.reqFraming,
      (b) => writeUpstream(u.stream, b),
      false,
      o.reqHead,
      o.onReqTrailers,
    );
    if (copied) return copied.then(NOTHING);
  }
  return undefined;
}

const NOTHING = (): undefined => undefined;
