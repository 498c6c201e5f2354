/**
 * The code gen_codec.ts emits per message: zero-value builders, decoders (a switch on the field
 * number, wire types checked, protobuf-es's local shapes) and encoders (protobuf-es's field order
 * and presence rules), from protobuf-es's field descriptors.
 */
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";

const EDITION_PROTO3 = 999;
const IMPLICIT = 2;

/** Short function suffixes (the file is bundled into the binary: names are bytes). */
const ids = new Map<string, string>();
export function resetIds(): void {
  ids.clear();
}
export const fn = (m: DescMessage): string => {
  let id = ids.get(m.typeName);
  if (id === undefined) ids.set(m.typeName, id = ids.size.toString(36));
  return id;
};
export const q = JSON.stringify;

export function closure(roots: Iterable<DescMessage>): DescMessage[] {
  const seen = new Map<string, DescMessage>();
  const walk = (m: DescMessage): void => {
    if (seen.has(m.typeName)) return;
    if (m.file.edition !== EDITION_PROTO3) {
      throw new Error(`${m.typeName}: only proto3 files are supported (edition ${m.file.edition})`);
    }
    seen.set(m.typeName, m);
    for (const f of m.fields) if (f.message) walk(f.message);
  };
  for (const r of roots) walk(r);
  return [...seen.values()].sort((a, b) => a.typeName < b.typeName ? -1 : 1);
}

interface ScalarInfo {
  readonly wire: number;
  readonly read: string;
  readonly write: string;
  readonly zero: string;
}

const SCALARS: Record<number, ScalarInfo> = {
  [ScalarType.DOUBLE]: { wire: 1, read: "r.double()", write: "double", zero: "0" },
  [ScalarType.FLOAT]: { wire: 5, read: "r.float()", write: "float", zero: "0" },
  [ScalarType.INT64]: { wire: 0, read: "r.int64()", write: "int64", zero: "0n" },
  [ScalarType.UINT64]: { wire: 0, read: "r.uint64()", write: "int64", zero: "0n" },
  [ScalarType.INT32]: { wire: 0, read: "r.int32()", write: "int32", zero: "0" },
  [ScalarType.FIXED64]: { wire: 1, read: "r.fixed64()", write: "fixed64", zero: "0n" },
  [ScalarType.FIXED32]: { wire: 5, read: "r.fixed32()", write: "fixed32", zero: "0" },
  [ScalarType.BOOL]: { wire: 0, read: "r.bool()", write: "bool", zero: "false" },
  [ScalarType.STRING]: { wire: 2, read: "r.string(E, U)", write: "string", zero: '""' },
  [ScalarType.BYTES]: { wire: 2, read: "r.bytes(E)", write: "bytes", zero: "new Uint8Array(0)" },
  [ScalarType.UINT32]: { wire: 0, read: "r.uint32()", write: "uint32", zero: "0" },
  [ScalarType.SFIXED32]: { wire: 5, read: "r.sfixed32()", write: "sfixed32", zero: "0" },
  [ScalarType.SFIXED64]: { wire: 1, read: "r.sfixed64()", write: "sfixed64", zero: "0n" },
  [ScalarType.SINT32]: { wire: 0, read: "r.sint32()", write: "sint32", zero: "0" },
  [ScalarType.SINT64]: { wire: 0, read: "r.sint64()", write: "sint64", zero: "0n" },
};

const WRAPPERS = new Set([
  "DoubleValue",
  "FloatValue",
  "Int64Value",
  "UInt64Value",
  "Int32Value",
  "UInt32Value",
  "BoolValue",
  "StringValue",
  "BytesValue",
].map((n) => `google.protobuf.${n}`));

/** protobuf-es keeps Struct fields as JSON objects (except inside google.protobuf.Value). */
const isJson = (f: DescField): boolean =>
  f.message?.typeName === "google.protobuf.Struct" &&
  f.parent.typeName !== "google.protobuf.Value";
/** …and unboxes singular wrapper fields outside oneofs. */
const isWrapper = (f: DescField): boolean =>
  f.fieldKind === "message" && !f.oneof && WRAPPERS.has(f.message.typeName);

function scalarOf(f: DescField): ScalarInfo {
  const s = f.fieldKind === "enum" || (f.fieldKind !== "message" && f.enum)
    ? ScalarType.INT32
    : (f as { scalar: ScalarType }).scalar;
  const info = SCALARS[s];
  if (!info) throw new Error(`${f.parent.typeName}.${f.name}: scalar ${s}`);
  return info;
}

function readExpr(f: DescField, end: string): string {
  const s = scalarOf(f);
  const e = s.read.replace("E", end).replace("U", String(f.utf8Validation ?? true));
  return (f as { longAsString?: boolean }).longAsString ? `String(${e})` : e;
}

function zeroExpr(f: DescField): string {
  if (f.enum) return String(f.enum.values[0]!.number);
  const s = scalarOf(f);
  return (f as { longAsString?: boolean }).longAsString && s.zero === "0n" ? '"0"' : s.zero;
}

/** Decode a child message at the reader into its local shape; `prev` is merged into. */
function childExpr(f: DescField, end: string, prev: string | undefined): string {
  const m = f.message!;
  if (isJson(f)) return `js(r, ${end}, depth, ${prev ?? "undefined"})`;
  if (isWrapper(f)) return `uw(d_${fn(m)}, r, ${end}, depth, ${prev}, ${q(m.typeName)})`;
  return `d_${fn(m)}(r, r.delimited(${end}), depth, ${prev ?? "undefined"})`;
}

function zeroObject(m: DescMessage): string {
  const props = [`$typeName: ${q(m.typeName)}`];
  for (const member of m.members) {
    if (member.kind === "oneof") {
      props.push(`${member.localName}: { case: undefined }`);
      continue;
    }
    const f = member;
    if (f.fieldKind === "list") props.push(`${f.localName}: []`);
    else if (f.fieldKind === "map") props.push(`${f.localName}: {}`);
    else if (f.fieldKind !== "message" && f.presence === IMPLICIT) {
      if (f.getDefaultValue() !== undefined) throw new Error(`${m.typeName}.${f.name}: default`);
      props.push(`${f.localName}: ${zeroExpr(f)}`);
    }
  }
  return `{ ${props.join(", ")} }`;
}

function decodeCase(f: DescField): string {
  const name = `m.${f.localName}`;
  const oneof = f.oneof ? `m.${f.oneof.localName}` : undefined;
  const set = (v: string): string =>
    oneof ? `${oneof} = { case: ${q(f.localName)}, value: ${v} };` : `${name} = ${v};`;
  if ((f as { delimitedEncoding?: boolean }).delimitedEncoding) {
    throw new Error(`${f.parent.typeName}.${f.name}: groups`);
  }
  switch (f.fieldKind) {
    case "scalar":
    case "enum":
      return `wt(t, ${scalarOf(f).wire}); ${set(readExpr(f, "end"))}`;
    case "message": {
      const prev = oneof
        ? `(${oneof}.case === ${q(f.localName)} ? ${oneof}.value : undefined)`
        : name;
      return `wt(t, 2); ${set(childExpr(f, "end", prev))}`;
    }
    case "list": {
      if (f.listKind === "message") {
        return `wt(t, 2); ${name}.push(${childExpr(f, "end", undefined)});`;
      }
      const s = scalarOf(f);
      if (s.wire === 2) return `wt(t, 2); ${name}.push(${readExpr(f, "end")});`;
      return `if ((t & 7) === 2) { const e = r.delimited(end); while (r.pos < e) ${name}.push(${
        readExpr(f, "e")
      }); r.done(e); } else { wt(t, ${s.wire}); ${name}.push(${readExpr(f, "end")}); }`;
    }
    case "map": {
      const keyInfo = SCALARS[f.mapKey]!;
      const keyRead = keyInfo.read.replace("E", "e").replace("U", String(f.utf8Validation ?? true));
      let valRead: string;
      let valZero: string;
      if (f.mapKind === "message") {
        const mm = f.message;
        const child = (p: string): string => `d_${fn(mm)}(r, r.delimited(e), depth, ${p})`;
        if (isJson(f)) {
          valRead = "js(r, e, depth, v)";
          valZero = "{}";
        } else {
          valRead = child("v");
          valZero = `z_${fn(mm)}()`;
        }
      } else {
        valRead = readExpr(f, "e");
        valZero = zeroExpr(f);
      }
      const valWire = f.mapKind === "message" ? 2 : scalarOf(f).wire;
      return `wt(t, 2); { const e = r.delimited(end); let k: any, v: any; while (r.pos < e) { ` +
        `const t2 = r.tag(); switch (t2 >>> 3) { case 1: wt(t2, ${keyInfo.wire}); k = ${keyRead}; break; ` +
        `case 2: wt(t2, ${valWire}); v = ${valRead}; break; default: r.skip(t2, e, MAX_DEPTH - depth); } } ` +
        `r.done(e); setOwn(${name}, String(k ?? ${keyInfo.zero}), v ?? ${valZero}); }`;
    }
  }
}

export function zero(m: DescMessage): string {
  return `function z_${fn(m)}(): any {
  return ${zeroObject(m)};
}
`;
}

/** A message's decoder: its zero value is the default of `m`, written inline (not a z_ function
 * per message: one JS function fewer per message in every xDS node's heap). */
export function decoder(m: DescMessage): string {
  const cases = m.fields.map((f) => `      case ${f.number}: ${decodeCase(f)} break;`);
  return `// ${m.typeName}
function d_${fn(m)}(r: Reader, end: number, depth: number, m: any = ${zeroObject(m)}): any {
  depth = deeper(depth);
  while (r.pos < end) {
    const t = r.tag();
    switch (t >>> 3) {
${cases.join("\n")}
      default: r.skip(t, end, MAX_DEPTH - depth);
    }
  }
  r.done(end);
  return m;
}
`;
}

/** Write one value (tag included) of field `f` held in `v`. */
function writeValue(f: DescField, v: string, no = f.number): string {
  if (f.message && f.fieldKind !== "map") {
    const msg = isJson(f) ? `jsonToStruct(${v})` : isWrapper(f) ? `{ value: ${v} }` : v;
    return `w.tag(${no}, 2).fork(); e_${fn(f.message)}(w, ${msg}); w.join();`;
  }
  const s = scalarOf(f);
  return `w.tag(${no}, ${s.wire}).${s.write}(${v});`;
}

function present(f: DescField, v: string): string {
  if (f.fieldKind === "message" || f.presence !== IMPLICIT) return `${v} !== undefined`;
  if (f.fieldKind === "enum") return `${v} !== undefined && ${v} !== ${f.enum.values[0]!.number}`;
  switch (f.scalar) {
    case ScalarType.STRING:
      return `${v} !== undefined && ${v} !== ""`;
    case ScalarType.BOOL:
      return `${v} !== undefined && ${v} !== false`;
    case ScalarType.BYTES:
      return `${v} !== undefined && ${v}.length > 0`;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return `${v} !== undefined && !Object.is(${v}, 0)`;
    default:
      return `${v} !== undefined && ${v} != 0`;
  }
}

function encodeField(f: DescField): string {
  const v = `m.${f.localName}`;
  if (f.oneof) {
    const o = `m.${f.oneof.localName}`;
    return `  if (${o}?.case === ${q(f.localName)}) { ${writeValue(f, `${o}.value`)} }`;
  }
  switch (f.fieldKind) {
    case "scalar":
    case "enum":
    case "message":
      return `  if (${present(f, v)}) { ${writeValue(f, v)} }`;
    case "list": {
      if (f.listKind !== "message" && f.packed) {
        const s = scalarOf(f);
        return `  if (${v}?.length) { w.tag(${f.number}, 2).fork(); for (const x of ${v}) w.${s.write}(x); w.join(); }`;
      }
      return `  for (const x of ${v} ?? []) { ${writeValue(f, "x")} }`;
    }
    case "map": {
      const key = SCALARS[f.mapKey]!;
      const k = f.mapKey === ScalarType.STRING
        ? "k"
        : f.mapKey === ScalarType.BOOL
        ? 'k === "true"'
        : key.zero === "0n"
        ? "BigInt(k)"
        : "Number(k)";
      let val: string;
      if (f.mapKind === "message") {
        const msg = isJson(f) ? "jsonToStruct(x)" : "x";
        val = `w.tag(2, 2).fork(); e_${fn(f.message)}(w, ${msg}); w.join();`;
      } else {
        const s = scalarOf(f);
        val = `w.tag(2, ${s.wire}).${s.write}(x as any);`;
      }
      return `  for (const [k, x] of Object.entries(${v} ?? {})) { w.tag(${f.number}, 2).fork(); ` +
        `w.tag(1, ${key.wire}).${key.write}(${k}); ${val} w.join(); }`;
    }
  }
}

export function encoder(m: DescMessage): string {
  const fields = [...m.fields].sort((a, b) => a.number - b.number);
  return `// ${m.typeName}
function e_${fn(m)}(w: Writer, m: any): void {
${fields.map(encodeField).join("\n")}
}
`;
}
