// deno-lint-ignore-file no-console
/**
 * Builds a plugin folder (plugins/examples/<x>, scaffolded plugins) into a component from its
 * sources, cached by a hash of every input in `<dir>/build/`:
 * - `plugin.json` {"name", "lang": "c", "sources": [...]}: clang (wasm32, freestanding) with the
 *   C SDK (wasm/sdk/c) → componentEmbed(wasm/filter.wit, world http-filter) → componentNew.
 * - `plugin.json` with "lang": "js": componentize-qjs when installed (see wasm/README.md).
 * - no plugin.json but a build.ts: runs it (first-party plugins own their builds).
 * CLI: `deno task plugin:build <dir>`.
 */
import process from "node:process";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { env, runtimeName, WeftError } from "../core/mod.ts";
import { sha256Hex } from "./component/component_loader.ts";

export const REPO_ROOT: string = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** The checkout, or (in the `weft` binary) the embedded WIT and C SDK (`weft-sdk.bin`, a JSON
 * {path: text} made by tools/build.ts) written out to a temp dir. */
async function sdkRoot(): Promise<string> {
  if (existsSync(join(REPO_ROOT, "wasm/filter.wit"))) return REPO_ROOT;
  type Embedded = Blob & { name: string };
  const blob = (globalThis as { Bun?: { embeddedFiles?: readonly Embedded[] } }).Bun
    ?.embeddedFiles?.find((e) => e.name === "weft-sdk.bin");
  if (!blob) return REPO_ROOT; // reads fail naming the checkout's paths
  const root = join(tmpdir(), `weft-sdk-${process.pid}`);
  for (
    const [rel, text] of Object.entries(JSON.parse(await blob.text()) as Record<string, string>)
  ) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
  process.once("exit", () => rmSync(root, { recursive: true, force: true }));
  return root;
}
const SDK_ROOT = await sdkRoot();
export const WIT_PATH: string = join(SDK_ROOT, "wasm/filter.wit");
/** weft:filter@0.2.0 (body phases); a plugin opts in with `"wit": "0.2.0"` in plugin.json. */
export const WIT_V2_PATH: string = join(SDK_ROOT, "wasm/filter_0_2_0.wit");
/** weft:filter@0.3.0 (bodies and trailers); `"wit": "0.3.0"` in plugin.json. */
export const WIT_V3_PATH: string = join(SDK_ROOT, "wasm/filter_0_3_0.wit");

function witOf(m: PluginManifest): string {
  return m.wit === "0.3.0" ? WIT_V3_PATH : m.wit === "0.2.0" ? WIT_V2_PATH : WIT_PATH;
}
const SDK_C = join(SDK_ROOT, "wasm/sdk/c");
const C_FLAGS = [
  "--target=wasm32-unknown-unknown",
  "-O2",
  "-nostdlib",
  "-ffreestanding",
  "-mbulk-memory",
  "-Wall",
  "-Werror",
  "-Wl,--no-entry",
  "-Wl,--export-dynamic",
  "-Wl,--strip-all",
];

export interface PluginManifest {
  readonly name: string;
  readonly lang: "c" | "js";
  readonly sources: readonly string[];
  /** The world version: "0.1.0" (default), "0.2.0" (body phases) or "0.3.0" (and trailers). */
  readonly wit?: "0.1.0" | "0.2.0" | "0.3.0";
}

export interface BuiltPlugin {
  readonly name: string;
  readonly path: string;
  readonly bytes: Uint8Array;
  readonly cached: boolean;
}

export function readManifest(dir: string): PluginManifest {
  const raw = JSON.parse(readFileSync(join(dir, "plugin.json"), "utf8")) as Partial<PluginManifest>;
  const problems: string[] = [];
  if (typeof raw.name !== "string" || !/^[a-z0-9_-]+$/.test(raw.name)) {
    problems.push("name: must match [a-z0-9_-]+");
  }
  if (raw.lang !== "c" && raw.lang !== "js") problems.push('lang: must be "c" or "js"');
  if (!Array.isArray(raw.sources) || raw.sources.length === 0) {
    problems.push("sources: must list files");
  }
  if (raw.wit !== undefined && !["0.1.0", "0.2.0", "0.3.0"].includes(raw.wit as string)) {
    problems.push('wit: must be "0.1.0", "0.2.0" or "0.3.0"');
  }
  if (problems.length) {
    throw new WeftError(
      "plugin_manifest",
      `Cannot read ${join(dir, "plugin.json")}: ${problems.join("; ")}`,
    );
  }
  return Object.freeze(raw as PluginManifest);
}

/** PATH without node_modules/.bin: `deno task` puts it first, and clang -O2 for wasm runs any
 * `wasm-opt` on PATH — binaryen's npm wasm-opt rejects bulk-memory ops without extra flags. */
function toolPath(): string {
  return (env("PATH") ?? "").split(":").filter((p) => !p.includes("node_modules/.bin")).join(":");
}

function run(cmd: string, args: string[], cwd: string): Promise<void> {
  return new Promise((ok, fail) => {
    const opts = { cwd, maxBuffer: 4 << 20, env: { ...process.env, PATH: toolPath() } };
    execFile(cmd, args, opts, (err, _out, stderr) => {
      if (err) {
        fail(
          new WeftError(
            "plugin_build",
            `Cannot build plugin: ${cmd} failed: ${stderr || err.message}`,
          ),
        );
      } else ok();
    });
  });
}

/** Every input that decides the output, hashed: sources, SDK, WIT, flags. */
function inputHash(dir: string, m: PluginManifest): string {
  const parts: string[] = [JSON.stringify(m), C_FLAGS.join(" "), readFileSync(witOf(m), "utf8")];
  for (const s of m.sources) parts.push(readFileSync(join(dir, s), "utf8"));
  if (m.lang === "c") {
    for (const f of ["weft_filter.c", "weft_filter.h"]) {
      parts.push(readFileSync(join(SDK_C, f), "utf8"));
    }
  }
  return sha256Hex(new TextEncoder().encode(parts.join("\u0000")));
}

export async function buildPlugin(
  dir: string,
  opts: { force?: boolean } = {},
): Promise<BuiltPlugin> {
  dir = resolve(dir);
  if (!existsSync(join(dir, "plugin.json")) && existsSync(join(dir, "build.ts"))) {
    // Plugin build scripts are Deno scripts; on Bun, use the `deno` on PATH.
    const deno = runtimeName === "deno" ? Deno.execPath() : "deno";
    await run(deno, ["run", "-A", join(dir, "build.ts")], REPO_ROOT);
    const name = dir.split("/").pop()!;
    const path = join(dir, "build", `${name}.wasm`);
    return { name, path, bytes: readFileSync(path), cached: false };
  }
  const m = readManifest(dir);
  const outDir = join(dir, "build");
  const path = join(outDir, `${m.name}.wasm`);
  const hashPath = join(outDir, `${m.name}.hash`);
  const hash = inputHash(dir, m);
  if (
    !opts.force && existsSync(path) && existsSync(hashPath) &&
    readFileSync(hashPath, "utf8") === hash
  ) {
    return { name: m.name, path, bytes: readFileSync(path), cached: true };
  }
  mkdirSync(outDir, { recursive: true });
  const bytes = m.lang === "c" ? await buildC(dir, m, outDir) : await buildJs(dir, m, outDir);
  // Parallel test processes may build the same plugin: publish with atomic renames.
  atomicWrite(path, bytes);
  atomicWrite(hashPath, new TextEncoder().encode(hash));
  return { name: m.name, path, bytes, cached: false };
}

function atomicWrite(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

async function buildC(dir: string, m: PluginManifest, outDir: string): Promise<Uint8Array> {
  const core = join(outDir, `${m.name}.${crypto.randomUUID()}.core.wasm`);
  await run("clang", [
    ...C_FLAGS,
    ...(m.wit === "0.2.0" ? ["-DWEFT_FILTER_V2"] : m.wit === "0.3.0" ? ["-DWEFT_FILTER_V3"] : []),
    "-I",
    SDK_C,
    join(SDK_C, "weft_filter.c"),
    ...m.sources.map((s) => join(dir, s)),
    "-o",
    core,
  ], dir);
  try {
    return await componentize(readFileSync(core), witOf(m));
  } finally {
    rmSync(core, { force: true });
  }
}

/** Core module (imports weft:filter/host, exports the handler) → component. */
export async function componentize(core: Uint8Array, wit = WIT_PATH): Promise<Uint8Array> {
  const witSource = readFileSync(wit, "utf8");
  try {
    // jco's wasm-tools (and the WASI shim it runs on) load when a plugin is first componentized.
    const { componentEmbed, componentNew } = await import(
      "@bytecodealliance/jco-transpile/wasm-tools"
    );
    const embedded = await componentEmbed({ binary: core, witSource, world: "http-filter" });
    return await componentNew(embedded);
  } catch (e) {
    throw new WeftError("plugin_build", `Cannot componentize plugin: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/** componentize-qjs: $WEFT_COMPONENTIZE_QJS, node_modules/.bin, .weft/tools (where `deno task
 * setup` installs it with npm: it cannot be added through `deno add`), or PATH. */
export function componentizeQjsPath(): string | undefined {
  const fromEnv = env("WEFT_COMPONENTIZE_QJS");
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  for (
    const rel of [
      "node_modules/.bin/componentize-qjs",
      ".weft/tools/node_modules/.bin/componentize-qjs",
    ]
  ) {
    const local = join(REPO_ROOT, rel);
    if (existsSync(local)) return local;
  }
  for (const dir of (env("PATH") ?? "").split(":")) {
    if (dir && existsSync(join(dir, "componentize-qjs"))) return join(dir, "componentize-qjs");
  }
  return undefined;
}

async function buildJs(dir: string, m: PluginManifest, outDir: string): Promise<Uint8Array> {
  const out = join(outDir, `${m.name}.${crypto.randomUUID()}.js.wasm`);
  const bin = componentizeQjsPath();
  if (!bin) {
    throw new WeftError(
      "plugin_build",
      "Cannot build JS plugin: componentize-qjs is not installed",
      {
        hint:
          "npm i componentize-qjs@0.4.5 somewhere and set WEFT_COMPONENTIZE_QJS (wasm/README.md)",
      },
    );
  }
  // --stub-wasi: filters get no WASI (clocks, randomness come from the host interface);
  // --sync: no component-model async ABI, so hooks stay plain synchronous calls.
  const args = ["--wit", witOf(m), "--world", "http-filter", "--js", join(dir, m.sources[0]!)];
  await run(bin, [...args, "--stub-wasi", "--sync", "-o", out], dir);
  try {
    return readFileSync(out);
  } finally {
    rmSync(out, { force: true });
  }
}

if (import.meta.main) {
  const dir = Deno.args[0];
  if (!dir) {
    console.error("usage: deno task plugin:build <plugin dir>");
    Deno.exit(2);
  }
  const b = await buildPlugin(dir, { force: Deno.args.includes("--force") });
  console.log(`${b.cached ? "cached" : "built"} ${b.path} (${b.bytes.length} bytes)`);
}
