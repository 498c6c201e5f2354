/**
 * gen_codec.ts's proto3-JSON emitters: one `j_` function per message of the RBAC and HTTPFault
 * closures, writing what protobuf-es's toJson writes (default options: lowerCamelCase names, zero
 * values and empty lists/maps left out, enums by name, 64-bit integers as strings, bytes as
 * base64, well-known types in their JSON forms), so the node converts those filter configs without
 * protobuf-es's descriptors.
 */
import { type DescEnum, type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { fn, q } from "./gen_codec_emit.ts";

const IMPLICIT = 2;
const INT32ISH = new Set([
  ScalarType.INT32,
  ScalarType.SFIXED32,
  ScalarType.SINT32,
  ScalarType.FIXED32,
  ScalarType.UINT32,
]);

/** The WKTs with their own JSON form, by type name → the runtime helper (wire_json.ts). */
const WKT: Record<string, string> = {
  "google.protobuf.Any": "anyJson",
  "google.protobuf.Duration": "durationJson",
  "google.protobuf.Timestamp": "timestampJson",
  "google.protobuf.Struct": "structJson",
  "google.protobuf.Value": "valueJson",
  "google.protobuf.ListValue": "listValueJson",
};
const WRAPPER =
  /^google\.protobuf\.(Double|Float|Int64|UInt64|Int32|UInt32|Bool|String|Bytes)Value$/;

const enumId = (e: DescEnum): string => `n_${e.typeName.replaceAll(".", "_")}`;

function scalarJson(t: ScalarType, v: string): string {
  if (INT32ISH.has(t) || t === ScalarType.STRING || t === ScalarType.BOOL) return v;
  if (t === ScalarType.FLOAT || t === ScalarType.DOUBLE) return `floatJson(${v})`;
  if (t === ScalarType.BYTES) return `base64(${v})`;
  return `${v}.toString()`; // 64-bit
}

/** JSON of one value of `f` (a list item, a map value or a singular value) held in `v`. */
function valueJson(f: DescField, v: string): string {
  if (f.enum) {
    if (f.enum.typeName === "google.protobuf.NullValue") return "null";
    return `(${enumId(f.enum)}[${v}] ?? ${v})`;
  }
  const m = f.message;
  if (!m) return scalarJson((f as { scalar: ScalarType }).scalar, v);
  if (m.typeName === "google.protobuf.Struct" && f.parent.typeName !== "google.protobuf.Value") {
    return `structJson(jsonToStruct(${v}))`; // held as JSON: checked the way protobuf-es does
  }
  if (f.fieldKind === "message" && !f.oneof && WRAPPER.test(m.typeName)) {
    return scalarJson((m.fields[0] as { scalar: ScalarType }).scalar, v);
  }
  return jsonCall(m, v);
}

function jsonCall(m: DescMessage, v: string): string {
  const wkt = WKT[m.typeName];
  if (wkt) return `${wkt}(${v})`;
  if (WRAPPER.test(m.typeName)) {
    return scalarJson((m.fields[0] as { scalar: ScalarType }).scalar, `${v}.value`);
  }
  if (m.typeName.startsWith("google.protobuf.") && m.typeName !== "google.protobuf.Empty") {
    throw new Error(`${m.typeName}: no JSON form generated`);
  }
  return `j_${fn(m)}(${v})`;
}

function present(f: DescField, v: string): string {
  if (f.fieldKind === "message" || f.presence !== IMPLICIT) return `${v} !== undefined`;
  if (f.fieldKind === "enum") return `${v} !== ${f.enum.values[0]!.number}`;
  switch (f.scalar) {
    case ScalarType.STRING:
      return `${v} !== ""`;
    case ScalarType.BOOL:
      return `${v} !== false`;
    case ScalarType.BYTES:
      return `${v}.length > 0`;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return `!Object.is(${v}, 0)`;
    default:
      return `${v} != 0`;
  }
}

function fieldJson(f: DescField): string {
  if (f.jsonName === "__proto__" || f.name === "__proto__") throw new Error(`${f.name}: key`);
  const key = `o[${q(f.jsonName)}]`;
  const v = `m.${f.localName}`;
  if (f.oneof) {
    const o = `m.${f.oneof.localName}`;
    return `  if (${o}.case === ${q(f.localName)}) ${key} = ${valueJson(f, `${o}.value`)};`;
  }
  switch (f.fieldKind) {
    case "list":
      return `  if (${v}.length) ${key} = ${v}.map((x: any) => ${valueJson(f, "x")});`;
    case "map":
      return `  if (Object.keys(${v}).length) { const r: any = {}; ` +
        `for (const k of Object.keys(${v})) setOwn(r, k, ${
          valueJson(f, `${v}[k]`)
        }); ${key} = r; }`;
    default:
      return `  if (${present(f, v)}) ${key} = ${valueJson(f, v)};`;
  }
}

/** `j_` functions for the messages of `closure` without a WKT JSON form, and the enum tables. */
export function jsonEmitters(closure: readonly DescMessage[]): string {
  const enums = new Map<string, DescEnum>();
  const out: string[] = [];
  for (const m of closure) {
    for (const f of m.fields) if (f.enum) enums.set(f.enum.typeName, f.enum);
    if (WKT[m.typeName] || WRAPPER.test(m.typeName)) continue;
    const fields = [...m.fields].sort((a, b) => a.number - b.number);
    out.push(`// ${m.typeName}
function j_${fn(m)}(m: any): any {
  const o: any = {};
${fields.map(fieldJson).join("\n")}
  return o;
}
`);
  }
  for (const e of enums.values()) {
    out.push(
      `const ${enumId(e)}: Record<number, string> = { ${
        [...new Map(e.values.map((v) => [v.number, v.name] as const).reverse())].sort((a, b) =>
          a[0] - b[0]
        ).map(([n, name]) => `${n}: ${q(name)}`).join(", ")
      } };\n`,
    );
  }
  return out.join("");
}

export { jsonCall };
