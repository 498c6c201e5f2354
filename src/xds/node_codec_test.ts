/**
 * The node's generated codec (gen/node_codec.ts) against protobuf-es, the schema source: real
 * snapshots (the test mesh and a 10 000-workload mesh), random messages built with protobuf-es,
 * unknown fields, packed and unpacked lists, maps, oneofs, negative varints and defaults decode
 * to the same values; the node's requests encode to the same bytes; malformed bytes fail with a
 * WireError (never another exception, never a hang).
 */
import assert from "node:assert/strict";
import { create, type DescMessage, fromBinary, toBinary, toJson } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import * as C from "./gen/node_codec.ts";
import { randMessage, rng } from "./_random_message.ts";
import { DECODE, ENCODE, TO_JSON } from "./tools/gen_codec.ts";
import { WireError } from "./wire.ts";
import { buildNode } from "./control_plane/build.ts";
import { parseMesh } from "./control_plane/mesh.ts";
import { bigMeshJson } from "./_bench_mesh.ts";
import { meshYaml } from "./_test_fixtures.ts";
import { TYPE_ORDER } from "./type_urls.ts";
import { DiscoveryResponseSchema } from "./proto.ts";

type Decoder = (b: Uint8Array) => unknown;
const decoders = C as unknown as Record<string, Decoder>;
const encoders = C as unknown as Record<string, (m: unknown) => Uint8Array>;

/** protobuf-es keeps unknown fields in `$unknown`; the node's codec skips them. */
function stripUnknown(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripUnknown);
  if (v === null || typeof v !== "object" || v instanceof Uint8Array) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (k !== "$unknown") out[k] = stripUnknown(x);
  return out;
}

function same(name: string, schema: DescMessage, bytes: Uint8Array, what: string): void {
  const want = stripUnknown(fromBinary(schema, bytes));
  const got = stripUnknown(decoders[`decode${name}`]!(bytes));
  assert.deepStrictEqual(got, want, `${what}: ${schema.typeName}`);
}

const SCHEMA_BY_URL = new Map(
  Object.entries(DECODE).map(([n, s]) => [`type.googleapis.com/${s.typeName}`, [n, s] as const]),
);

function sameSnapshot(text: string): number {
  const res = buildNode(parseMesh(text), "node-a");
  let n = 0;
  for (const t of TYPE_ORDER) {
    const held = [...(res.get(t)?.values() ?? [])];
    const [name, schema] = SCHEMA_BY_URL.get(t)!;
    for (const r of held) {
      same(name, schema, r.any.value, t);
      n++;
    }
    // The whole SotW response, as the node reads it off the stream.
    const msg = create(DiscoveryResponseSchema, {
      versionInfo: "1",
      typeUrl: t,
      nonce: "n",
      resources: held.map((r) => r.any),
    });
    same("DiscoveryResponse", DiscoveryResponseSchema, toBinary(DiscoveryResponseSchema, msg), t);
  }
  return n;
}

Deno.test("node codec: the test mesh's resources decode as protobuf-es decodes them", () => {
  assert.ok(sameSnapshot(meshYaml(10)) > 5);
});

Deno.test("node codec: a 10 000-workload snapshot decodes as protobuf-es decodes it", () => {
  assert.ok(sameSnapshot(bigMeshJson()) > 10_000);
});

Deno.test("node codec: random messages built with protobuf-es decode the same (every node type, 40 seeds)", () => {
  for (const [name, schema] of Object.entries(DECODE)) {
    for (let seed = 1; seed <= 40; seed++) {
      const msg = randMessage(rng(seed * 7919 + name.length), schema, 0);
      same(name, schema, toBinary(schema, msg as never), `seed ${seed}`);
    }
  }
});

Deno.test("node codec: the node's requests encode to protobuf-es's bytes (random, 60 seeds)", () => {
  for (const [name, schema] of Object.entries(ENCODE)) {
    for (let seed = 1; seed <= 60; seed++) {
      const msg = randMessage(rng(seed * 104729 + name.length), schema, 0);
      assert.deepStrictEqual(
        encoders[`encode${name}`]!(msg),
        toBinary(schema, msg as never),
        `${name} seed ${seed}`,
      );
    }
    // Init shapes with fields left out, as the node builds them.
    assert.deepStrictEqual(encoders[`encode${name}`]!({}), new Uint8Array(0));
  }
});

// --- wire-level cases protobuf-es does not produce itself ---

const fieldNo = (m: DescMessage, local: string): number => {
  const f = m.fields.find((x) => x.localName === local);
  assert.ok(f, `${m.typeName}.${local}`);
  return f.number;
};

Deno.test("node codec: unpacked and mixed packed/unpacked repeated scalars decode the same", () => {
  // RouteConfiguration.virtual_hosts[].retry_policy.retriable_status_codes (repeated uint32).
  const rc = DECODE.RouteConfiguration!;
  const vh = rc.fields.find((f) => f.localName === "virtualHosts")!.message!;
  const rp = vh.fields.find((f) => f.localName === "retryPolicy")!.message!;
  const codes = new BinaryWriter();
  for (const v of [500, 503, 0, 2 ** 31]) {
    codes.tag(fieldNo(rp, "retriableStatusCodes"), WireType.Varint).uint32(v);
  }
  codes.tag(fieldNo(rp, "retriableStatusCodes"), WireType.LengthDelimited).fork().uint32(1).uint32(
    2,
  ).join();
  const host = new BinaryWriter().tag(fieldNo(vh, "retryPolicy"), WireType.LengthDelimited).bytes(
    codes.finish(),
  );
  const bytes = new BinaryWriter().tag(fieldNo(rc, "virtualHosts"), WireType.LengthDelimited).bytes(
    host.finish(),
  ).finish();
  same("RouteConfiguration", rc, bytes, "unpacked");
  const got = C.decodeRouteConfiguration(bytes).virtualHosts[0]!.retryPolicy!.retriableStatusCodes;
  assert.deepEqual(got, [500, 503, 0, 2 ** 31, 1, 2]);
});

Deno.test("node codec: unknown fields of every wire type are skipped, at the top and nested", () => {
  const res = buildNode(parseMesh(meshYaml(10)), "node-a");
  const listener = [...res.get(TYPE_ORDER.find((t) => t.endsWith("Listener"))!)!.values()][0]!;
  const unknown = new BinaryWriter()
    .tag(999, WireType.Varint).int64(-5n)
    .tag(998, WireType.Bit64).fixed64(7n)
    .tag(997, WireType.LengthDelimited).string("x")
    .tag(996, WireType.Bit32).fixed32(3)
    .tag(995, WireType.StartGroup).tag(1, WireType.Varint).uint32(1).tag(995, WireType.EndGroup)
    .finish();
  const l = DECODE.Listener!;
  const nested = new BinaryWriter().tag(fieldNo(l, "address"), WireType.LengthDelimited)
    .bytes(unknown).finish();
  const bytes = new Uint8Array([...unknown, ...listener.any.value, ...nested]);
  assert.ok(fromBinary(l, bytes).$unknown, "protobuf-es saw them");
  same("Listener", l, bytes, "unknown fields");
});

/** Decoding must return or throw a WireError: no other exception, no hang. */
function failsCleanly(name: string, bytes: Uint8Array): "ok" | "rejected" {
  try {
    decoders[`decode${name}`]!(bytes);
    return "ok";
  } catch (err) {
    assert.ok(err instanceof WireError, `${name}: ${err}`);
    return "rejected";
  }
}

Deno.test("node codec: malformed bytes fail with a WireError (truncation, flipped bytes)", () => {
  const res = buildNode(parseMesh(meshYaml(10)), "node-a");
  let rejected = 0;
  for (const t of TYPE_ORDER) {
    const [name] = SCHEMA_BY_URL.get(t)!;
    for (const r of res.get(t)?.values() ?? []) {
      const b = r.any.value;
      for (let cut = 0; cut < b.length; cut++) {
        if (failsCleanly(name, b.subarray(0, cut)) === "rejected") rejected++;
      }
      const rnd = rng(b.length);
      for (let i = 0; i < 200; i++) {
        const m = b.slice();
        m[Math.floor(rnd() * m.length)] = Math.floor(rnd() * 256);
        if (failsCleanly(name, m) === "rejected") rejected++;
      }
    }
  }
  assert.ok(rejected > 100, `most damaged messages are rejected (${rejected})`);
});

Deno.test("node codec: wrong wire types, overlong varints, lengths past the end and deep nesting are rejected", () => {
  const l = DECODE.Listener!;
  const rejects = (name: string, bytes: Uint8Array, why: RegExp): void =>
    assert.throws(
      () => decoders[`decode${name}`]!(bytes),
      (e) => e instanceof WireError && why.test(e.message),
    );
  // Listener.name (a string) sent as a varint.
  rejects(
    "Listener",
    new BinaryWriter().tag(fieldNo(l, "name"), WireType.Varint).uint32(5).finish(),
    /wire type 0/,
  );
  // An 11-byte varint.
  rejects(
    "Listener",
    new Uint8Array([fieldNo(l, "trafficDirection") << 3, ...Array(10).fill(0xff), 1]),
    /longer than 10/,
  );
  // A length running past the buffer, and past its enclosing message.
  rejects("Listener", new Uint8Array([(fieldNo(l, "name") << 3) | 2, 5, 0x61]), /runs past/);
  const inner = new Uint8Array([(fieldNo(l, "name") << 3) | 2, 9, 0x61]);
  rejects(
    "Listener",
    new Uint8Array([
      (fieldNo(l, "address") << 3) | 2,
      inner.length,
      ...inner,
      0x61,
      0x61,
      0x61,
      0x61,
      0x61,
      0x61,
      0x61,
      0x61,
    ]),
    /runs past/,
  );
  // Field number 0 and an end-group tag with no group.
  rejects("Listener", new Uint8Array([0x02, 0x00]), /illegal tag/);
  rejects("Listener", new Uint8Array([(3 << 3) | 4]), /wire type 4|illegal/);
  // Invalid UTF-8 in a string.
  rejects("Listener", new Uint8Array([(fieldNo(l, "name") << 3) | 2, 2, 0xc3, 0x28]), /UTF-8/);
  // Struct values nested 150 deep inside a TypedStruct: past the recursion limit of 100.
  let v = new BinaryWriter().tag(1, WireType.LengthDelimited).string("x").finish(); // Value.string_value = 3; fine either way
  for (let i = 0; i < 150; i++) {
    const list = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(v).finish(); // ListValue.values
    v = new BinaryWriter().tag(6, WireType.LengthDelimited).bytes(list).finish(); // Value.list_value
  }
  const struct = new BinaryWriter().tag(1, WireType.LengthDelimited).fork()
    .tag(1, WireType.LengthDelimited).string("k").tag(2, WireType.LengthDelimited).bytes(v).join()
    .finish();
  const ts = new BinaryWriter().tag(2, WireType.LengthDelimited).bytes(struct).finish();
  rejects("TypedStruct", ts, /deeper than 100/);
  assert.throws(() => fromBinary(DECODE.TypedStruct!, ts), /recursion/, "protobuf-es agrees");
});

Deno.test("node codec: on Bun too, the 10 000-workload snapshot decodes as protobuf-es decodes it", async () => {
  const bun = await new Deno.Command("bun", { args: ["--version"], stdout: "null", stderr: "null" })
    .output().catch(() => undefined);
  if (!bun?.success) {
    // deno-lint-ignore no-console
    console.log("skipped: bun is not installed");
    return;
  }
  const out = await new Deno.Command("bun", {
    args: [new URL("./_codec_diff_bun.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(new TextDecoder().decode(out.stdout)) as { identical: number };
  assert.ok(r.identical > 10_000, `${r.identical} resources compared`);
});

Deno.test("node codec: RBAC and HTTPFault become the proto3 JSON protobuf-es's toJson writes (random, 150 seeds each)", () => {
  const json = C as unknown as Record<string, (m: unknown) => unknown>;
  for (const [name, schema] of Object.entries(TO_JSON)) {
    let converted = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const msg = randMessage(rng(seed * 31337 + name.length), schema, 0);
      const bytes = toBinary(schema, msg as never);
      const outcome = (f: () => unknown): { value?: unknown; error?: string } => {
        try {
          return { value: f() };
        } catch (err) {
          return { error: (err as Error).message };
        }
      };
      const want = outcome(() => toJson(schema, fromBinary(schema, bytes)));
      const mine = outcome(() => json[`toJson${name}`]!(decoders[`decode${name}`]!(bytes)));
      // Refusals too (an Any the node cannot name, a Duration out of range, NaN in a Struct).
      assert.deepStrictEqual(mine, want, `${name} seed ${seed}`);
      if (want.error === undefined) converted++;
    }
    assert.ok(converted > 20, `${name}: ${converted} of 150 converted`);
  }
});
