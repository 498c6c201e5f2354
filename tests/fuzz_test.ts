/**
 * The fuzz suite, bounded for `deno task test`: every decoder of untrusted bytes (HTTP/1.1 head
 * and chunked body, HTTP/2 frames and HPACK, SOCKS5, xDS resources, weft.yaml) gets a short
 * deterministic run (fixed seed); no input may throw anything but the decoder's own refusal, hang,
 * or grow memory without bound. `deno task fuzz --seconds N [--target name]` runs longer.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { fuzz } from "../tools/fuzz/engine.ts";
import { allTargets } from "../tools/fuzz/targets.ts";

const SECONDS = 0.6;

Deno.test("fuzz: decoders of untrusted bytes hold under mutated input (bounded run)", async () => {
  for (const t of await allTargets()) {
    const r = await fuzz(t, { seconds: SECONDS, seed: 20261206, perInputMs: 1000 });
    assert(r.executions > 20, `${t.name}: only ${r.executions} executions`);
    assertEquals(r.findings, [], `${t.name}: ${JSON.stringify(r.findings, null, 1)}`);
  }
});

Deno.test("fuzz: the engine reports a planted throw, a hang and is deterministic per seed", async () => {
  const planted = {
    name: "planted",
    corpus: () => [new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")],
    run: (input: Uint8Array): Promise<void> | void => {
      if (input.includes(0x00)) throw new TypeError("planted bug");
      if (input.includes(0xff)) return new Promise<void>(() => {}); // never settles
    },
    expected: () => false,
  };
  // A loaded box makes fewer inputs in 0.3 s: run again (next seed) until both were planted in
  // some run, bounded at 20 runs.
  const kinds = new Set<string>();
  const seen: unknown[] = [];
  for (let seed = 3; seed < 23 && !(kinds.has("throw") && kinds.has("hang")); seed++) {
    const a = await fuzz(planted, { seconds: 0.3, seed, perInputMs: 20 });
    for (const f of a.findings) kinds.add(f.kind);
    seen.push(...a.findings.map((f) => f.kind));
  }
  assert(kinds.has("throw") && kinds.has("hang"), JSON.stringify(seen));
  const { mutate, prng } = await import("../tools/fuzz/engine.ts");
  const base = new TextEncoder().encode("abc");
  const r1 = prng(9), r2 = prng(9);
  assertEquals(mutate(base, r1, [base], [], 64), mutate(base, r2, [base], [], 64));
});
