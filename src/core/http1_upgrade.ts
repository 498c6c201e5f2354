/**
 * A WebSocket upgrade through the L7 proxy, as Envoy's HTTP connection manager with
 * `upgrade_configs: websocket` (what Istio configures): the request went through the filter chain
 * as any other (http1_request.ts, upgrade fields kept by http1_hop.ts); when the upstream answers
 * 101, the response chain sees its head, the 101 goes downstream, and from then on the connection
 * is a byte tunnel, copied both ways through the connection's own readers (so the L4 record keeps
 * counting the downstream's bytes), with backpressure and half-close, until both sides are done.
 * The upstream connection is never returned to the pool.
 */
import type { Duplex } from "node:stream";
import type { HttpRequestContext, HttpResponseContext } from "./filter_api.ts";
import type { FilterChain } from "./filter_chain.ts";
import { bad, type ByteReader, headBytes } from "./http1_codec.ts";
import type { HeaderList } from "./header_map.ts";
import type { Upstream } from "./http1_upstream.ts";
import { writeLocal, writeWithBackpressure } from "./http_io.ts";
import { UPGRADE_RESPONSE_HOP } from "./http1_hop.ts";
import type { ConnState, ResponseDeps } from "./http1_response.ts";

const CHUNK_BYTES = 64 * 1024;

/** Serves a 101 from the upstream; returns false (the connection is no longer HTTP). A 101 for a
 * request that did not ask to upgrade, or without `upgrade`, is a bad upstream message (502). */
export async function switchProtocols(
  p: ResponseDeps,
  down: Duplex,
  up: Upstream,
  res: { line: [string, string, string]; headers: HeaderList },
  ctx: HttpRequestContext,
  chain: FilterChain,
  state: ConnState,
): Promise<boolean> {
  if (!state.upgrade) {
    throw bad(
      "upstream: 101 to a request that did not ask to upgrade",
      "http_upstream_bad_message",
    );
  }
  if (!res.headers.has("upgrade")) {
    throw bad("upstream: 101 without upgrade", "http_upstream_bad_message");
  }
  const resCtx: HttpResponseContext = {
    status: 101,
    responseHeaders: res.headers,
    responseBody: undefined,
    bodyFollows: false,
  };
  const v0 = chain.onResponse(ctx, resCtx);
  const verdict = v0 instanceof Promise ? await v0 : v0;
  state.responding = true;
  if (verdict.kind === "respond") {
    up.stream.destroy();
    p.count(verdict.response.status, ctx);
    return writeLocal(down, verdict.response, false);
  }
  const head = headBytes(`HTTP/1.1 101 ${res.line[2] || "Switching Protocols"}`, res.headers, {
    omit: UPGRADE_RESPONSE_HOP,
  });
  p.count(101, ctx);
  if (down.destroyed) {
    up.stream.destroy();
    return false;
  }
  down.write(head);
  await tunnel(down, state.reader, up.stream, up.reader);
  return false;
}

/** Copies `from` to `to` until `from` ends (then ends `to`: half-close) or fails (then destroys
 * both: a reset travels on). */
async function pump(from: ByteReader, fromStream: Duplex, to: Duplex): Promise<void> {
  for (;;) {
    let b;
    try {
      b = await from.readSome(CHUNK_BYTES);
    } catch {
      b = undefined;
    }
    if (b === null && fromStream.readableEnded) {
      if (!to.destroyed) to.end();
      return;
    }
    if (!b || to.destroyed) {
      // An error, a close without FIN, or the other side gone: no half-close to keep.
      fromStream.destroy();
      to.destroy();
      return;
    }
    const w = writeWithBackpressure(to, b);
    if (w !== true) await w;
  }
}

/** Both directions until both are done. */
export async function tunnel(
  down: Duplex,
  downReader: ByteReader,
  up: Duplex,
  upReader: ByteReader,
): Promise<void> {
  await Promise.all([pump(downReader, down, up), pump(upReader, up, down)]);
}
