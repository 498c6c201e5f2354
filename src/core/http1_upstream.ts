/**
 * HTTP/1.1 upstream connections of the L7 proxy: what one is (its reader, its pool key), the strict
 * check of an upstream response head (any doubt → 502), and the clean end of a connection whose
 * last exchange completed. The keep-alive pool is http1_pool.ts.
 */
import type { Duplex } from "node:stream";
import type { Buffer } from "node:buffer";
import {
  bad,
  type ByteReader,
  checkStatusLine,
  type Head,
  parseHead,
  parseHeadList,
} from "./http1_codec.ts";
import type { HeaderList } from "./header_map.ts";
import { errorMessage } from "./errors.ts";

export interface Upstream {
  readonly stream: Duplex;
  readonly reader: ByteReader;
  readonly key: string;
  reused: boolean;
  /** The request is still being sent (its response came first: http1_duplex.ts): true once it
   * went out whole. The connection is pooled or ended only after this; destroyed if false. */
  hold?: Promise<boolean> | undefined;
  /** The downstream whose request it serves now (ConnState.up); none once released. */
  owner?: Duplex | undefined;
  /** Its response head was refused by the codec (readUpstreamHead, http1_duplex.ts): an upstream
   * protocol error, answered 502 and never retried as a stale connection. */
  protocolError?: boolean;
}

/** `u` serves the current request of `down`: destroyed if `down` closes before it is released. */
export function claim(state: { up: Upstream | undefined }, down: Duplex, u: Upstream): Upstream {
  u.owner = down;
  state.up = u;
  return u;
}

/** A response head from the upstream, parsed strictly; any doubt is a 502. */
export function upstreamHead(raw: Buffer): Head {
  try {
    const h = parseHead(raw);
    checkStatusLine(h.line);
    return h;
  } catch (e) {
    throw bad(`upstream: ${errorMessage(e)}`, "http_upstream_bad_message");
  }
}

/** upstreamHead into a HeaderList (the proxy's response path). */
export function upstreamHeadList(
  raw: Buffer,
): { readonly line: [string, string, string]; readonly headers: HeaderList } {
  try {
    const h = parseHeadList(raw);
    checkStatusLine(h.line);
    return h;
  } catch (e) {
    throw bad(`upstream: ${errorMessage(e)}`, "http_upstream_bad_message");
  }
}

/** How long a cleanly ended upstream connection waits for the peer's end before it is reset. */
const END_GRACE_MS = 5_000;

/** Close a connection whose last exchange completed cleanly: end our side (an HBONE stream sends
 * END_STREAM, TCP a FIN), so the peer sees a clean close — a reset (RST_STREAM CANCEL) would be
 * logged and counted as a failed connection by the destination's node. Reset if the peer has not
 * closed within END_GRACE_MS. Anything in doubt (framing errors, abandoned bodies) is destroyed
 * instead. */
export function endUpstream(stream: Duplex): void {
  if (stream.destroyed) return;
  const timer = setTimeout(() => stream.destroy(), END_GRACE_MS);
  (timer as { unref?: () => void }).unref?.();
  ending.add(stream);
  stream.once("close", () => {
    clearTimeout(timer);
    ending.delete(stream);
    if (ending.size === 0) { for (const w of [...endWaiters]) w(); }
  });
  stream.resume(); // read the peer's end (what it still sends is dropped with the stream)
  stream.end();
}

/** Upstream connections ended and not closed yet (every proxy of this process). */
const ending = new Set<Duplex>();
const endWaiters = new Set<() => void>();

/** Resolves when every ended upstream has closed, or after `timeoutMs`: a draining node waits
 * for these before it closes its HBONE sessions, so their streams end cleanly on the peer. */
export function upstreamsEnded(timeoutMs: number): Promise<void> {
  if (ending.size === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      endWaiters.delete(done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    endWaiters.add(done);
  });
}
