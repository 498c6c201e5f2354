/**
 * Per-call overhead of a header-phase hook (C guest), direct binding vs jco bindings, plus the
 * raw guest call without pool/metrics. Run: deno bench -A src/filters/component/
 */
import { requestContext } from "../../../tests/support/filter_context.ts";
import { exampleFilter } from "../../../tests/support/example_plugins.ts";

const direct = await exampleFilter("c_faulty");
const jco = await exampleFilter("c_faulty", {}, { binding: "jco" });
const rewrite = await exampleFilter("c_header_rewrite", { header: "x-a", value: "b" });
const ctx = requestContext("/bench", Array.from({ length: 20 }, (_, i) => [`h${i}`, `v${i}`]));

Deno.bench("C guest, direct binding: on-request-headers (get-property + set-header)", () => {
  direct.onRequest(ctx);
});
Deno.bench("C guest, jco-transpile 0.7 bindings: same hook", () => {
  jco.onRequest(ctx);
});
Deno.bench(
  "C guest, direct: header rewrite (set, remove, get-property, set-state, counter)",
  () => {
    rewrite.onRequest(ctx);
  },
);

// The guest call alone (no pool, metrics or clock): what the binding itself costs.
const bare = await (await import("../../../tests/support/example_plugins.ts")).loadExample(
  "c_faulty",
);
const { HostBridge } = await import("./host_bridge.ts");
const bridge = new HostBridge("bare", 20_000);
const guest = await bare.instantiate(bridge);
guest.configure(new TextEncoder().encode("{}"));
Deno.bench("C guest, direct binding, bare guest call (no pool/metrics/clock)", () => {
  bridge.begin(ctx, undefined, 1e12, 0);
  guest.onRequestHeaders();
  bridge.end();
});

// JS guest (componentize-qjs, through jco's bindings) when the tool is available.
const { componentizeQjsPath } = await import("../plugin_build.ts");
if (componentizeQjsPath()) {
  const js = await exampleFilter("js_header_rewrite", { value: "b" });
  Deno.bench("JS guest (componentize-qjs --sync, jco 0.7 bindings): on-request-headers", () => {
    js.onRequest(ctx);
  });
}
