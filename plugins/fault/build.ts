/** Builds plugins/fault/build/fault.wasm (deno run -A plugins/fault/build.ts). */
import process from "node:process";
import { buildCPlugin, type CPluginArtifact } from "../_common/build_c_plugin.ts";

export const FAULT_SOURCES = ["fault_config.c", "fault_eval.c", "fault_plugin.c"] as const;

export function buildFault(): Promise<CPluginArtifact> {
  return buildCPlugin({ name: "fault", sources: FAULT_SOURCES });
}

if (import.meta.main) {
  const out = await buildFault();
  process.stdout.write(`${out.path} (${out.bytes.length} bytes)\n`);
}
