/**
 * One HTTP/1.1 exchange over an already-open byte stream (a mesh connection from the upstream
 * dialer: an HBONE CONNECT stream or TCP), with the L7 proxy's own strict codec: the request goes
 * out with its exact length and `connection: close`, the response head is checked as an
 * upstream's (upstreamHead) and its body read whole up to `maxBodyBytes`. Used for proxy-wasm
 * callouts to mesh services, which must travel the mesh (mTLS, identities, L4 policy on the
 * destination node) like any other request of the node.
 */
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import { ByteReader, framingOf, serializeHead } from "./http1_codec.ts";
import { upstreamHead } from "./http1_upstream.ts";
import { bufferBody } from "./body_buffer.ts";
import { WeftError } from "./errors.ts";

export interface ExchangeRequest {
  readonly method: string;
  readonly path: string;
  /** Lower-case names; `host` included; no framing or connection fields (set here). */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Uint8Array;
  /** Send `content-length` even for an empty GET or HEAD (Envoy's ext_authz check requests). */
  readonly alwaysLength?: boolean;
}

export interface ExchangeResponse {
  readonly status: number;
  /** Lower-case names, in order. */
  readonly headers: [string, string][];
  readonly body: Uint8Array;
}

const FRAMING = new Set(["content-length", "transfer-encoding", "connection", "keep-alive"]);

/** Sends `req` on `stream`, reads the response; the stream is closed afterwards either way. */
export async function httpExchange(
  stream: Duplex,
  req: ExchangeRequest,
  maxBodyBytes: number,
): Promise<ExchangeResponse> {
  const reader = new ByteReader(stream);
  try {
    const h: [string, string][] = req.headers.filter(([k]) => !FRAMING.has(k)).map((
      [k, v],
    ) => [k, v]);
    if (req.body.length || req.alwaysLength || !["GET", "HEAD"].includes(req.method)) {
      h.push(["content-length", String(req.body.length)]);
    }
    h.push(["connection", "close"]);
    const head = serializeHead(`${req.method} ${req.path} HTTP/1.1`, h);
    stream.write(req.body.length ? Buffer.concat([head, req.body]) : head);
    let raw = await reader.readHead();
    let res = raw && upstreamHead(raw);
    while (res && res.line[1].startsWith("1")) { // interim responses
      raw = await reader.readHead();
      res = raw && upstreamHead(raw);
    }
    if (!res) throw new WeftError("http_upstream_reset", "Cannot call: connection closed early");
    const status = Number(res.line[1]);
    const headers = res.headers.map(([k, v]): [string, string] => [k.toLowerCase(), v]);
    const noBody = req.method === "HEAD" || status === 204 || status === 304;
    const framing = noBody
      ? { kind: "none" as const }
      : framingOf((n) => headers.filter(([k]) => k === n).map(([, v]) => v), true);
    const body = await bufferBody(reader, framing, maxBodyBytes);
    if (!body) {
      throw new WeftError("http_response_too_large", `Cannot call: response over ${maxBodyBytes}`);
    }
    return { status, headers, body };
  } finally {
    stream.destroy();
  }
}
