/**
 * Builds a first-party C plugin into a `weft:filter/http-filter@0.1.0` component: clang
 * (wasm32-unknown-unknown, freestanding) → the filter host's `componentize` (componentEmbed with
 * wasm/filter.wit, then componentNew).
 * Used by each plugin's build.ts (`deno task plugin:build plugins/<name>`), and by the plugins'
 * tests so they always run the wasm built from the sources in the repo.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { componentize } from "../../src/filters/plugin_build.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const COMMON_C = [
  "weft_rt.c",
  "json.c",
  "cfg.c",
  "match.c",
  "regex.c",
  "regex_parse.c",
  "sdk_glue.c",
  "counters.c",
];

export interface CPluginBuild {
  /** Plugin name = folder under plugins/ and output file name. */
  readonly name: string;
  /** Sources relative to plugins/<name>/src. */
  readonly sources: readonly string[];
  /** Where to write; default plugins/<name>/build. Tests use a private directory so parallel
   * test processes never read each other's half-written files. */
  readonly outDir?: string;
}

export interface CPluginArtifact {
  readonly path: string;
  readonly bytes: Uint8Array;
}

/** Compiles and componentizes; writes plugins/<name>/build/<name>.wasm and returns it. */
export async function buildCPlugin(spec: CPluginBuild): Promise<CPluginArtifact> {
  const dir = join(REPO, "plugins", spec.name);
  const outDir = spec.outDir ?? join(dir, "build");
  mkdirSync(outDir, { recursive: true });
  const core = join(outDir, `${spec.name}.core.wasm`);
  const sdk = join(REPO, "wasm/sdk/c");
  const args = [
    "--target=wasm32-unknown-unknown",
    // -O3 with LTO: the evaluators inline across the runtime/match/plugin files (authz hook
    // 1.45 -> 1.29 us allowed, same run; plugins/authz/authz_breakdown.ts).
    "-O3",
    "-flto",
    "-nostdlib",
    "-mbulk-memory",
    "-ffreestanding",
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
  // clang -O2 for wasm runs any `wasm-opt` on PATH; `deno task` puts node_modules/.bin first,
  // whose binaryen wasm-opt rejects bulk-memory ops without extra flags. Build without it.
  const binPath = (process.env.PATH ?? "").split(":").filter((p) =>
    !p.includes("node_modules/.bin")
  );
  execFileSync("clang", args, {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, PATH: binPath.join(":") },
  });
  const bytes = await componentize(new Uint8Array(readFileSync(core)));
  const path = join(outDir, `${spec.name}.wasm`);
  writeFileSync(path, bytes);
  return { path, bytes };
}
