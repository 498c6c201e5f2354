/**
 * Cost of one host import call from a C guest through the direct binding: a guest
 * (testdata/host_calls) makes N calls of one import per hook; one call costs
 * (N-call hook - 0-call hook) / N. Run: deno bench -A src/filters/component/host_call_bench.ts
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { requestContext } from "../../../tests/support/filter_context.ts";
import { buildPlugin } from "../plugin_build.ts";
import { loadComponent } from "./component_loader.ts";
import { HostBridge } from "./host_bridge.ts";
import type { Guest } from "./guest.ts";

const N = 16;
// Built in a scratch copy: buildPlugin writes <dir>/build/, which must not land in src/.
const src = join(dirname(fileURLToPath(import.meta.url)), "testdata/host_calls");
const scratch = await Deno.makeTempDir({ prefix: "weft-host-calls-" });
for (const f of ["plugin.json", "filter.c"]) await Deno.copyFile(join(src, f), join(scratch, f));
const built = await buildPlugin(scratch).finally(() => Deno.remove(scratch, { recursive: true }));
const component = await loadComponent(built.bytes, { maxMemoryBytes: 64 << 20, binding: "auto" });
const ctx = requestContext("/bench", [["user-agent", "bench"], ["accept", "*/*"]]);

async function guestFor(op: string, n: number): Promise<{ guest: Guest; bridge: HostBridge }> {
  const bridge = new HostBridge("host-call-bench", 20_000);
  const guest = await component.instantiate(bridge);
  bridge.begin(undefined, undefined, 1e12, 0);
  guest.configure(new TextEncoder().encode(`${op}${n}`));
  bridge.end();
  return { guest, bridge };
}

function bench(label: string, g: { guest: Guest; bridge: HostBridge }, baseline = false): void {
  Deno.bench(label, { group: "host-call", baseline }, () => {
    g.bridge.begin(ctx, undefined, 1e12, 0);
    g.guest.onRequestHeaders();
    g.bridge.end();
  });
}

bench("hook with 0 host calls (floor)", await guestFor("n", 0), true);
bench(`hook with ${N} x get-property(request.method)`, await guestFor("p", N));
bench(`hook with ${N} x get-header(user-agent)`, await guestFor("h", N));
bench(`hook with ${N} x counter-add`, await guestFor("c", N));
bench(`hook with ${N} x set-header`, await guestFor("s", N));
