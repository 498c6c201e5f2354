import assert from "node:assert/strict";
import { requestContext } from "../../../tests/support/filter_context.ts";
import { ComponentFilter } from "./component_filter.ts";
import * as loader from "./component_loader.ts";
import { faultConfigFromIstio } from "../first_party/fault_config.ts";
import { firstPartyWasm } from "../first_party/wasm_locator.ts";
import { coreModules } from "./component_core.ts";
import { instrumentModule } from "../sandbox/instrument.ts";
import { FilterHost } from "../filter_host.ts";
import { defaultRegistry } from "../registry.ts";
import { FIRST_PARTY_TYPE } from "../filter_types.ts";
import { DEFAULT_SANDBOX } from "./sandbox_options.ts";
import { type FilterRef, setLogSink } from "../../core/mod.ts";

const abort = (status: number) =>
  faultConfigFromIstio({ abort: { httpStatus: status, percentage: { value: 100 } } });

Deno.test("loader: identical bytes share one compiled component; filters on it keep their own config", async () => {
  const bytes = (await firstPartyWasm("fault")).bytes;
  const cap = 3 << 20; // a cap no other test uses, so the first load here compiles
  const before = loader.componentsCompiled;
  const [a, b] = await Promise.all([
    loader.loadComponent(bytes, { maxMemoryBytes: cap }),
    loader.loadComponent(bytes.slice(), { maxMemoryBytes: cap }),
  ]);
  const c = await loader.loadComponent(bytes.slice(), { maxMemoryBytes: cap });
  assert.equal(a, b);
  assert.equal(a, c);
  assert.equal(loader.componentsCompiled - before, 1);
  // Another memory cap is another compiled module.
  const d = await loader.loadComponent(bytes, { maxMemoryBytes: cap + 65536 });
  assert.notEqual(d, a);
  assert.equal(loader.componentsCompiled - before, 2);
  // Two filters (two services, or two generations) on the shared module: separate instances.
  const f418 = await ComponentFilter.create("f418", "FAIL_CLOSE", a, abort(418));
  const f503 = await ComponentFilter.create("f503", "FAIL_CLOSE", c, abort(503));
  const status = async (f: ComponentFilter) => {
    const o = await f.onRequest(requestContext("/x"));
    return o.action === "respond" ? o.response.status : o.action;
  };
  assert.equal(await status(f418), 418);
  assert.equal(await status(f503), 503);
  assert.equal(await status(f418), 418);
  // A config the guest refuses is still refused on a shared module.
  await assert.rejects(
    ComponentFilter.create("bad", "FAIL_CLOSE", a, { nonsense: true }),
    (e: Error & { code?: string }) => e.code === "filter_config",
  );
});

Deno.test("compileCore: small modules compile on the spot, larger ones off the event loop; both reject bad bytes", async () => {
  // The first-party cores are in the synchronous range (the figure in compileCore's comment).
  for (const name of ["authz", "fault", "traffic-split"] as const) {
    const core = coreModules((await firstPartyWasm(name)).bytes)![0]!;
    assert.ok(instrumentModule(core).length <= loader.SYNC_COMPILE_MAX_BYTES, name);
  }
  const small = instrumentModule(coreModules((await firstPartyWasm("fault")).bytes)![0]!);
  const m = await loader.compileCore(small);
  assert.ok(WebAssembly.Module.exports(m).some((e) => e.name === "memory"));
  // A module past the limit: the fault core and a 64 KiB custom section (size, name "x", payload).
  const pad = new Uint8Array(loader.SYNC_COMPILE_MAX_BYTES);
  const big = new Uint8Array([...small, 0, 0x80, 0x80, 0x04, 1, 0x78, ...pad.subarray(0, 65534)]);
  assert.ok(big.length > loader.SYNC_COMPILE_MAX_BYTES);
  const mb = await loader.compileCore(big);
  assert.deepEqual(WebAssembly.Module.exports(mb), WebAssembly.Module.exports(m));
  // Bad bytes are a rejected promise on both paths, never a synchronous throw.
  const badSmall = small.slice(0, small.length - 3);
  const p1 = loader.compileCore(badSmall);
  await assert.rejects(p1);
  const badBig = big.slice();
  badBig[4] = 9; // version
  await assert.rejects(loader.compileCore(badBig));
});

Deno.test("hot reload on a shared module: new generations reuse it; a refused config fails the apply before serving and the last generation keeps answering", async () => {
  const h = new FilterHost(defaultRegistry({ ...DEFAULT_SANDBOX, maxMemoryBytes: 5 << 20 }));
  const restore = setLogSink(() => {});
  const ref = (status: number, config: unknown = abort(status)): FilterRef => ({
    name: "fault",
    scope: "reload-test",
    type: FIRST_PARTY_TYPE.fault,
    url: undefined,
    sha256: undefined,
    config,
    failPolicy: "FAIL_CLOSE",
    phase: "UNSPECIFIED",
    priority: 0,
  });
  const status = async (r: FilterRef): Promise<number | string> => {
    const f = h.resolve(r);
    const ctx = requestContext("/x");
    const o = await f.onRequest(ctx);
    f.onDone?.(ctx);
    return o.action === "respond" ? o.response.status : o.action;
  };
  try {
    const g1 = ref(418);
    await h.apply([g1]);
    const compiled = loader.componentsCompiled;
    assert.equal(await status(g1), 418);
    const g2 = ref(503);
    await h.apply([g2]);
    assert.equal(h.get("fault", "reload-test")?.generation, 2);
    assert.equal(await status(g2), 503);
    assert.equal(loader.componentsCompiled, compiled, "generation 2 reused the compiled module");
    // The guest refuses this config when its first instance is configured, inside apply.
    await assert.rejects(h.apply([ref(0, { nonsense: true })]), /Cannot configure filter fault/);
    assert.equal(h.get("fault", "reload-test")?.generation, 2);
    assert.equal(await status(g2), 503, "the last good generation keeps serving");
    // A forced reload (same bytes) is a third generation on the same module.
    await h.reload("fault", { force: true });
    assert.equal(h.get("fault", "reload-test")?.generation, 3);
    assert.equal(await status(g2), 503);
    assert.equal(loader.componentsCompiled, compiled);
  } finally {
    h.close();
    restore();
  }
});
