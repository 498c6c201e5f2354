/**
 * The header-map host functions, `proxy_send_local_response`, `proxy_continue_stream` and
 * `proxy_close_stream` (plus the 0.1.0 twins). Request headers carry the pseudo-headers
 * (`:authority`, `:path`, `:method`, `:scheme`) and response headers `:status`, as Envoy shows
 * them; `:status` is writable, request pseudo-headers are read-only in weft (writes are accepted
 * and ignored: the route is already chosen).
 */
import type { FilterOutcome, HeaderMap } from "../../core/mod.ts";
import { decodePairs, encodePairs, encodeString, MapType, Status, StreamType } from "./abi.ts";
import { OutOfBounds } from "./guest_memory.ts";
import type { ProxyWasmVm, StreamState } from "./vm.ts";

type Pairs = [string, string][];
const CONTINUE: FilterOutcome = Object.freeze({ action: "continue" });

/** Envoy's request header model: pseudo-headers first, and no `host` (HTTP/1's Host *is*
 * `:authority`; a callout copying the request headers must not carry both). */
function requestPairs(s: StreamState): Pairs {
  const h = s.req.requestHeaders;
  const e = h.entries().filter(([k]) => k !== "host");
  if (h.has(":path")) return e;
  const r = s.req;
  e.unshift([":authority", h.get("host") ?? r.authority], [":path", r.path], [
    ":method",
    r.method,
  ], [":scheme", r.scheme]);
  return e;
}

function requestPseudo(s: StreamState, key: string): string | undefined {
  switch (key) {
    case ":authority":
      return s.req.requestHeaders.get("host") ?? s.req.authority;
    case ":path":
      return s.req.path;
    case ":method":
      return s.req.method;
    case ":scheme":
      return s.req.scheme;
  }
  return undefined;
}

/** Count of headers the callbacks announce (pseudo-headers included, `host` folded in). */
export function requestHeaderCount(s: StreamState): number {
  const h = s.req.requestHeaders;
  if (h.has(":path")) return h.size - (h.has("host") ? h.getAll("host").length : 0);
  return h.size - h.getAll("host").length + 4;
}

/** The header map of `type` readable now (request/response headers of the effective stream). */
function mapOf(vm: ProxyWasmVm, type: number): HeaderMap | undefined {
  const s = vm.effective;
  if (!s) return undefined;
  if (type === MapType.HTTP_REQUEST_HEADERS) return s.req.requestHeaders;
  if (type === MapType.HTTP_RESPONSE_HEADERS) return s.res?.responseHeaders;
  if (type === MapType.HTTP_REQUEST_TRAILERS) return s.requestTrailers;
  if (type === MapType.HTTP_RESPONSE_TRAILERS) return s.responseTrailers;
  return undefined;
}

/** Writable in its own direction's callbacks, or while that direction is paused. */
function writable(vm: ProxyWasmVm, type: number): boolean {
  const cb = vm.callback;
  const paused = vm.effective?.pausedOn;
  // Trailers are writable in their own callback only (as Envoy's decodeTrailers/encodeTrailers).
  if (type === MapType.HTTP_REQUEST_TRAILERS) return cb === "request_trailers";
  if (type === MapType.HTTP_RESPONSE_TRAILERS) return cb === "response_trailers";
  if (type === MapType.HTTP_REQUEST_HEADERS) {
    return cb === "request_headers" || cb === "request_body" || paused === "request";
  }
  return cb === "response_headers" || cb === "response_body" || paused === "response";
}

function pairsOf(vm: ProxyWasmVm, type: number): Pairs | undefined {
  if (type === MapType.HTTP_CALL_RESPONSE_HEADERS) return vm.httpCallResult?.headers;
  if (type === MapType.GRPC_CALL_INITIAL_METADATA) return vm.grpc?.initial;
  if (type === MapType.GRPC_CALL_TRAILING_METADATA) return vm.grpc?.trailing;
  const h = mapOf(vm, type);
  const s = vm.effective;
  if (!h || !s) return undefined;
  if (type === MapType.HTTP_REQUEST_HEADERS) return requestPairs(s);
  if (type !== MapType.HTTP_RESPONSE_HEADERS) return h.entries();
  const e = h.entries();
  e.unshift([":status", String(s.res!.status)]);
  return e;
}

function getValue(vm: ProxyWasmVm, type: number, key: string): string | undefined {
  if (type === MapType.HTTP_CALL_RESPONSE_HEADERS) {
    return vm.httpCallResult?.headers.find(([k]) => k === key)?.[1];
  }
  if (type === MapType.GRPC_CALL_INITIAL_METADATA || type === MapType.GRPC_CALL_TRAILING_METADATA) {
    return pairsOf(vm, type)?.find(([k]) => k === key)?.[1];
  }
  const h = mapOf(vm, type);
  const s = vm.effective;
  if (!h || !s) return undefined;
  if (type !== MapType.HTTP_REQUEST_HEADERS && type !== MapType.HTTP_RESPONSE_HEADERS) {
    return h.get(key);
  }
  if (key.charCodeAt(0) === 58 /* ':' */) {
    if (type === MapType.HTTP_REQUEST_HEADERS) return requestPseudo(s, key);
    if (key === ":status") return String(s.res!.status);
  }
  if (key === "host" && type === MapType.HTTP_REQUEST_HEADERS) return undefined;
  return h.get(key);
}

/** Apply one write; false when the map cannot be written now. */
function write(
  vm: ProxyWasmVm,
  type: number,
  op: "add" | "replace" | "remove",
  key: string,
  value: string,
): boolean {
  const h = mapOf(vm, type);
  if (!h || !writable(vm, type)) return false;
  if (type === MapType.HTTP_REQUEST_TRAILERS || type === MapType.HTTP_RESPONSE_TRAILERS) {
    // Pseudo-headers have no place in trailers (RFC 9113 §8.1); forbidden names are dropped
    // when the trailer section is written.
    if (key.charCodeAt(0) === 58) return true;
  } else if (key === ":authority" && type === MapType.HTTP_REQUEST_HEADERS) {
    // Rewriting :authority rewrites the Host the upstream sees (Envoy host rewrite).
    if (op !== "remove") h.set("host", value);
    return true;
  }
  if (key === "host" && type === MapType.HTTP_REQUEST_HEADERS) return true; // not in the model
  if (key.charCodeAt(0) === 58) {
    const res = vm.effective?.res;
    if (key === ":status" && res && op !== "remove") {
      const n = Number(value);
      if (Number.isInteger(n) && n >= 100 && n <= 999) res.status = n;
    }
    return true;
  }
  if (op === "add") h.add(key, value);
  else if (op === "replace") h.set(key, value);
  else h.remove(key);
  return true;
}

function localOutcome(s: StreamState): FilterOutcome {
  return { action: "respond", response: s.local! };
}

export function headerFunctions(vm: ProxyWasmVm): Record<string, (...a: number[]) => number> {
  const m = vm.mem;
  const key = (p: number, l: number): string => m.readString(p, l).toLowerCase();
  const legacy = vm.abi === "0.1.0";
  // A map type the ABI does not define is BAD_ARGUMENT for every header function (cpp-host);
  // a defined map absent in this phase answers as Envoy does (below).
  let warnedNoStream = false; // logged once per VM
  const known = (t: number): boolean => t >>> 0 <= MapType.HTTP_CALL_RESPONSE_TRAILERS;
  const guard = (fn: () => number): number => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof OutOfBounds) return Status.INVALID_MEMORY_ACCESS;
      throw e;
    }
  };
  const mutate =
    (op: "add" | "replace" | "remove") =>
    (t: number, kp: number, kl: number, vp = 0, vl = 0): number => {
      if (!known(t)) return Status.BAD_ARGUMENT;
      try {
        const v = op === "remove" ? "" : m.readString(vp, vl);
        return write(vm, t, op, key(kp, kl), v) ? Status.OK : Status.BAD_ARGUMENT;
      } catch (e) {
        if (e instanceof OutOfBounds) return Status.INVALID_MEMORY_ACCESS;
        throw e;
      }
    };
  const resumeWith = (s: StreamState, stream: "request" | "response", o: FilterOutcome): void => {
    if (s.pausedOn === stream) vm.resume(s, o);
  };
  const cont = (type: number): number => {
    const s = vm.effective;
    if (type !== StreamType.HTTP_REQUEST && type !== StreamType.HTTP_RESPONSE) {
      return Status.BAD_ARGUMENT;
    }
    if (s) resumeWith(s, type === StreamType.HTTP_REQUEST ? "request" : "response", CONTINUE);
    return Status.OK;
  };
  return {
    proxy_get_header_map_size: (t, sizePtr) =>
      guard(() => {
        if (!known(t)) return Status.BAD_ARGUMENT;
        const pairs = pairsOf(vm, t);
        m.setU32(sizePtr, pairs ? encodePairs(pairs).length : 0);
        return Status.OK;
      }),
    proxy_get_header_map_pairs: (t, retPtr, retLen) =>
      guard(() => {
        if (!known(t)) return Status.BAD_ARGUMENT;
        const pairs = pairsOf(vm, t);
        // An absent map is OK + empty, as Envoy answers (SDKs panic on BAD_ARGUMENT here).
        return m.give(pairs ? encodePairs(pairs) : new Uint8Array(0), retPtr, retLen);
      }),
    proxy_get_header_map_value: (t, kp, kl, retPtr, retLen) =>
      guard(() => {
        if (!known(t)) return Status.BAD_ARGUMENT;
        const v = getValue(vm, t, key(kp, kl));
        if (v === undefined && !legacy) return Status.NOT_FOUND;
        return m.give(encodeString(v ?? ""), retPtr, retLen);
      }),
    proxy_add_header_map_value: mutate("add"),
    proxy_replace_header_map_value: mutate("replace"),
    proxy_remove_header_map_value: mutate("remove"),
    proxy_set_header_map_pairs: (t, p, l) =>
      guard(() => {
        if (!known(t)) return Status.BAD_ARGUMENT;
        const pairs = decodePairs(m.read(p, l));
        const h = mapOf(vm, t);
        if (!pairs || !h || !writable(vm, t)) return Status.BAD_ARGUMENT;
        const host = t === MapType.HTTP_REQUEST_HEADERS ? h.get("host") : undefined;
        for (const [k] of h.entries()) h.remove(k);
        if (host !== undefined) h.set("host", host);
        for (const [k, v] of pairs) {
          const lk = k.toLowerCase();
          write(vm, t, lk === ":authority" ? "replace" : "add", lk, v);
        }
        return Status.OK;
      }),
    proxy_send_local_response: (status, dp, dl, bp, bl, hp, hl, grpc) =>
      guard(() => {
        const s = vm.effective;
        // No stream (on_vm_start, on_configure, on_tick): nothing to answer. Envoy returns OK
        // and does nothing; the Rust SDK panics on any other status.
        if (!s) {
          if (!warnedNoStream) {
            warnedNoStream = true;
            vm.log.warn("proxy-wasm proxy_send_local_response outside a stream ignored", {
              plugin: vm.settings.name,
            });
          }
          return Status.OK;
        }
        const headers = decodePairs(m.read(hp, hl));
        if (!headers) return Status.BAD_ARGUMENT;
        const isGrpc = (s.req.requestHeaders.get("content-type") ?? "").startsWith(
          "application/grpc",
        );
        s.local = {
          status: status >>> 0,
          headers,
          body: m.read(bp, bl),
          details: m.readString(dp, dl),
          ...(isGrpc && grpc !== undefined && grpc >= 0 ? { grpcStatus: grpc } : {}),
        };
        if (s.pausedOn) vm.resume(s, localOutcome(s));
        return Status.OK;
      }),
    proxy_continue_stream: cont,
    proxy_continue_request: () => cont(StreamType.HTTP_REQUEST),
    proxy_continue_response: () => cont(StreamType.HTTP_RESPONSE),
    proxy_close_stream: (type) => {
      const s = vm.effective;
      if (type !== StreamType.HTTP_REQUEST && type !== StreamType.HTTP_RESPONSE) {
        return Status.BAD_ARGUMENT;
      }
      if (!s) return Status.OK;
      // A reset has no HttpFilter decision; the nearest is a local 503 with Envoy-like details.
      s.local ??= { status: 503, headers: [], body: "", details: "wasm_close_stream" };
      if (s.pausedOn) vm.resume(s, localOutcome(s));
      return Status.OK;
    },
    proxy_clear_route_cache: () => Status.OK,
  };
}
