/**
 * google.protobuf.Struct ⇄ JSON for the node's codec: protobuf-es represents Struct fields as JSON
 * objects (except inside google.protobuf.Value), so the generated decoders convert the decoded
 * Struct, and the encoders convert back (the same rules as protobuf-es's reflect/message.ts).
 */
/** An own property even for the key "__proto__" (map keys are untrusted). */
export function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === "__proto__") {
    Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  } else o[k] = v;
}

type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };
interface ValueMsg {
  $typeName: "google.protobuf.Value";
  kind: { case: string | undefined; value?: unknown };
}
interface StructMsg {
  $typeName: "google.protobuf.Struct";
  fields: Record<string, ValueMsg>;
}

export function structToJson(s: StructMsg): { [k: string]: JsonValue } {
  const out: { [k: string]: JsonValue } = {};
  for (const k of Object.keys(s.fields)) setOwn(out, k, valueToJson(s.fields[k]!));
  return out;
}

function valueToJson(v: ValueMsg): JsonValue {
  switch (v.kind.case) {
    case "structValue":
      return structToJson(v.kind.value as StructMsg);
    case "listValue":
      return (v.kind.value as { values: ValueMsg[] }).values.map(valueToJson);
    case "nullValue":
    case undefined:
      return null;
    default:
      return v.kind.value as JsonValue;
  }
}

export function jsonToStruct(json: unknown): StructMsg {
  const s: StructMsg = { $typeName: "google.protobuf.Struct", fields: {} };
  if (json !== null && typeof json === "object" && !Array.isArray(json)) {
    const o = json as Record<string, unknown>;
    for (const k of Object.keys(o)) setOwn(s.fields, k, jsonToValue(o[k]));
  }
  return s;
}

function jsonToValue(json: unknown): ValueMsg {
  const v: ValueMsg = { $typeName: "google.protobuf.Value", kind: { case: undefined } };
  switch (typeof json) {
    case "number":
      v.kind = { case: "numberValue", value: json };
      break;
    case "string":
      v.kind = { case: "stringValue", value: json };
      break;
    case "boolean":
      v.kind = { case: "boolValue", value: json };
      break;
    case "object":
      if (json === null) v.kind = { case: "nullValue", value: 0 };
      else if (Array.isArray(json)) {
        v.kind = {
          case: "listValue",
          value: { $typeName: "google.protobuf.ListValue", values: json.map(jsonToValue) },
        };
      } else v.kind = { case: "structValue", value: jsonToStruct(json) };
      break;
  }
  return v;
}
