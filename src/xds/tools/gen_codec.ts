/**
 * `deno task gen` (second step): writes src/xds/gen/node_codec.ts, the node agent's protobuf
 * codec — one plain decode function per message the node reads and one encode function per
 * message it writes, generated from protobuf-es's own descriptors (the schema source stays the
 * protos and src/xds/gen/*_pb.ts). The node then needs neither protobuf-es nor the descriptors at
 * run time (~14 MB of an xDS node's idle RSS); the control plane and tests keep protobuf-es.
 * Decoded values have protobuf-es's shapes (same property names, `$typeName`, oneof ADTs, bigint
 * int64, JSON Struct fields, unboxed wrappers), minus `$unknown`: unknown fields are skipped.
 * gen_codec_test.ts checks the committed file matches this generator's output.
 */
import type { DescEnum, DescMessage } from "@bufbuild/protobuf";
import { StringValueSchema, StructSchema } from "@bufbuild/protobuf/wkt";
import * as P from "../proto.ts";
import { closure, decoder, encoder, fn, q, resetIds, zero } from "./gen_codec_emit.ts";
import { jsonCall, jsonEmitters } from "./gen_codec_json.ts";

/** What the node decodes: export name → message. */
export const DECODE: Readonly<Record<string, DescMessage>> = {
  DiscoveryResponse: P.DiscoveryResponseSchema,
  DeltaDiscoveryResponse: P.DeltaDiscoveryResponseSchema,
  Listener: P.ListenerSchema,
  RouteConfiguration: P.RouteConfigurationSchema,
  Cluster: P.ClusterSchema,
  ClusterLoadAssignment: P.ClusterLoadAssignmentSchema,
  TypedExtensionConfig: P.TypedExtensionConfigSchema,
  HttpConnectionManager: P.HttpConnectionManagerSchema,
  TcpProxy: P.TcpProxySchema,
  Wasm: P.WasmSchema,
  Router: P.RouterSchema,
  TypedStruct: P.TypedStructSchema,
  UdpaTypedStruct: P.UdpaTypedStructSchema,
  StringValue: StringValueSchema,
  IstioAddress: P.IstioAddressSchema,
  IstioAuthorization: P.IstioAuthorizationSchema,
  IstioCertificateResponse: P.IstioCertificateResponseSchema,
  RBAC: P.RBACSchema,
  HTTPFault: P.HTTPFaultSchema,
  Cors: P.CorsSchema,
  CorsPolicy: P.CorsPolicySchema,
};

/** Filter configs the node turns into proto3 JSON (FilterRef.config): export name → message. */
export const TO_JSON: Readonly<Record<string, DescMessage>> = {
  RBAC: P.RBACSchema,
  HTTPFault: P.HTTPFaultSchema,
};

/** What the node encodes: export name → message. */
export const ENCODE: Readonly<Record<string, DescMessage>> = {
  DiscoveryRequest: P.DiscoveryRequestSchema,
  DeltaDiscoveryRequest: P.DeltaDiscoveryRequestSchema,
  IstioCertificateRequest: P.IstioCertificateRequestSchema,
};

/** Messages the node builds in memory before encoding: export name → message. */
const CREATE: Readonly<Record<string, DescMessage>> = {
  DiscoveryRequest: P.DiscoveryRequestSchema,
  DeltaDiscoveryRequest: P.DeltaDiscoveryRequestSchema,
  Node: P.NodeSchema,
  Status: P.StatusSchema,
};

/** Enums the node's code compares against, as constant objects: export name → enum. */
const ENUMS: Readonly<Record<string, DescEnum>> = {
  Cluster_DiscoveryType: P.ClusterSchema.field.type!.enum!,
  IstioScope: P.IstioAuthorizationSchema.field.scope!.enum!,
  IstioAction: P.IstioAuthorizationSchema.field.action!.enum!,
};

/** Where protobuf-es generated a message's TS type (relative to src/xds/gen). */
function typeImport(m: DescMessage): { name: string; from: string } {
  const name = m.typeName.slice(m.file.proto.package.length + 1).replaceAll(".", "_");
  const from = m.file.name.startsWith("google/protobuf/")
    ? "@bufbuild/protobuf/wkt"
    : `./${m.file.name}_pb.ts`;
  return { name, from };
}

export function generateCodec(): string {
  resetIds();
  const dec = closure(Object.values(DECODE));
  const enc = closure(Object.values(ENCODE));
  const imports = new Map<string, Set<string>>();
  const add = (from: string, name: string): void => {
    if (!imports.has(from)) imports.set(from, new Set());
    imports.get(from)!.add(name);
  };
  const api: string[] = [];
  for (const [name, m] of Object.entries(DECODE)) {
    const t = typeImport(m);
    const alias = t.name === name ? t.name : `${t.name} as ${name}`;
    add(t.from, alias);
    api.push(`/** Decode a ${m.typeName} (protobuf-es's shape, unknown fields skipped). */
export function decode${name}(bytes: Uint8Array): ${name} {
  return d_${fn(m)}(new Reader(bytes), bytes.length, 0);
}
`);
  }
  for (const [name, m] of Object.entries(ENCODE)) {
    const t = typeImport(m);
    add(t.from, t.name === name ? `${name}Schema` : `${t.name}Schema as ${name}Schema`);
    api.push(`/** Encode a ${m.typeName} (protobuf-es's init shape; fields in number order). */
export function encode${name}(m: MessageInitShape<typeof ${name}Schema>): Uint8Array {
  const w = new Writer();
  e_${fn(m)}(w, m);
  return w.finish();
}
`);
  }
  for (const [name, m] of Object.entries(CREATE)) {
    const t = typeImport(m);
    add(t.from, t.name === name ? name : `${t.name} as ${name}`);
    add(t.from, t.name === name ? `${name}Schema` : `${t.name}Schema as ${name}Schema`);
    api.push(
      `/** A ${m.typeName} with its zero values, then \`init\`'s fields (protobuf-es's create, shallow). */
export function create${name}(init: MessageInitShape<typeof ${name}Schema>): ${name} {
  return Object.assign(z_${fn(m)}(), init);
}
`,
    );
  }
  for (const [name, m] of Object.entries(TO_JSON)) {
    api.push(`/** A ${m.typeName} as protobuf-es's toJson writes it (errors included). */
export function toJson${name}(m: ${name}): JsonValue {
  return ${jsonCall(m, "m")};
}
`);
  }
  const json = closure(Object.values(TO_JSON));
  const decoders = dec.map(decoder).join("");
  // Zero-value functions only for what is built outside a decoder's default (create*, map values).
  const used = new Set(
    [...`${api.join("")}${decoders}`.matchAll(/\bz_(\w+)\(\)/g)].map((x) => x[1]),
  );
  const zeros = closure([...dec, ...enc]).filter((m) => used.has(fn(m)));
  const enums = Object.entries(ENUMS).map(([name, e]) =>
    `/** ${e.typeName} */\nexport const ${name} = {\n${
      e.values.map((v) => `  ${v.localName}: ${v.number},`).join("\n")
    }\n} as const;\n`
  );
  const typeImports = [...imports].sort(([a], [b]) => a < b ? -1 : 1).flatMap(([from, names]) => {
    const all = [...names].sort();
    const types = all.filter((n) => !n.endsWith("Schema"));
    return [
      `import type { ${all.join(", ")} } from ${q(from)};`,
      ...(types.length
        ? [`export type { ${types.map((n) => n.replace(/.* as /, "")).join(", ")} };`]
        : []),
    ];
  });
  return `// Code generated by src/xds/tools/gen_codec.ts (\`deno task gen\`). DO NOT EDIT.
// The node agent's protobuf codec: ${dec.length} message decoders, ${enc.length} encoders,
// ${json.length} proto3-JSON writers, no descriptors.
/* eslint-disable */
// deno-lint-ignore-file
// deno-fmt-ignore-file
import type { JsonValue, MessageInitShape } from "@bufbuild/protobuf";
${typeImports.join("\n")}
import { deeper, jsonToStruct, MAX_DEPTH, Reader, setOwn, structToJson, wt, Writer } from "../wire.ts";
import { anyJson, base64, durationJson, floatJson, listValueJson, structJson, timestampJson, valueJson } from "../wire_json.ts";

${api.join("\n")}
/** A singular wrapper field: unboxed, merged like protobuf-es. */
function uw(d: any, r: Reader, end: number, depth: number, prev: any, typeName: string): any {
  return d(r, r.delimited(end), depth, prev === undefined ? undefined : { $typeName: typeName, value: prev }).value;
}
/** A Struct field: JSON, merged like protobuf-es. */
function js(r: Reader, end: number, depth: number, prev: any): any {
  return structToJson(d_${
    fn(StructSchema)
  }(r, r.delimited(end), depth, prev === undefined ? undefined : jsonToStruct(prev)));
}
${enums.join("\n")}
${zeros.map(zero).join("")}
${decoders}
${enc.map(encoder).join("")}
${jsonEmitters(json)}`;
}

export const CODEC_PATH = new URL("../gen/node_codec.ts", import.meta.url);

if (import.meta.main) {
  await Deno.writeTextFile(CODEC_PATH, generateCodec());
}
