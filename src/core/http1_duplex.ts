/**
 * Full duplex for an HTTP/1.1 request whose body is still being sent upstream (Envoy's router
 * does the same): the response head is read from the moment the request head left, so a response
 * that starts before the request ends goes downstream at once. A proxy that read no response until
 * the request was sent deadlocks against any upstream that answers while reading — an echo whose
 * socket buffers fill (a 16 MiB echo through weft on Bun hung so), a streaming server, a server
 * that answers 413 early. The upstream connection is pooled again only after both directions ended
 * cleanly (`Upstream.hold`), and the downstream stays open only when the whole request was read.
 */
import type { Buffer } from "node:buffer";
import type { LocalResponse } from "./filter_api.ts";
import type { Upstream } from "./http1_upstream.ts";
import { WeftError } from "./errors.ts";

/** Envoy's answer when the upstream ends or resets before a response head (503 UC/UF). */
export const UPSTREAM_RESET: LocalResponse = Object.freeze({
  status: 503,
  headers: [],
  body: "upstream reset",
  details: "upstream_reset_before_response_started",
});

/** Envoy's answer when the upstream sends a head its codec refuses (too large, a bare LF, a bad
 * start line): 502 UPE, `upstream_reset_before_response_started{protocol_error}`. */
export const UPSTREAM_PROTOCOL_ERROR: LocalResponse = Object.freeze({
  status: 502,
  headers: [],
  body: "upstream protocol error",
  details: "upstream_reset_before_response_started{protocol_error}",
});

/** The response head on `u`, or null when none came: the connection ended or failed, or the codec
 * refused what came (then `u.protocolError`). Never rejects. */
export function readUpstreamHead(u: Upstream): Promise<Buffer | null> {
  return u.reader.readHead().catch((e: unknown) => {
    // The codec's own errors (http1_codec.ts `bad`) are WeftErrors with an http_ code; a
    // transport failure (ECONNRESET, a destroyed socket) is not.
    if (e instanceof WeftError && e.code.startsWith("http_")) u.protocolError = true;
    return null;
  });
}

/** What to answer when no response head came on `u`. */
export function noHeadReply(u: Upstream): LocalResponse {
  return u.protocolError ? UPSTREAM_PROTOCOL_ERROR : UPSTREAM_RESET;
}

/** How sending a request body ended: `local` (a streaming filter answered) or `err` (it was cut:
 * a downstream error, an upstream gone, a trailer hook's reply); neither when it went out whole. */
export interface Sent {
  readonly local?: LocalResponse | undefined;
  readonly err?: unknown;
}

export type SendOrHead =
  /** The request went out (or failed) first; `head` is the response head's read, already begun
   * (null: the upstream closed or failed before a head). */
  | { readonly kind: "sent"; readonly sent: Sent; readonly head: Promise<Buffer | null> }
  /** The response head (or the upstream's end: null) came first; `sending` settles when the rest
   * of the request is sent or cut. */
  | { readonly kind: "head"; readonly head: Buffer | null; readonly sending: Promise<Sent> };

const toSent = (local: LocalResponse | undefined): Sent => ({ local });
const toFailed = (err: unknown): Sent => ({ err });

/** Whichever comes first of the request's end (`sending`) and the response head on `u`. Neither
 * Promise it holds ever rejects. */
export async function sendOrHead(
  sending: Promise<LocalResponse | undefined>,
  u: Upstream,
): Promise<SendOrHead> {
  const sent = sending.then(toSent, toFailed);
  const head = readUpstreamHead(u);
  const first = await Promise.race([sent, head.then((h) => ({ h }))]);
  if ("h" in first) return { kind: "head", head: first.h, sending: sent };
  return { kind: "sent", sent: first as Sent, head };
}

/** How long the rest of a request may take to go out once its response has ended. */
export const REST_GRACE_MS = 1_000;

/** After the response ended while the request was still going out: whether it went out whole,
 * waiting at most REST_GRACE_MS; past that `u` is destroyed and false (the downstream closes, its
 * body left unread). Envoy closes such an HTTP/1.1 downstream at once; the grace keeps it open for
 * a body whose last write is merely unacknowledged. Without a bound, an upstream that answers
 * early and stops reading would hold both connections as long as the client keeps sending. */
export async function restSent(sending: Promise<Sent>, u: Upstream): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((
    r,
  ) => (timer = setTimeout(() => r(undefined), REST_GRACE_MS)));
  const s = await Promise.race([sending, late]);
  clearTimeout(timer);
  if (s !== undefined) return sentWhole(s);
  u.stream.destroy();
  return false;
}

/** Whether a send that settled as `s` left the request whole on the upstream. */
export function sentWhole(s: Sent): boolean {
  return s.err === undefined && s.local === undefined;
}
