/** Builds plugins/traffic-split/build/traffic-split.wasm (deno run -A plugins/traffic-split/build.ts). */
import process from "node:process";
import { buildCPlugin, type CPluginArtifact } from "../_common/build_c_plugin.ts";

export const SPLIT_SOURCES = ["split_config.c", "split_eval.c", "split_plugin.c"] as const;

export function buildTrafficSplit(): Promise<CPluginArtifact> {
  return buildCPlugin({ name: "traffic-split", sources: SPLIT_SOURCES });
}

if (import.meta.main) {
  const out = await buildTrafficSplit();
  process.stdout.write(`${out.path} (${out.bytes.length} bytes)\n`);
}
