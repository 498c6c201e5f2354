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
const NO_HEAD = (): null => null;

/** Whichever comes first of the request's end (`sending`) and the response head on `u`. Neither
 * Promise it holds ever rejects. */
export async function sendOrHead(
  sending: Promise<LocalResponse | undefined>,
  u: Upstream,
): Promise<SendOrHead> {
  const sent = sending.then(toSent, toFailed);
  const head = u.reader.readHead().catch(NO_HEAD);
  const first = await Promise.race([sent, head.then((h) => ({ h }))]);
  if ("h" in first) return { kind: "head", head: first.h, sending: sent };
  return { kind: "sent", sent: first as Sent, head };
}

/** Whether a send that settled as `s` left the request whole on the upstream. */
export function sentWhole(s: Sent): boolean {
  return s.err === undefined && s.local === undefined;
}
