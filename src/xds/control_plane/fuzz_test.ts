/**
 * Seeded fuzzing of the whole config path the control plane runs on an edit: manifests mutated at
 * random (types swapped, huge and non-finite numbers, deep nesting, junk keys, removed fields)
 * either load or fail with a WeftError listing problems; nothing else may escape, and whatever
 * loads must encode.
 */
import assert from "node:assert/strict";
import { WeftError } from "../../core/mod.ts";
import { meshYaml } from "../_test_fixtures.ts";
import { loadAll } from "js-yaml";
import { buildNode } from "./build.ts";
import { parseMeshSources } from "./mesh.ts";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 0x1_0000_0000;
  };
}

const JUNK: unknown[] = [
  null,
  "",
  "UNAVAILABLE",
  -1,
  0,
  1e300,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  2 ** 53,
  true,
  [],
  {},
  [[[[[[[[1]]]]]]]],
  { __proto__: { polluted: true } },
  "x".repeat(10_000),
  "10.0.0.0/99",
  "1h30m",
  "-5s",
];

function mutate(v: unknown, r: () => number, depth = 0): unknown {
  if (r() < 0.005) return JUNK[Math.floor(r() * JUNK.length)];
  if (Array.isArray(v)) return v.map((x) => mutate(x, r, depth + 1));
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (r() < 0.003) continue; // a field removed
      out[r() < 0.002 ? `${k}x` : k] = mutate(x, r, depth + 1);
    }
    return out;
  }
  return v;
}

Deno.test("fuzz: mutated manifests load or fail with every problem, never throw anything else", () => {
  const base = loadAll(meshYaml(10)) as unknown[];
  let loaded = 0, rejected = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const r = rng(seed);
    const docs = base.map((d) => mutate(d, r));
    const text = docs.map((d) => JSON.stringify(d)).join("\n---\n");
    try {
      buildNode(parseMeshSources([{ file: `fuzz-${seed}.yaml`, text }]), "node-a");
      loaded++;
    } catch (err) {
      assert.ok(err instanceof WeftError, `seed ${seed}: ${err}`);
      assert.match(err.message, /fuzz-\d+\.yaml#\d|Cannot load mesh/);
      rejected++;
    }
  }
  assert.ok(loaded > 0 && rejected > 0, `loaded ${loaded}, rejected ${rejected}`);
});
