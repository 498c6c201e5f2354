import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { requestContext } from "../../../tests/support/filter_context.ts";
import { ComponentFilter } from "../component/component_filter.ts";
import { coreModules } from "../component/component_core.ts";
import { loadComponent, sha256Hex } from "../component/component_loader.ts";
import { FIRST_PARTY } from "../filter_types.ts";
import { faultConfigFromIstio } from "../first_party/fault_config.ts";
import { firstPartyWasm } from "../first_party/wasm_locator.ts";
import { capMemory, instrumentModule } from "./instrument.ts";
import { prebuiltCoreName, writePrebuiltCores } from "./prebuilt.ts";

Deno.test("prebuilt: capMemory on the uncapped instrumentation equals instrumenting with the cap", async () => {
  for (const name of FIRST_PARTY) {
    const core = coreModules((await firstPartyWasm(name)).bytes)![0]!;
    const uncapped = instrumentModule(core);
    const tooSmall = (e: Error & { code?: string }) => e.code === "filter_memory_cap";
    assert.throws(() => capMemory(uncapped, 1), tooSmall);
    assert.throws(() => instrumentModule(core, { maxMemoryPages: 1 }), tooSmall);
    for (const pages of [3, 17, 1024]) {
      assert.deepEqual(
        capMemory(uncapped, pages),
        instrumentModule(core, { maxMemoryPages: pages }),
        `${name} at ${pages} pages`,
      );
    }
  }
});

Deno.test("prebuilt: the loader takes the core built for the component's sha256 and still configures at load", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weft-prebuilt-" });
  try {
    const bytes = (await firstPartyWasm("fault")).bytes;
    const sha = sha256Hex(bytes);
    const [path] = await writePrebuiltCores([bytes, new Uint8Array([1, 2, 3])], dir);
    assert.equal(path, `${dir}/${prebuiltCoreName(sha)}`);
    const asked: string[] = [];
    const prebuiltCore = (s: string): Promise<Uint8Array | undefined> => {
      asked.push(s);
      try {
        return Promise.resolve(readFileSync(`${dir}/${prebuiltCoreName(s)}`));
      } catch {
        return Promise.resolve(undefined);
      }
    };
    const c = await loadComponent(bytes, { maxMemoryBytes: 1 << 20, prebuiltCore });
    assert.deepEqual(asked, [sha]);
    assert.equal(c.binding, "direct");
    const cfg = faultConfigFromIstio({ abort: { httpStatus: 418, percentage: { value: 100 } } });
    const f = await ComponentFilter.create("fault", "FAIL_CLOSE", c, cfg);
    const out = await f.onRequest(requestContext("/x"));
    assert.equal(out.action === "respond" && out.response.status, 418);
    // Configure-time validation still runs on the prebuilt core: a bad config is refused.
    await assert.rejects(
      ComponentFilter.create("fault", "FAIL_CLOSE", c, { nonsense: true }),
      (e: Error & { code?: string }) => e.code === "filter_config",
    );
    // Without a prebuilt core the loader instruments at load, as before.
    const plain = await loadComponent(bytes, {
      maxMemoryBytes: 1 << 20,
      prebuiltCore: () => Promise.resolve(undefined),
    });
    assert.equal(plain.binding, "direct");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
