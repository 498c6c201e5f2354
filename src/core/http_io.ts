/** Small stream helpers of the L7 proxy: local replies, backpressure, h2 detection. */
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import type { HttpRequestContext, LocalResponse } from "./filter_api.ts";
import { type ByteReader, serializeHead } from "./http1_codec.ts";
import { H2_PREFACE } from "./http2_downstream.ts";
import { STATUS_TEXT } from "./status_text.ts";
import { WeftError } from "./errors.ts";
import { routerReply } from "./router_reply.ts";

/** Reads just enough to tell an HTTP/2 connection preface from an HTTP/1.1 request line. */
export async function isH2(reader: ByteReader): Promise<boolean> {
  for (let n = 1;;) {
    const buf = await reader.peek(n);
    const k = Math.min(buf.length, H2_PREFACE.length);
    if (buf.subarray(0, k).toString("latin1") !== H2_PREFACE.slice(0, k)) return false;
    if (k >= H2_PREFACE.length) return true;
    if (buf.length < n) return false; // the stream ended
    n = buf.length + 1;
  }
}

/**
 * Turns Nagle's algorithm off where the stream is a socket (net.Socket, tls.TLSSocket). A proxy
 * writes small pieces (a head, then a body or chunk) and then waits for the peer: with Nagle on,
 * the second piece waits for the ACK of the first, which the peer delays (~40 ms on Linux).
 * Other Duplexes (an HTTP/2 stream inside HBONE) have no such switch: their session socket's
 * owner sets it.
 */
export function setNoDelay(s: Duplex): void {
  const sock = s as Duplex & { setNoDelay?: (noDelay?: boolean) => unknown };
  if (typeof sock.setNoDelay === "function") sock.setNoDelay(true);
}

/** Writes `b`; a Promise when the stream asks to wait, settled by its `drain` or `close`. A
 * stream already destroyed or ended refuses the write and will send neither event (its `close`
 * may be gone already): false at once, never a wait that nothing ends. */
export function writeWithBackpressure(s: Duplex, b: Buffer): boolean | Promise<void> {
  if (s.write(b)) return true;
  if (s.destroyed || s.writableEnded) return false;
  return new Promise((r) => {
    const done = (): void => {
      s.off("drain", done);
      s.off("close", done);
      r();
    };
    s.on("drain", done);
    s.on("close", done);
  });
}

/** The upstream connection closed or reset while the request was still being written to it:
 * nothing more of the request can reach it (503, and the downstream closes: the rest of the
 * request body is left unread). */
export const UPSTREAM_GONE = "upstream_gone";

/** writeWithBackpressure for a request going upstream: throws a WeftError `upstream_gone` once
 * the upstream connection is gone, so the request copy stops instead of reading on into a dead
 * socket. */
export function writeUpstream(s: Duplex, b: Buffer): boolean | Promise<void> {
  if (s.destroyed || s.writableEnded) {
    throw new WeftError(UPSTREAM_GONE, "Cannot send the request: the upstream connection closed");
  }
  return writeWithBackpressure(s, b);
}

/** The downstream connection closed while a response was being copied to it. */
export const DOWNSTREAM_GONE = "downstream_gone";

/** writeWithBackpressure for a response going downstream: throws a WeftError `downstream_gone`
 * once the client connection is gone, so the copy stops (and the upstream connection, in doubt
 * then, is closed) instead of reading the rest of the response into a dead socket. */
export function writeDownstream(s: Duplex, b: Buffer): boolean | Promise<void> {
  if (s.destroyed || s.writableEnded) {
    throw new WeftError(DOWNSTREAM_GONE, "Cannot send the response: the client connection closed");
  }
  return writeWithBackpressure(s, b);
}

/** Answers the current HTTP/1.1 request locally: counted under the response's status, the
 * connection marked as responding (an error can no longer answer), then writeLocal. */
export function replyLocal(
  p: { count(status: number, ctx: HttpRequestContext): void },
  down: Duplex,
  ctx: HttpRequestContext,
  state: { responding: boolean },
  r: LocalResponse,
  keepAlive: boolean,
): boolean {
  r = routerReply(ctx, r); // a CORS request's headers on the router's replies
  p.count(r.status, ctx);
  state.responding = true;
  return writeLocal(down, r, keepAlive);
}

/** Writes a local response; returns whether the connection may stay open. */
export function writeLocal(down: Duplex, r: LocalResponse, keepAlive: boolean): boolean {
  const body = typeof r.body === "string" ? Buffer.from(r.body) : Buffer.from(r.body);
  const headers: [string, string][] = r.headers.map(([k, v]) => [k, v]);
  if (r.grpcStatus !== undefined) {
    headers.push(["content-type", "application/grpc"], ["grpc-status", String(r.grpcStatus)]);
  }
  headers.push(["content-length", String(body.length)]);
  if (!keepAlive) headers.push(["connection", "close"]);
  if (down.destroyed) return false;
  const head = serializeHead(
    `HTTP/1.1 ${r.status} ${STATUS_TEXT[r.status] ?? "Unknown"}`,
    headers,
  );
  down.write(body.length ? Buffer.concat([head, body]) : head);
  return keepAlive;
}
