/**
 * Sandboxed core modules prepared at build time. Instrumenting a core module (instrument.ts) walks
 * every instruction in JS. With a call per byte, ~130 KB of first-party code was hot enough for
 * JavaScriptCore to compile the walker with its optimizing tiers (DFG, FTL), mapping ~4 MB of
 * compiler code into an idle node; walkExpr now decodes inline and stays in the lower tiers
 * (bench:idle: the three plugins as third-party builds, instrumented at load, 52.9 → 49.0 MB, as
 * prebuilt). The single `weft` binary still embeds, for each first-party plugin, its main core
 * module already instrumented without a memory cap (`deno task build`, tools/build.ts), named by
 * the sha256 of the component it came from: no walk at all at load. The loader applies the
 * configured memory cap (a rewrite of the memory section only: `capMemory`) and compiles it. Any
 * other component, or a plugin replaced through WEFT_PLUGIN_DIR (another sha256), is instrumented
 * at load.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { coreModules } from "../component/component_core.ts";
import { instrumentModule } from "./instrument.ts";

interface EmbeddedBlob extends Blob {
  readonly name: string;
}

/** The embedded file's name for the component whose sha256 (hex) is `sha256`. */
export function prebuiltCoreName(sha256: string): string {
  return `weft-sandboxed-${sha256.slice(0, 32)}.wasm`;
}

/** The prebuilt sandboxed main core module of the component `sha256`, when this binary embeds
 * one (never outside the single binary). */
export async function embeddedPrebuiltCore(sha256: string): Promise<Uint8Array | undefined> {
  const files = (globalThis as { Bun?: { embeddedFiles?: readonly EmbeddedBlob[] } }).Bun
    ?.embeddedFiles;
  const name = prebuiltCoreName(sha256);
  const blob = files?.find((f) => f.name === name);
  return blob ? new Uint8Array(await blob.arrayBuffer()) : undefined;
}

/** Build time: writes each component's main core module, instrumented without a memory cap,
 * into `dir` under prebuiltCoreName; returns the paths (to embed in the binary). A component
 * without a readable core module is skipped (it is instrumented at load). */
export async function writePrebuiltCores(
  components: readonly Uint8Array[],
  dir: string,
): Promise<string[]> {
  const out: string[] = [];
  for (const bytes of components) {
    const core = coreModules(bytes)?.[0];
    if (!core) continue;
    const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
    const sha = [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
    const path = join(dir, prebuiltCoreName(sha));
    writeFileSync(path, instrumentModule(core));
    out.push(path);
  }
  return out;
}
