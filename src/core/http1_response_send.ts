/**
 * The end of an HTTP/1.1 response in the L7 proxy (http1_response.ts decides which): the head with
 * hop-by-hop fields left out and the length re-stated, then the body buffered (its own length, or
 * chunked with its trailers), streamed through filters (re-framed), or copied as framed with its
 * trailers through the trailer hooks; then the accounting and the upstream's fate (pooled only
 * when nothing about its framing is in doubt).
 */
import type { Duplex } from "node:stream";
import type { Buffer } from "node:buffer";
import type { HttpFilter, HttpRequestContext, HttpResponseContext } from "./filter_api.ts";
import type { FilterChain } from "./filter_chain.ts";
import { copyBody, type Framing, headBytes, type Trailer } from "./http1_codec.ts";
import { endUpstream, type Upstream, type upstreamHeadList } from "./http1_upstream.ts";
import { replyLocal, writeDownstream, writeLocal } from "./http_io.ts";
import { chunkedWithTrailers, setBufferedLength } from "./body_buffer.ts";
import { logResponseReset, responseChunkCall, streamBody } from "./body_stream.ts";
import { responseTrailers, TrailersReply } from "./trailers.ts";
import { RESPONSE_HOP } from "./http1_hop.ts";
import type { ConnState, ResponseDeps } from "./http1_response.ts";

const CONNECTION_CLOSE: readonly (readonly [string, string])[] = [["connection", "close"]];

export type ResHead = ReturnType<typeof upstreamHeadList>;

/** What the response phase carries from the head to the end of the body. */
export interface Resp {
  readonly res: ResHead;
  readonly resCtx: HttpResponseContext;
  resFraming: Framing;
  /** The upstream's message was read to its end (buffered body). */
  upstreamDone: boolean;
  /** Trailers of a buffered body (a list of its own then; NO_TRAILERS otherwise). */
  resTrailers: Trailer[];
}

/** A response without a buffered body has no trailer list of its own (frozen: never filled). */
export const NO_TRAILERS = Object.freeze([]) as unknown as Trailer[];

/** Hop-by-hop fields never pass (RESPONSE_HOP; those `connection` names are gone already); a
 * known length is re-stated (the first content-length field gives way to the normalised one,
 * appended). `whole`: the body, sent in the same buffer. */
export function responseHead(
  r: Resp,
  closeAfter: boolean,
  lengthKept: boolean,
  whole: Uint8Array | undefined,
): Buffer {
  const f = r.resFraming;
  // headBytes is synchronous: one edit object serves every response, and the status line and
  // the re-stated length are kept for the last values seen (most responses repeat them).
  EDIT.replace = f.kind === "length" && lengthKept ? lengthField(f.length) : undefined;
  EDIT.extra = closeAfter && f.kind !== "close" ? CONNECTION_CLOSE : undefined;
  return headBytes(statusLine(r.resCtx.status, r.res.line[2] || "OK"), r.res.headers, EDIT, whole);
}

const EDIT: {
  omit: ReadonlySet<string>;
  replace: readonly [string, string] | undefined;
  extra: typeof CONNECTION_CLOSE | undefined;
} = { omit: RESPONSE_HOP, replace: undefined, extra: undefined };

let lastStatus = 0, lastReason = "", lastLine = "";
function statusLine(status: number, reason: string): string {
  if (status !== lastStatus || reason !== lastReason) {
    lastLine = `HTTP/1.1 ${status} ${reason}`;
    lastStatus = status;
    lastReason = reason;
  }
  return lastLine;
}

let lastLength = -1;
let lastLengthField: readonly [string, string] = ["content-length", "0"];
function lengthField(n: number): readonly [string, string] {
  if (n !== lastLength) {
    lastLengthField = ["content-length", String(n)];
    lastLength = n;
  }
  return lastLengthField;
}

/** A buffered body: its own length, or chunked with its trailers to a keep-alive client (else
 * the trailers are dropped). */
export async function sendBuffered(
  p: ResponseDeps,
  down: Duplex,
  up: Upstream,
  r: Resp,
  ctx: HttpRequestContext,
  chain: FilterChain,
  state: ConnState,
  closeAfter: boolean,
): Promise<boolean> {
  const resBody = r.resCtx.responseBody!;
  let bufTrailers: Trailer[] = [];
  try {
    if (!closeAfter) bufTrailers = await responseTrailers(chain, ctx, r.resCtx)(r.resTrailers);
  } catch (e) {
    if (!(e instanceof TrailersReply)) throw e;
    up.stream.destroy(); // nothing of the response left yet: the local reply answers
    return replyLocal(p, down, ctx, state, e.response, false);
  }
  setBufferedLength(r.resCtx.responseHeaders, resBody.length, bufTrailers.length > 0);
  const whole = bufTrailers.length ? chunkedWithTrailers(resBody, bufTrailers) : resBody;
  state.responding = true;
  down.write(responseHead(r, closeAfter, true, whole));
  return finish(p, up, r, ctx, state, closeAfter);
}

/** Streamed through filters (body_stream.ts); a failure after the head resets both sides. */
export async function sendStreamed(
  p: ResponseDeps,
  down: Duplex,
  up: Upstream,
  r: Resp,
  ctx: HttpRequestContext,
  chain: FilterChain,
  state: ConnState,
  closeAfter: boolean,
  resStreamers: HttpFilter[],
): Promise<boolean> {
  const reset = await streamBody(
    up.reader,
    r.resFraming,
    down,
    writeDownstream,
    resStreamers,
    responseChunkCall(ctx, r.resCtx),
    ctx,
    !closeAfter,
    responseTrailers(chain, ctx, r.resCtx),
  );
  if (reset) {
    logResponseReset(ctx, reset.details);
    up.stream.destroy();
    down.destroy();
    return false;
  }
  return finish(p, up, r, ctx, state, closeAfter);
}

/** Copied as framed (chunked bodies re-chunked with their trailers through the trailer hooks). */
export async function sendCopied(
  p: ResponseDeps,
  down: Duplex,
  up: Upstream,
  r: Resp,
  ctx: HttpRequestContext,
  chain: FilterChain,
  state: ConnState,
  closeAfter: boolean,
  head: Buffer,
): Promise<boolean> {
  let started = false; // a response that arrived whole is held until its trailers are seen
  try {
    const copied = copyBody(
      up.reader,
      r.resFraming,
      (b) => {
        started = true;
        return writeDownstream(down, b);
      },
      false,
      head,
      responseTrailers(chain, ctx, r.resCtx),
    );
    if (copied) await copied;
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
  return finish(p, up, r, ctx, state, closeAfter);
}

/** The response went out: count it and return the upstream to the pool only when nothing about
 * its framing is in doubt. */
export function finish(
  p: ResponseDeps,
  up: Upstream,
  r: Resp,
  ctx: HttpRequestContext,
  state: ConnState,
  closeAfter: boolean,
): boolean {
  p.count(r.resCtx.status, ctx);
  const upClose = saysClose(r.res.headers.get("connection"));
  let fate: Fate;
  if (r.resCtx.responseBody && !r.upstreamDone) fate = DESTROY;
  else if (r.resFraming.kind === "close" || upClose || state.closing) fate = END;
  else fate = RELEASE;
  const hold = up.hold;
  if (hold === undefined) settle(p, up, fate);
  else {
    // The request is still going out (http1_duplex.ts): the connection's fate waits for it.
    up.hold = undefined;
    void hold.then((whole) => settle(p, up, whole ? fate : DESTROY), () => up.stream.destroy());
  }
  return !closeAfter;
}

const DESTROY = 0, END = 1, RELEASE = 2;
type Fate = typeof DESTROY | typeof END | typeof RELEASE;

function settle(p: ResponseDeps, up: Upstream, fate: Fate): void {
  if (fate === DESTROY) up.stream.destroy();
  else if (fate === END) endUpstream(up.stream);
  else p.release(up);
}

/** `v` contains "close" in any case (what `v.toLowerCase().includes("close")` tells), without a
 * lower-cased copy per response: the common values answer at once. */
function saysClose(v: string | undefined): boolean {
  if (v === undefined || v === "keep-alive" || v === "Keep-Alive") return false;
  if (v === "close" || v === "Close") return true;
  for (let i = 0; i + 5 <= v.length; i++) {
    let j = 0;
    while (j < 5 && (v.charCodeAt(i + j) | 0x20) === CLOSE.charCodeAt(j)) j++;
    if (j === 5) return true;
  }
  return false;
}

const CLOSE = "close";
