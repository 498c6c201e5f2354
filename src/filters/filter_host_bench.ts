/** Reload time of a component filter generation (read, transpile, instrument, compile,
 * instantiate, configure, swap). Goal ≤ 300 ms. Run: deno bench -A src/filters/ */
import { type FilterRef, setLogLevel } from "../core/mod.ts";
import { defaultRegistry } from "./registry.ts";
import { FilterHost } from "./filter_host.ts";
import { buildPlugin } from "./plugin_build.ts";
import { examplePath } from "../../tests/support/example_plugins.ts";

setLogLevel("warn", "filters"); // one info line per generation would drown the table
const built = await buildPlugin(examplePath("c_header_rewrite"));
const ref: FilterRef = {
  name: "bench",
  type: "weft.component",
  url: built.path,
  sha256: undefined,
  config: { value: "v" },
  failPolicy: "FAIL_CLOSE",
  phase: "UNSPECIFIED",
  priority: 0,
};
const host = new FilterHost(defaultRegistry());
await host.apply([ref]);

Deno.bench("reload one C component filter generation (forced)", { n: 30 }, async () => {
  await host.reload("bench");
});
