import assert from "node:assert/strict";
import { requestContext } from "../../../tests/support/filter_context.ts";
import { ComponentFilter } from "./component_filter.ts";
import * as loader from "./component_loader.ts";
import { faultConfigFromIstio } from "../first_party/fault_config.ts";
import { firstPartyWasm } from "../first_party/wasm_locator.ts";

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
