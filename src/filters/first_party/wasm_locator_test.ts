import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultRegistry, FIRST_PARTY, FIRST_PARTY_TYPE, FIRST_PARTY_XDS_TYPE } from "../mod.ts";
import { firstPartyWasm } from "./wasm_locator.ts";

Deno.test("first-party types are registered factories that bring their own module", () => {
  const r = defaultRegistry();
  for (const name of FIRST_PARTY) {
    for (const type of [FIRST_PARTY_TYPE[name], FIRST_PARTY_XDS_TYPE[name]]) {
      const ref = {
        name: "x",
        type,
        url: undefined,
        sha256: undefined,
        config: {},
        failPolicy: "FAIL_CLOSE" as const,
        phase: "AUTHZ" as const,
        priority: 0,
      };
      assert.equal(typeof r.factoryFor(ref).module, "function", type);
    }
  }
});

Deno.test("WEFT_PLUGIN_DIR overrides where the prebuilt plugins are read; a missing one names its path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weft-plugin-dir-" });
  try {
    Deno.env.set("WEFT_PLUGIN_DIR", dir);
    await assert.rejects(firstPartyWasm("fault"), (e: Error) => {
      assert.match(e.message, new RegExp(`cannot read ${join(dir, "fault.wasm")}`));
      return true;
    });
    await Deno.writeFile(join(dir, "fault.wasm"), new Uint8Array([0, 97, 115, 109]));
    const w = await firstPartyWasm("fault");
    assert.equal(w.source, join(dir, "fault.wasm"));
    assert.deepEqual([...w.bytes], [0, 97, 115, 109]);
  } finally {
    Deno.env.delete("WEFT_PLUGIN_DIR");
    await Deno.remove(dir, { recursive: true });
  }
});
