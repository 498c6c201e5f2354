/**
 * `proxy_get_property`: Envoy attribute paths (segments joined by 0x00) answered from the
 * request context, encoded as Envoy does (strings raw, integers 8-byte LE, bools 1 byte, maps in
 * the pair serialisation). Unknown paths are NOT_FOUND. Istio's `source.principal` and
 * `source.namespace` are weft extensions (Envoy answers NOT_FOUND); the portable spelling is
 * `connection.uri_san_peer_certificate`.
 */
import type { HttpRequestContext, HttpResponseContext } from "../../core/mod.ts";
import { encodeBool, encodeInt64, encodePairs, encodeString } from "./abi.ts";

export interface PropertyScope {
  readonly pluginName: string;
  readonly rootId: string;
  readonly vmId: string;
  readonly nodeId: string;
  readonly nodeMetadata: Readonly<Record<string, unknown>>;
  readonly req: HttpRequestContext | undefined;
  readonly res: HttpResponseContext | undefined;
  readonly startMs: number | undefined;
  /** Values written by `proxy_set_property` for this stream (or the root). */
  readonly written: ReadonlyMap<string, Uint8Array> | undefined;
}

function metadataValue(v: unknown): Uint8Array | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return encodeString(v);
  if (typeof v === "boolean") return encodeBool(v);
  if (typeof v === "number" && Number.isInteger(v)) return encodeInt64(v);
  if (Array.isArray(v)) return encodePairs(v.map((x) => [String(x), ""] as const));
  if (typeof v === "object") {
    return encodePairs(Object.entries(v).map(([k, x]) => [k, String(x)] as const));
  }
  return encodeString(String(v));
}

function headerMap(h: { entries(): [string, string][] }): Uint8Array {
  const merged = new Map<string, string>();
  for (const [k, v] of h.entries()) {
    const prev = merged.get(k);
    merged.set(k, prev === undefined ? v : `${prev},${v}`);
  }
  return encodePairs([...merged]);
}

function requestProperty(name: string, rest: string[], s: PropertyScope): Uint8Array | undefined {
  const req = s.req;
  if (!req) return undefined;
  const q = req.path.indexOf("?");
  switch (name) {
    case "path":
      return encodeString(req.path);
    case "url_path":
      return encodeString(q < 0 ? req.path : req.path.slice(0, q));
    case "query":
      return encodeString(q < 0 ? "" : req.path.slice(q + 1));
    case "host":
      return encodeString(req.authority);
    case "scheme":
      return encodeString(req.scheme);
    case "method":
      return encodeString(req.method);
    case "protocol":
      return encodeString(req.protocol);
    case "id":
      return encodeString(req.requestId);
    case "useragent":
      return encodeString(req.requestHeaders.get("user-agent") ?? "");
    case "referer":
      return encodeString(req.requestHeaders.get("referer") ?? "");
    case "time":
      return s.startMs === undefined ? undefined : encodeInt64(BigInt(s.startMs) * 1_000_000n);
    case "headers": {
      if (rest.length === 0) return headerMap(req.requestHeaders);
      const all = req.requestHeaders.getAll(rest[0]!.toLowerCase());
      return all.length ? encodeString(all.join(",")) : undefined;
    }
  }
  return undefined;
}

function responseProperty(name: string, rest: string[], s: PropertyScope): Uint8Array | undefined {
  const res = s.res;
  if (!res) return undefined;
  if (name === "code") return encodeInt64(res.status);
  if (name === "headers") {
    if (rest.length === 0) return headerMap(res.responseHeaders);
    const all = res.responseHeaders.getAll(rest[0]!.toLowerCase());
    return all.length ? encodeString(all.join(",")) : undefined;
  }
  return undefined;
}

function nodeProperty(rest: string[], s: PropertyScope): Uint8Array | undefined {
  const [field, key] = rest;
  if (field === "id") return encodeString(s.nodeId);
  if (field !== "metadata") return undefined;
  if (key === undefined) return metadataValue(s.nodeMetadata);
  return metadataValue(s.nodeMetadata[key]);
}

function peerProperty(
  side: "source" | "destination",
  field: string | undefined,
  s: PropertyScope,
): Uint8Array | undefined {
  const p = s.req?.peer;
  if (!p) return undefined;
  const addr = side === "source" ? p.sourceAddress : p.destinationAddress;
  const port = side === "source" ? p.sourcePort : p.destinationPort;
  switch (field) {
    case "address": // Envoy's address attribute carries the port
      return encodeString(addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`);
    case "port":
      return encodeInt64(port);
    case "principal": {
      const v = side === "source" ? p.sourcePrincipal : p.destinationPrincipal;
      return v === undefined ? undefined : encodeString(v);
    }
    case "namespace": {
      const v = side === "source" ? p.sourceNamespace : p.destinationNamespace;
      return v === undefined ? undefined : encodeString(v);
    }
    case "service":
      return side === "destination" && p.destinationService !== undefined
        ? encodeString(p.destinationService)
        : undefined;
  }
  return undefined;
}

function connectionProperty(field: string | undefined, s: PropertyScope): Uint8Array | undefined {
  const p = s.req?.peer;
  if (!p) return undefined;
  switch (field) {
    case "mtls":
      return encodeBool(p.mtls);
    case "uri_san_peer_certificate":
      return p.sourcePrincipal === undefined ? undefined : encodeString(p.sourcePrincipal);
    case "uri_san_local_certificate":
      return p.destinationPrincipal === undefined
        ? undefined
        : encodeString(p.destinationPrincipal);
  }
  return undefined;
}

/** Resolve a property path (already split into segments). */
export function getProperty(path: string[], s: PropertyScope): Uint8Array | undefined {
  const written = s.written?.get(path.join("\0"));
  if (written) return written;
  const [head, ...rest] = path;
  switch (head) {
    case "plugin_name":
      return encodeString(s.pluginName);
    case "plugin_root_id":
      return encodeString(s.rootId);
    case "plugin_vm_id":
      return encodeString(s.vmId);
    case "request":
      return rest.length ? requestProperty(rest[0]!, rest.slice(1), s) : undefined;
    case "response":
      return rest.length ? responseProperty(rest[0]!, rest.slice(1), s) : undefined;
    case "source":
    case "destination":
      return peerProperty(head, rest[0], s);
    case "connection":
      return connectionProperty(rest[0], s);
    case "node":
      return nodeProperty(rest, s);
    case "xds":
      return rest[0] === "node" ? nodeProperty(rest.slice(1), s) : undefined;
    case "listener_direction":
      return s.req ? encodeInt64(s.req.direction === "inbound" ? 1 : 2) : undefined;
  }
  return undefined;
}

/** Split a raw property path: 0x00-separated per the ABI; a single dotted segment
 * ("request.path") is accepted too as a convenience for hand-written guests. */
export function splitPath(raw: string): string[] {
  if (raw.includes("\0")) return raw.split("\0").filter((p, i, a) => p !== "" || i < a.length - 1);
  const direct = raw.split(".");
  return direct.length > 1 && !raw.startsWith("wasm.") ? direct : [raw];
}
