/**
 * Builds a first-party C plugin into a `weft:filter/http-filter@0.1.0` component: clang
 * (wasm32-unknown-unknown, freestanding) → componentEmbed(wasm/filter.wit) → componentNew.
 * Used by each plugin's build.ts (`deno task plugin:build plugins/<name>`), and by the plugins'
 * tests so they always run the wasm built from the sources in the repo.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { componentEmbed, componentNew } from "@bytecodealliance/jco-transpile/wasm-tools";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const COMMON_C = ["weft_rt.c", "json.c", "cfg.c", "match.c", "regex.c", "sdk_glue.c"];

export interface CPluginBuild {
  /** Plugin name = folder under plugins/ and output file name. */
  readonly name: string;
  /** Sources relative to plugins/<name>/src. */
  readonly sources: readonly string[];
}

export interface CPluginArtifact {
  readonly path: string;
  readonly bytes: Uint8Array;
}

/** Compiles and componentizes; writes plugins/<name>/build/<name>.wasm and returns it. */
export async function buildCPlugin(spec: CPluginBuild): Promise<CPluginArtifact> {
  const dir = join(REPO, "plugins", spec.name);
  const outDir = join(dir, "build");
  mkdirSync(outDir, { recursive: true });
  const core = join(outDir, `${spec.name}.core.wasm`);
  const sdk = join(REPO, "wasm/sdk/c");
  const args = [
    "--target=wasm32-unknown-unknown",
    "-O2",
    "-nostdlib",
    "-mbulk-memory",
    "-ffreestanding",
    "-fno-builtin-malloc",
    "-Wall",
    "-Werror",
    "-Wl,--no-entry",
    "-Wl,--export-dynamic",
    "-Wl,--strip-all",
    "-I",
    sdk,
    "-I",
    join(REPO, "plugins/_common/c"),
    join(sdk, "weft_filter.c"),
    ...COMMON_C.map((f) => join(REPO, "plugins/_common/c", f)),
    ...spec.sources.map((f) => join(dir, "src", f)),
    "-o",
    core,
  ];
  execFileSync("clang", args, { stdio: ["ignore", "inherit", "inherit"] });
  const witSource = readFileSync(join(REPO, "wasm/filter.wit"), "utf8");
  const embedded = await componentEmbed({
    binary: new Uint8Array(readFileSync(core)),
    witSource,
    world: "http-filter",
  });
  const bytes = await componentNew(embedded);
  const path = join(outDir, `${spec.name}.wasm`);
  writeFileSync(path, bytes);
  return { path, bytes };
}
