/**
 * Random protobuf-es messages for the codec's differential tests (node_codec_test.ts): every
 * member filled with some probability, oneofs, maps (a `__proto__` key among them), negative and
 * 64-bit integers, -0, empty and non-ASCII strings, JSON Struct fields and unboxed wrappers, in
 * protobuf-es's local shapes. Repeatable per seed.
 */
import { create, type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";

/** xorshift32: repeatable random values. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

type Rnd = () => number;
const pick = <T>(r: Rnd, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const WRAPPER =
  /^google\.protobuf\.(Double|Float|Int64|UInt64|Int32|UInt32|Bool|String|Bytes)Value$/;

function randScalar(r: Rnd, t: ScalarType, longAsString: boolean): unknown {
  const big = (signed: boolean): bigint => {
    const v = BigInt.asUintN(
      64,
      BigInt(Math.floor(r() * 2 ** 32)) << BigInt(pick(r, [0, 8, 31, 32])) |
        BigInt(Math.floor(r() * 1000)),
    );
    return signed ? BigInt.asIntN(64, pick(r, [v, -v, -1n, 0n])) : v;
  };
  const wrap = (v: bigint): unknown => longAsString ? v.toString() : v;
  switch (t) {
    case ScalarType.DOUBLE:
      return pick(r, [0, -1.5, 1e300, r() * 1000, -0]);
    case ScalarType.FLOAT:
      return pick(r, [0, 0.5, -2, 1024]);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return wrap(big(true));
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return wrap(big(false));
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return pick(r, [0, 1, -1, 2147483647, -2147483648, Math.floor(r() * 1e6) - 5e5]);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return pick(r, [0, 1, 4294967295, Math.floor(r() * 1e6)]);
    case ScalarType.BOOL:
      return r() < 0.5;
    case ScalarType.STRING:
      return pick(r, ["", "a", "ünïcødé ✓", "x".repeat(40), `s${Math.floor(r() * 1e6)}`]);
    case ScalarType.BYTES:
      return new Uint8Array(Math.floor(r() * 5)).map(() => Math.floor(r() * 256));
  }
}

function randJson(r: Rnd, depth: number): unknown {
  const kind = depth > 2 ? Math.floor(r() * 4) : Math.floor(r() * 6);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return Math.floor(r() * 100) - 50;
    case 3:
      return `j${Math.floor(r() * 100)}`;
    case 4:
      return [randJson(r, depth + 1), randJson(r, depth + 1)];
    default:
      return { a: randJson(r, depth + 1), "__proto__": randJson(r, depth + 1) };
  }
}

function randValue(r: Rnd, f: DescField, depth: number): unknown {
  const m = f.message;
  if (m) {
    if (m.typeName === "google.protobuf.Struct" && f.parent.typeName !== "google.protobuf.Value") {
      return randJson(r, 1);
    }
    if (f.fieldKind === "message" && !f.oneof && WRAPPER.test(m.typeName)) {
      return randScalar(r, (m.fields[0] as { scalar: ScalarType }).scalar, false);
    }
    return randMessage(r, m, depth + 1);
  }
  if (f.enum) return pick(r, f.enum.values).number;
  return randScalar(
    r,
    (f as { scalar: ScalarType }).scalar,
    !!(f as { longAsString?: boolean })
      .longAsString,
  );
}

export function randMessage(r: Rnd, desc: DescMessage, depth: number): unknown {
  const init: Record<string, unknown> = {};
  if (depth > 6) return create(desc);
  const fill = depth > 3 ? 0.15 : 0.6;
  for (const member of desc.members) {
    if (r() > fill) continue;
    if (member.kind === "oneof") {
      const f = pick(r, member.fields);
      init[member.localName] = { case: f.localName, value: randValue(r, f, depth) };
      continue;
    }
    const f = member;
    if (f.fieldKind === "list") {
      init[f.localName] = Array.from(
        { length: 1 + Math.floor(r() * 3) },
        () => randValue(r, f, depth),
      );
    } else if (f.fieldKind === "map") {
      const out: Record<string, unknown> = {};
      for (let i = 0; i < 3; i++) {
        const k = randScalar(r, f.mapKey, true);
        const key = f.mapKey === ScalarType.BOOL ? String(k) : String(k);
        out[key] = randValue(r, f, depth);
      }
      init[f.localName] = out;
    } else init[f.localName] = randValue(r, f, depth);
  }
  return create(desc, init as never);
}
