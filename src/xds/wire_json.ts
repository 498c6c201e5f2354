/**
 * The proto3-JSON forms of well-known types for the node's generated JSON writers
 * (gen/node_codec.ts `toJson*`), written as protobuf-es's toJson writes them (same checks, same
 * errors): Any (no type registry on the node: an empty Any, and the one Any istiod puts inside an
 * RBAC permission, Envoy's UriTemplateMatchConfig), Duration, Timestamp, Struct/Value/ListValue,
 * floats, bytes.
 */
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
import { setOwn } from "./wire_struct.ts";
import { Reader, WireError } from "./wire.ts";

/** istiod writes an AuthorizationPolicy path with `{*}`/`{**}` as an RBAC `uri_template`. */
export const URI_TEMPLATE_TYPE_URL =
  "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig";

/** UriTemplateMatchConfig has one field, `path_template = 1` (string). */
function uriTemplateJson(value: Uint8Array): Json {
  const r = new Reader(value);
  let pathTemplate = "";
  while (r.pos < r.len) {
    const t = r.tag();
    if (t >>> 3 === 1) {
      if ((t & 7) !== 2) throw new WireError("path_template has the wrong wire type");
      pathTemplate = r.string(r.len, true);
    } else r.skip(t, r.len, 8);
  }
  const o: { [k: string]: Json } = { "@type": URI_TEMPLATE_TYPE_URL };
  if (pathTemplate !== "") o["pathTemplate"] = pathTemplate;
  return o;
}

const DURATION_MAX_S = 315576000000;
const TIMESTAMP_MS_MIN = Date.parse("0001-01-01T00:00:00Z");
const TIMESTAMP_MS_MAX = Date.parse("9999-12-31T23:59:59Z");

export function floatJson(v: number): number | string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  return v;
}

export function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

export function anyJson(m: { $typeName: string; typeUrl: string; value?: Uint8Array }): Json {
  if (m.typeUrl === "") return {};
  if (m.typeUrl === URI_TEMPLATE_TYPE_URL && m.value) return uriTemplateJson(m.value);
  throw new Error(
    `cannot encode message ${m.$typeName} to JSON: "${m.typeUrl}" is not in the type registry`,
  );
}

/** Nanoseconds with 0, 3, 6 or 9 digits, as protobuf-es writes them. */
function nanosText(nanos: number): string {
  let s = Math.abs(nanos).toString();
  s = "0".repeat(9 - s.length) + s;
  if (s.substring(3) === "000000") return s.substring(0, 3);
  if (s.substring(6) === "000") return s.substring(0, 6);
  return s;
}

export function durationJson(m: { $typeName: string; seconds: bigint; nanos: number }): string {
  const seconds = Number(m.seconds);
  const nanos = m.nanos;
  if (seconds > DURATION_MAX_S || seconds < -DURATION_MAX_S) {
    throw new Error(`cannot encode message ${m.$typeName} to JSON: value out of range`);
  }
  if ((seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0)) {
    throw new Error(
      `cannot encode message ${m.$typeName} to JSON: nanos sign must match seconds sign`,
    );
  }
  let text = m.seconds.toString();
  if (nanos !== 0) {
    text += "." + nanosText(nanos);
    if (nanos < 0 && seconds == 0) text = "-" + text;
  }
  return text + "s";
}

export function timestampJson(m: { $typeName: string; seconds: bigint; nanos: number }): string {
  const ms = Number(m.seconds) * 1000;
  if (ms < TIMESTAMP_MS_MIN || ms > TIMESTAMP_MS_MAX) {
    throw new Error(
      `cannot encode message ${m.$typeName} to JSON: must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z inclusive`,
    );
  }
  if (m.nanos < 0) {
    throw new Error(`cannot encode message ${m.$typeName} to JSON: nanos must not be negative`);
  }
  if (m.nanos > 999999999) {
    throw new Error(
      `cannot encode message ${m.$typeName} to JSON: nanos must not be greater than 999999999`,
    );
  }
  let z = "Z";
  if (m.nanos > 0) {
    const n = (m.nanos + 1000000000).toString().substring(1);
    z = n.substring(3) === "000000"
      ? "." + n.substring(0, 3) + "Z"
      : n.substring(6) === "000"
      ? "." + n.substring(0, 6) + "Z"
      : "." + n + "Z";
  }
  return new Date(ms).toISOString().replace(".000Z", z);
}

interface ValueMsg {
  $typeName: string;
  kind: { case: string | undefined; value?: unknown };
}

export function structJson(m: { fields: Record<string, ValueMsg> }): { [k: string]: Json } {
  const out: { [k: string]: Json } = {};
  for (const k of Object.keys(m.fields)) setOwn(out, k, valueJson(m.fields[k]!));
  return out;
}

export function valueJson(m: ValueMsg): Json {
  switch (m.kind.case) {
    case "nullValue":
      return null;
    case "numberValue": {
      const n = m.kind.value as number;
      if (!Number.isFinite(n)) throw new Error(`${m.$typeName} cannot be NaN or Infinity`);
      return n;
    }
    case "boolValue":
    case "stringValue":
      return m.kind.value as Json;
    case "structValue":
      return structJson(m.kind.value as { fields: Record<string, ValueMsg> });
    case "listValue":
      return listValueJson(m.kind.value as { values: ValueMsg[] });
    default:
      throw new Error(`${m.$typeName} must have a value`);
  }
}

export function listValueJson(m: { values: ValueMsg[] }): Json[] {
  return m.values.map(valueJson);
}
