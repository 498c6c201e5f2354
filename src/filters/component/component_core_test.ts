import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { FIRST_PARTY } from "../filter_types.ts";
import { firstPartyWasm } from "../first_party/wasm_locator.ts";
import { coreModules } from "./component_core.ts";

const PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
const component = (...sections: number[][]): Uint8Array =>
  new Uint8Array([...PREAMBLE, ...sections.flat()]);
const PROBE = fileURLToPath(new URL("./testdata/jco_probe.ts", import.meta.url));

Deno.test("coreModules: the top-level core module sections of a well-framed component, in order", () => {
  const a = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0];
  const got = coreModules(component([0, 2, 1, 0x78], [1, a.length, ...a], [7, 1, 0], [1, 0]));
  assert.deepEqual(got?.map((m) => [...m]), [a, []]);
  assert.deepEqual(coreModules(component()), []);
});

Deno.test("coreModules: anything not framed as a component is left to jco (undefined)", () => {
  const bad: [string, Uint8Array][] = [
    ["a core module", new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])],
    ["text", new TextEncoder().encode("not a component")],
    ["a section past the end", component([1, 5, 0, 0])],
    ["an unknown section id", component([12, 0])],
    ["a size without its end", component([1, 0x80])],
    ["a size over 32 bits", component([1, 0xff, 0xff, 0xff, 0xff, 0x7f])],
  ];
  for (const [what, bytes] of bad) assert.equal(coreModules(bytes), undefined, what);
});

for (const runtime of ["deno", "bun"] as const) {
  Deno.test({
    name:
      `first-party components load on ${runtime} without jco: no WASI worker thread started until a component needs jco`,
    ignore: runtime === "bun" && !hasBun(),
    fn: async () => {
      const paths = await Promise.all(
        FIRST_PARTY.map(async (n) => (await firstPartyWasm(n)).source),
      );
      assert.ok(paths.every((p) => existsSync(p)), "the plugins are built (deno task plugins)");
      const args = runtime === "deno" ? ["run", "-A", PROBE, ...paths] : [PROBE, ...paths];
      const out = await new Deno.Command(runtime === "deno" ? Deno.execPath() : "bun", {
        args,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.ok(out.success, `${text}${new TextDecoder().decode(out.stderr)}`);
      const r = JSON.parse(text.trim().split("\n").at(-1)!) as {
        bindings: string[];
        afterDirect: number;
        forced: string;
        afterJco: number;
        sameCore: boolean[];
        errorsAfterDirect: number;
      };
      assert.deepEqual(r.bindings, ["direct", "direct", "direct"]);
      assert.equal(r.afterDirect, 0, "a worker thread started before any component needed jco");
      assert.equal(r.errorsAfterDirect, 0);
      // The probe sees the worker: the same load forced through jco starts it.
      assert.equal(r.forced, "jco");
      assert.ok(r.afterJco > 0, "jco's worker thread was not seen after a jco load");
      assert.deepEqual(
        r.sameCore,
        [true, true, true],
        "jco's <name>.core.wasm is the first module",
      );
    },
  });
}

function hasBun(): boolean {
  try {
    return new Deno.Command("bun", { args: ["--version"], stdout: "null" }).outputSync().success;
  } catch {
    return false;
  }
}
