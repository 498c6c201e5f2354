/**
 * HTTP/1.1 upstream connections of the L7 proxy: keep-alive connections kept per route and reused
 * only when nothing is left unread on them (any framing doubt destroys a connection instead of
 * returning it), and the strict check of an upstream response head (any doubt → 502).
 */
import type { Duplex } from "node:stream";
import type { Buffer } from "node:buffer";
import type { RouteChoice } from "./filter_api.ts";
import {
  bad,
  ByteReader,
  checkStatusLine,
  type Head,
  parseHead,
  parseHeadList,
} from "./http1_codec.ts";
import type { HeaderList } from "./header_map.ts";
import { setNoDelay } from "./http_io.ts";
import { errorMessage } from "./errors.ts";

export interface Upstream {
  readonly stream: Duplex;
  readonly reader: ByteReader;
  readonly key: string;
  reused: boolean;
  /** The request is still being sent (its response came first: http1_duplex.ts): true once it
   * went out whole. The connection is pooled or ended only after this; destroyed if false. */
  hold?: Promise<boolean> | undefined;
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

/** The pool key of a route, remembered for the last service and subset seen (compared by value;
 * filters that choose routes hand back the same strings for the same route, respond_memo.ts), so
 * the common request builds and hashes no key string. */
let lastService: string | undefined;
let lastSubset: string | undefined;
let lastKey = "";
function keyOf(route: RouteChoice | undefined): string {
  if (route === undefined) return "";
  if (route.service !== lastService || route.subset !== lastSubset) {
    lastKey = `${route.service}|${route.subset ?? ""}`;
    lastService = route.service;
    lastSubset = route.subset;
  }
  return lastKey;
}

export class Http1UpstreamPool {
  private readonly idle = new Map<string, Upstream[]>();
  private closed = false;

  constructor(
    private readonly dial: (route?: RouteChoice) => Promise<Duplex>,
    private readonly maxIdlePerRoute = 64,
  ) {}

  /** A kept connection for `route`, if one is usable now (no Promise: the common case). */
  idleFor(route: RouteChoice | undefined): Upstream | undefined {
    const list = this.idle.get(keyOf(route));
    while (list && list.length > 0) {
      const u = list.pop()!;
      if (!u.stream.destroyed && !u.reader.atEnd && u.reader.buffered === 0) {
        u.reused = true;
        return u;
      }
      u.stream.destroy();
    }
    return undefined;
  }

  async acquire(route: RouteChoice | undefined): Promise<Upstream> {
    const kept = this.idleFor(route);
    if (kept) return kept;
    const key = keyOf(route);
    const stream = await this.dial(route);
    setNoDelay(stream);
    stream.on("error", () => {}); // surfaced through the reader
    return { stream, reader: new ByteReader(stream), key, reused: false };
  }

  /** Only for a connection whose last response was read completely and cleanly. */
  release(u: Upstream): void {
    if (this.closed) {
      endUpstream(u.stream);
      return;
    }
    let list = this.idle.get(u.key);
    if (!list) this.idle.set(u.key, list = []);
    if (list.length >= this.maxIdlePerRoute) endUpstream(u.stream);
    else list.push(u);
  }

  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const u of list) endUpstream(u.stream);
    this.idle.clear();
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
