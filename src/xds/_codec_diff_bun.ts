/**
 * Run by node_codec_test.ts under Bun (the shipped runtime): the generated codec against
 * protobuf-es on the 10 000-workload snapshot, in Bun's engine. Prints one JSON line.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { deepStrictEqual } from "node:assert/strict";
import * as C from "./gen/node_codec.ts";
import { DECODE } from "./tools/gen_codec.ts";
import { buildNode } from "./control_plane/build.ts";
import { parseMesh } from "./control_plane/mesh.ts";
import { bigMeshJson } from "./_bench_mesh.ts";
import { TYPE_ORDER } from "./type_urls.ts";

const strip = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(strip);
  if (v === null || typeof v !== "object" || v instanceof Uint8Array) return v;
  return Object.fromEntries(
    Object.entries(v).filter(([k]) => k !== "$unknown").map(([k, x]) => [k, strip(x)]),
  );
};
const decoders = C as unknown as Record<string, (b: Uint8Array) => unknown>;
const byUrl = new Map(
  Object.entries(DECODE).map(([n, s]) => [`type.googleapis.com/${s.typeName}`, [n, s] as const]),
);
const res = buildNode(parseMesh(bigMeshJson()), "node-a");
let n = 0;
for (const t of TYPE_ORDER) {
  const [name, schema] = byUrl.get(t)!;
  for (const r of res.get(t)?.values() ?? []) {
    deepStrictEqual(
      strip(decoders[`decode${name}`]!(r.any.value)),
      strip(fromBinary(schema, r.any.value)),
    );
    n++;
  }
}
// deno-lint-ignore no-console
console.log(JSON.stringify({ identical: n }));
