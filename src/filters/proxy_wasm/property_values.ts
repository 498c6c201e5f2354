/**
 * Value encodings of `proxy_get_property` as Envoy serialises CEL values: strings raw, integers
 * 8-byte LE, doubles 8-byte LE (Struct numbers are doubles), bools 1 byte, string maps and lists
 * in the pair serialisation, protobuf messages (Node, Struct) in protobuf wire format — what the
 * C++ SDK's `getMessageValue({"node","metadata"})` parses.
 */
import { encodeBool, encodeInt64, encodePairs, encodeString } from "./abi.ts";

/** The value cannot be serialised (Envoy: SERIALIZATION_FAILURE). */
export const UNSERIALIZABLE: unique symbol = Symbol("unserializable");
export type PropertyValue = Uint8Array | undefined | typeof UNSERIALIZABLE;

export function encodeDouble(v: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, v, true);
  return out;
}

class ProtoWriter {
  private readonly parts: number[] = [];
  varint(v: number): void {
    while (v > 0x7f) {
      this.parts.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    this.parts.push(v);
  }
  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }
  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint(b.length);
    for (const x of b) this.parts.push(x);
  }
  string(field: number, s: string): void {
    this.bytes(field, new TextEncoder().encode(s));
  }
  double(field: number, v: number): void {
    this.tag(field, 1);
    for (const x of encodeDouble(v)) this.parts.push(x);
  }
  bool(field: number, v: boolean): void {
    this.tag(field, 0);
    this.varint(v ? 1 : 0);
  }
  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** google.protobuf.Value */
function protoValue(v: unknown): Uint8Array {
  const w = new ProtoWriter();
  if (v === null || v === undefined) {
    w.tag(1, 0);
    w.varint(0);
  } else if (typeof v === "number") w.double(2, v);
  else if (typeof v === "string") w.string(3, v);
  else if (typeof v === "boolean") w.bool(4, v);
  else if (Array.isArray(v)) {
    const l = new ProtoWriter();
    for (const x of v) l.bytes(1, protoValue(x));
    w.bytes(6, l.done());
  } else if (typeof v === "object") w.bytes(5, protoStruct(v as Record<string, unknown>));
  else w.string(3, String(v));
  return w.done();
}

/** google.protobuf.Struct (map entries sorted by key, as deterministic serialisation). */
export function protoStruct(o: Readonly<Record<string, unknown>>): Uint8Array {
  const w = new ProtoWriter();
  for (const k of Object.keys(o).sort()) {
    const e = new ProtoWriter();
    e.string(1, k);
    e.bytes(2, protoValue(o[k]));
    w.bytes(1, e.done());
  }
  return w.done();
}

/** envoy.config.core.v3.Node: id = 1, cluster = 2, metadata = 3. */
export function protoNode(
  id: string,
  cluster: string,
  metadata: Readonly<Record<string, unknown>>,
): Uint8Array {
  const w = new ProtoWriter();
  if (id) w.string(1, id);
  if (cluster) w.string(2, cluster);
  w.bytes(3, protoStruct(metadata));
  return w.done();
}

/** A metadata (Struct) value as Envoy hands it out. Maps of strings and lists of strings use
 * the pair serialisation (CEL maps/lists); other nested structs are Struct messages. */
export function structFieldValue(v: unknown): PropertyValue {
  if (v === undefined) return undefined;
  if (v === null) return new Uint8Array(0);
  if (typeof v === "string") return encodeString(v);
  if (typeof v === "boolean") return encodeBool(v);
  if (typeof v === "number") return encodeDouble(v);
  if (Array.isArray(v)) {
    if (!v.every((x) => typeof x === "string")) return UNSERIALIZABLE;
    return encodePairs(v.map((x) => [x as string, ""] as const));
  }
  if (typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>);
    if (entries.every(([, x]) => typeof x === "string")) {
      return encodePairs(entries as [string, string][]);
    }
    return protoStruct(v as Record<string, unknown>);
  }
  return UNSERIALIZABLE;
}

export { encodeInt64 };
