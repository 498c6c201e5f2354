/**
 * src/core/h2 — a small HTTP/2 layer specialised for HBONE CONNECT tunnels (RFC 9113 framing,
 * RFC 7541 HPACK, flow control, GOAWAY drain) over any connected Duplex, meant to replace
 * node:http2 on the HBONE data path where it is the throughput limit. Core layer: imports only
 * node: APIs and src/core files.
 *
 * HBONE runs on it (hbone_client.ts dials, hbone_pool.ts keeps sessions while `usable`,
 * hbone_server.ts serves one `H2Session` per verified TLS socket). Abuse limits (rapid reset,
 * SETTINGS/PING floods, CONTINUATION) are in limits.ts.
 */
export { H2Session, H2Stream } from "./tunnel.ts";
export { NO_HEADERS } from "./tunnel_stream.ts";
export type { ConnectHandler, H2SessionOptions, Headers } from "./tunnel.ts";
export { encodeHeaders, type HeaderList, HpackDecoder, huffmanDecode } from "./hpack.ts";
export { ErrorCode, H2ProtocolError } from "./frames.ts";
export { DEFAULT_LIMITS, type H2Limits } from "./limits.ts";
