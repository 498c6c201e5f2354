/**
 * Proxy-Wasm ABI constants (0.1.0, 0.2.0, 0.2.1) and the map serialisation shared by headers,
 * trailers, local-reply headers and callout headers. Values follow proxy-wasm/spec exactly: the
 * Rust SDK panics on any status it does not expect, so hosts must not improvise.
 */

export const Status = {
  OK: 0,
  NOT_FOUND: 1,
  BAD_ARGUMENT: 2,
  SERIALIZATION_FAILURE: 3,
  PARSE_FAILURE: 4,
  INVALID_MEMORY_ACCESS: 6,
  EMPTY: 7,
  CAS_MISMATCH: 8,
  INTERNAL_FAILURE: 10,
  UNIMPLEMENTED: 12,
} as const;

export const WasiErrno = {
  SUCCESS: 0,
  BADF: 8,
  FAULT: 21,
  INVAL: 28,
  NOSYS: 52,
  NOTSUP: 58,
} as const;

export const Action = { CONTINUE: 0, PAUSE: 1 } as const;

export const LogLevel = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4, CRITICAL: 5 } as const;

export const BufferType = {
  HTTP_REQUEST_BODY: 0,
  HTTP_RESPONSE_BODY: 1,
  DOWNSTREAM_DATA: 2,
  UPSTREAM_DATA: 3,
  HTTP_CALL_RESPONSE_BODY: 4,
  GRPC_CALL_MESSAGE: 5,
  VM_CONFIGURATION: 6,
  PLUGIN_CONFIGURATION: 7,
  FOREIGN_FUNCTION_ARGUMENTS: 8,
} as const;

export const MapType = {
  HTTP_REQUEST_HEADERS: 0,
  HTTP_REQUEST_TRAILERS: 1,
  HTTP_RESPONSE_HEADERS: 2,
  HTTP_RESPONSE_TRAILERS: 3,
  GRPC_CALL_INITIAL_METADATA: 4,
  GRPC_CALL_TRAILING_METADATA: 5,
  HTTP_CALL_RESPONSE_HEADERS: 6,
  HTTP_CALL_RESPONSE_TRAILERS: 7,
} as const;

export const StreamType = {
  HTTP_REQUEST: 0,
  HTTP_RESPONSE: 1,
  DOWNSTREAM: 2,
  UPSTREAM: 3,
} as const;

export const MetricType = { COUNTER: 0, GAUGE: 1, HISTOGRAM: 2 } as const;

export type AbiVersion = "0.1.0" | "0.2.0" | "0.2.1";

const MARKERS: readonly [string, AbiVersion][] = [
  ["proxy_abi_version_0_2_1", "0.2.1"],
  ["proxy_abi_version_0_2_0", "0.2.0"],
  ["proxy_abi_version_0_1_0", "0.1.0"],
];

/** The ABI version a module declares by its marker export, or undefined when it has none. */
export function detectAbi(exportNames: ReadonlySet<string>): AbiVersion | undefined {
  for (const [name, v] of MARKERS) if (exportNames.has(name)) return v;
  return undefined;
}

/** Modules built before the marker existed (Envoy 1.13/1.14 era, e.g. Istio 1.5's own stats and
 * metadata-exchange filters) export the 0.1.0 callbacks without a marker. They are run as 0.1.0;
 * cpp-host refuses them, weft accepts them with a warning so those published filters run. */
export function isPreMarkerModule(exportNames: ReadonlySet<string>): boolean {
  return exportNames.has("proxy_on_context_create") && exportNames.has("proxy_on_vm_start") &&
    (exportNames.has("malloc") || exportNames.has("proxy_on_memory_allocate"));
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Decode UTF-8 with a fast path for short ASCII (header names and values mostly are). */
export function decodeUtf8(bytes: Uint8Array, start: number, len: number): string {
  if (len <= 64) {
    let s = "";
    for (let i = start, end = start + len; i < end; i++) {
      const c = bytes[i]!;
      if (c >= 0x80) return decoder.decode(bytes.subarray(start, start + len));
      s += String.fromCharCode(c);
    }
    return s;
  }
  return decoder.decode(bytes.subarray(start, start + len));
}

/** Encode to UTF-8 into `out` at `at`, returning bytes written; ASCII avoids the encoder call. */
export function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return encoder.encode(s).length;
  return s.length;
}

export function encodeUtf8Into(s: string, out: Uint8Array, at: number): number {
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    out[at + i] = c;
  }
  if (i === s.length) return i;
  return i + encoder.encodeInto(s.slice(i), out.subarray(at + i)).written;
}

/**
 * Map serialisation, little-endian: u32 count, count × (u32 key_len, u32 value_len), then each
 * key and value followed by 0x00.
 */
export function encodePairs(pairs: readonly (readonly [string, string])[]): Uint8Array {
  let size = 4 + pairs.length * 8;
  for (const [k, v] of pairs) size += utf8Length(k) + utf8Length(v) + 2;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, pairs.length, true);
  let data = 4 + pairs.length * 8;
  pairs.forEach(([k, v], i) => {
    const kl = encodeUtf8Into(k, out, data);
    data += kl + 1;
    const vl = encodeUtf8Into(v, out, data);
    data += vl + 1;
    dv.setUint32(4 + i * 8, kl, true);
    dv.setUint32(8 + i * 8, vl, true);
  });
  return out;
}

/** Parse a serialised map; undefined when the bytes are malformed (the caller answers
 * BAD_ARGUMENT). Zero bytes or a lone 0x00 are the empty map. */
export function decodePairs(bytes: Uint8Array): [string, string][] | undefined {
  if (bytes.length === 0 || (bytes.length === 1 && bytes[0] === 0)) return [];
  if (bytes.length < 4) return undefined;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = dv.getUint32(0, true);
  let data = 4 + count * 8;
  if (data > bytes.length) return undefined;
  const out: [string, string][] = [];
  for (let i = 0; i < count; i++) {
    const kl = dv.getUint32(4 + i * 8, true);
    const vl = dv.getUint32(8 + i * 8, true);
    if (data + kl + vl + 2 > bytes.length) return undefined;
    const k = decodeUtf8(bytes, data, kl);
    data += kl + 1;
    const v = decodeUtf8(bytes, data, vl);
    data += vl + 1;
    out.push([k, v]);
  }
  return out;
}

/** Property values as Envoy encodes them. */
export function encodeInt64(v: number | bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, BigInt(v), true);
  return out;
}

export function encodeBool(v: boolean): Uint8Array {
  return Uint8Array.of(v ? 1 : 0);
}

export function encodeString(s: string): Uint8Array {
  return encoder.encode(s);
}
