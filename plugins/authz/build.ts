/** Builds plugins/authz/build/authz.wasm (run: deno run -A plugins/authz/build.ts). */
import process from "node:process";
import { buildCPlugin, type CPluginArtifact } from "../_common/build_c_plugin.ts";

export const AUTHZ_SOURCES = ["authz_config.c", "authz_eval.c", "authz_plugin.c"] as const;

export function buildAuthz(): Promise<CPluginArtifact> {
  return buildCPlugin({ name: "authz", sources: AUTHZ_SOURCES });
}

if (import.meta.main) {
  const out = await buildAuthz();
  process.stdout.write(`${out.path} (${out.bytes.length} bytes)\n`);
}
