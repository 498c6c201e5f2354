/**
 * `weft plugin new <name> [--lang c|js] [--dir plugins]` scaffolds a filter on the weft:filter world;
 * `weft plugin build <dir>` builds one (same as `deno task plugin:build <dir>`).
 */
import { errorMessage } from "../core/mod.ts";
import { loadPluginBuilder, scaffoldPlugin } from "../filters/mod.ts";
import type { PluginLang } from "../filters/mod.ts";
import type { Flags } from "./cli.ts";
import { out } from "./out.ts";

export async function runPluginCmd(f: Flags): Promise<number> {
  const [sub, arg] = f.positional;
  try {
    if (sub === "new" && arg) {
      const lang = (f.values.get("lang") ?? "c") as PluginLang;
      const root = scaffoldPlugin(arg, lang, f.values.get("dir") ?? "plugins");
      out.line(`created ${root} (${lang}); build it with: weft plugin build ${root}`);
      out.line(`wire it in: add it to a service's plugins in weft.yaml (see ${root}/README.md)`);
      return 0;
    }
    if (sub === "build" && arg) {
      const { buildPlugin } = await loadPluginBuilder();
      const b = await buildPlugin(arg, { force: f.switches.has("force") });
      out.line(`${b.path} (${b.bytes.length} bytes${b.cached ? ", cached" : ""})`);
      return 0;
    }
  } catch (err) {
    out.err(errorMessage(err));
    return 1;
  }
  out.err(
    "usage: weft plugin new <name> [--lang c|js] [--dir plugins] | weft plugin build <dir> [--force]",
  );
  return 2;
}
