/**
 * src/core/h2 — a small HTTP/2 layer specialised for HBONE CONNECT tunnels (RFC 9113 framing,
 * RFC 7541 HPACK, flow control, GOAWAY drain) over any connected Duplex, meant to replace
 * node:http2 on the HBONE data path where it is the throughput limit. Core layer: imports only
 * node: APIs and src/core files.
 *
 * How HBONE would use it (not wired yet):
 * - client (hbone_client/hbone_pool): after the mTLS handshake (ALPN h2) wrap the socket,
 *   `const h2 = new H2Session(tlsSocket, "client")`, then per outbound connection
 *   `const { status, stream } = await h2.openConnect({ ":authority": "10.244.1.17:8080",
 *   baggage, forwarded, traceparent })`; non-200 → fail the downstream; else pipe both ways.
 *   The pool keeps a session while `h2.usable` (not draining, below the peer's stream limit)
 *   and drops it on `h2.closed`.
 * - server (hbone_server): for each accepted mTLS socket, `new H2Session(sock, "server",
 *   { maxConcurrentStreams: 200 })` and `h2.onConnect((headers, respond) => ...)`: run the §7
 *   checks, connect upstream, then `respond(200)` returns the tunnel stream (`respond(4xx/5xx)`
 *   ends it). Drain = `await h2.close()` (GOAWAY; open tunnels finish).
 */
export { H2Session, H2Stream } from "./tunnel.ts";
export type { ConnectHandler, H2SessionOptions, Headers } from "./tunnel.ts";
export { encodeHeaders, type HeaderList, HpackDecoder, huffmanDecode } from "./hpack.ts";
export { ErrorCode, H2ProtocolError } from "./frames.ts";
