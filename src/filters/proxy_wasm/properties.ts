/**
 * `proxy_get_property`: Envoy attribute paths (segments joined by 0x00) answered from the
 * request context, encoded as Envoy does (strings raw, integers 8-byte LE, bools 1 byte, maps in
 * the pair serialisation). Unknown paths are NOT_FOUND. Istio's `source.principal` and
 * `source.namespace` are weft extensions (Envoy answers NOT_FOUND); the portable spelling is
 * `connection.uri_san_peer_certificate`.
 */
import type { HttpRequestContext, HttpResponseContext } from "../../core/mod.ts";
import { encodeBool, encodeInt64, encodePairs, encodeString } from "./abi.ts";
import {
  type PropertyValue,
  protoNode,
  protoStruct,
  structFieldValue,
  UNSERIALIZABLE,
} from "./property_values.ts";

export { type PropertyValue, UNSERIALIZABLE };

export interface PropertyScope {
  readonly pluginName: string;
  readonly rootId: string;
  readonly vmId: string;
  readonly nodeId: string;
  readonly nodeCluster: string;
  readonly nodeMetadata: Readonly<Record<string, unknown>>;
  readonly req: HttpRequestContext | undefined;
  readonly res: HttpResponseContext | undefined;
  readonly startMs: number | undefined;
  /** Values written by `proxy_set_property` for this stream (or the root). */
  readonly written: ReadonlyMap<string, Uint8Array> | undefined;
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
    case "duration":
      return s.startMs === undefined
        ? undefined
        : encodeInt64(BigInt(Math.max(0, Date.now() - s.startMs)) * 1_000_000n);
    case "size": {
      if (req.requestBody !== undefined) return encodeInt64(req.requestBody.length);
      const n = Number(req.requestHeaders.get("content-length") ?? "0");
      return encodeInt64(Number.isSafeInteger(n) ? n : 0);
    }
    case "total_size":
    case "headers_bytes": {
      let n = 0;
      for (const [k, v] of req.requestHeaders.entries()) n += k.length + v.length;
      if (name === "headers_bytes") return encodeInt64(n);
      return encodeInt64(n + (req.requestBody?.length ?? 0));
    }
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
  if (name === "code_details") return encodeString(res.status < 400 ? "via_upstream" : "");
  if (name === "flags") return encodeInt64(0);
  if (name === "grpc_status") {
    const g = res.responseHeaders.get("grpc-status");
    return g === undefined ? undefined : encodeInt64(Number(g) || 0);
  }
  if (name === "size" || name === "total_size") {
    const n = res.responseBody?.length ?? Number(res.responseHeaders.get("content-length") ?? 0);
    return encodeInt64(Number.isSafeInteger(n) ? n : 0);
  }
  if (name === "trailers") return rest.length === 0 ? encodePairs([]) : undefined;
  if (name === "headers") {
    if (rest.length === 0) return headerMap(res.responseHeaders);
    const all = res.responseHeaders.getAll(rest[0]!.toLowerCase());
    return all.length ? encodeString(all.join(",")) : undefined;
  }
  return undefined;
}

/** `node`, `node.id`, `node.cluster`, `node.metadata` (a Struct message, what the C++ SDK's
 * getMessageValue parses) and `node.metadata.<KEY>` (its value, see structFieldValue). */
function nodeProperty(rest: string[], s: PropertyScope): PropertyValue {
  const [field, key, ...deeper] = rest;
  const md = nodeMetadata(s);
  if (field === undefined) return protoNode(s.nodeId, s.nodeCluster, md);
  if (field === "id") return encodeString(s.nodeId);
  if (field === "cluster") return encodeString(s.nodeCluster);
  if (field !== "metadata") return undefined;
  if (key === undefined) return protoStruct(md);
  let v: unknown = md[key];
  for (const k of deeper) {
    v = v !== null && typeof v === "object" && !Array.isArray(v)
      ? (v as Record<string, unknown>)[k]
      : undefined;
  }
  return structFieldValue(v);
}

/** weft is one proxy for the node's workloads; a sidecar's node *is* its workload. So the node
 * metadata a filter reads is the configured metadata overlaid, per request, with the local
 * workload the request is served for (inbound: the destination; outbound: the source), in the
 * keys istio-agent gives Envoy: NAME, WORKLOAD_NAME, NAMESPACE, SERVICE_ACCOUNT, LABELS,
 * INSTANCE_IPS. */
function nodeMetadata(s: PropertyScope): Readonly<Record<string, unknown>> {
  const req = s.req;
  if (!req) return s.nodeMetadata;
  const p = req.peer;
  const local = p.localWorkload;
  if (local) {
    return {
      ...s.nodeMetadata,
      NAME: local.name,
      WORKLOAD_NAME: local.name,
      NAMESPACE: local.namespace,
      SERVICE_ACCOUNT: local.serviceAccount,
      LABELS: local.labels,
      INSTANCE_IPS: local.address,
    };
  }
  const inbound = req.direction === "inbound";
  const workload = inbound ? p.destinationWorkload : undefined;
  const namespace = inbound ? p.destinationNamespace : p.sourceNamespace;
  const principal = inbound ? p.destinationPrincipal : p.sourcePrincipal;
  const sa = principal?.match(/\/sa\/([^/]+)$/)?.[1];
  if (workload === undefined && namespace === undefined && sa === undefined) return s.nodeMetadata;
  return {
    ...s.nodeMetadata,
    ...(workload !== undefined ? { NAME: workload, WORKLOAD_NAME: workload } : {}),
    ...(namespace !== undefined ? { NAMESPACE: namespace } : {}),
    ...(sa !== undefined ? { SERVICE_ACCOUNT: sa } : {}),
  };
}

/** Istio's cluster names: `outbound|<port>||<host>` and `inbound|<port>||<host>` (the service
 * host when known: Istio 1.5's inbound form, which its stats filter reads the destination
 * service from; later releases drop it and read the same from service metadata). */
function clusterName(s: PropertyScope): string | undefined {
  const p = s.req?.peer;
  if (!p) return undefined;
  return s.req!.direction === "outbound"
    ? `outbound|${p.destinationPort}||${p.destinationService ?? p.destinationAddress}`
    : `inbound|${p.destinationPort}||${p.destinationService ?? ""}`;
}

function routeName(s: PropertyScope): string | undefined {
  const p = s.req?.peer;
  if (!p) return undefined;
  return p.destinationService ? `${p.destinationService}:${p.destinationPort}` : "default";
}

/** Names Envoy answers both at the top level (≤ 1.32) and under `xds.` (1.33+). */
function xdsProperty(name: string | undefined, rest: string[], s: PropertyScope): PropertyValue {
  switch (name) {
    case "node":
      return nodeProperty(rest, s);
    case "cluster_name": {
      const c = clusterName(s);
      return c === undefined ? undefined : encodeString(c);
    }
    case "route_name": {
      const r = routeName(s);
      return r === undefined ? undefined : encodeString(r);
    }
    case "listener_direction":
      return s.req ? encodeInt64(s.req.direction === "inbound" ? 1 : 2) : undefined;
    case "cluster_metadata":
    case "route_metadata":
    case "listener_metadata":
    case "upstream_host_metadata":
      return rest.length === 0 ? protoStruct({}) : undefined;
  }
  return undefined;
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
    case "tls_version":
      return p.mtls ? encodeString("TLSv1.3") : undefined;
    case "uri_san_peer_certificate":
      return p.sourcePrincipal === undefined ? undefined : encodeString(p.sourcePrincipal);
    case "uri_san_local_certificate":
      return p.destinationPrincipal === undefined
        ? undefined
        : encodeString(p.destinationPrincipal);
  }
  return undefined;
}

/** `proxy_set_property` values of one request live in its filter state, shared by every
 * proxy-wasm filter of the chain (Envoy's filter state is per stream, not per plugin: Istio's
 * metadata-exchange writes the peer there and its stats filter reads it). */
const FILTER_STATE_KEY = "proxy_wasm.properties";

export function requestProperties(req: HttpRequestContext): Map<string, Uint8Array> {
  let m = req.filterState.get(FILTER_STATE_KEY) as Map<string, Uint8Array> | undefined;
  if (!m) req.filterState.set(FILTER_STATE_KEY, m = new Map());
  return m;
}

/** Resolve a property path (already split into segments). */
export function getProperty(path: string[], s: PropertyScope): PropertyValue {
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
    case "xds":
      return xdsProperty(rest[0], rest.slice(1), s);
    case "connection_id":
      return undefined;
  }
  return xdsProperty(head, rest, s);
}

/** Split a raw property path: 0x00-separated per the ABI; a single dotted segment
 * ("request.path") is accepted too as a convenience for hand-written guests. */
export function splitPath(raw: string): string[] {
  if (raw.includes("\0")) return raw.split("\0").filter((p, i, a) => p !== "" || i < a.length - 1);
  const direct = raw.split(".");
  return direct.length > 1 && !raw.startsWith("wasm.") ? direct : [raw];
}
