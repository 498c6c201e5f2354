// deno-lint-ignore-file no-console
/**
 * `deno task build [--outfile weft]`: the single `weft` executable. Builds the first-party
 * plugins (cached), then Bun's bundler with `compile` (tools/bun_compile.ts) bundles src/main.ts
 * with every lazily imported module and embeds the three plugin .wasm files (Bun.embeddedFiles,
 * found by name by src/filters/first_party/wasm_locator.ts), with build info defined at bundle
 * time.
 * `deno compile` is not used: it downloads its runtime (denort) from a host these machines
 * cannot reach, while Bun's runtime ships in its npm package.
 */
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildAllFirstParty } from "./build_plugins.ts";
import { writePrebuiltCores } from "../src/filters/mod.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** bun on PATH, or the one `deno task setup` installs into .weft/tools. */
export function bunPath(): string {
  const local = join(ROOT, ".weft/tools/node_modules/.bin/bun");
  if (existsSync(local)) return local;
  const r = spawnSync("sh", ["-c", "command -v bun"], { encoding: "utf8" });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  throw new Error("Cannot build: bun is not installed (run `deno task setup` or npm i -g bun)");
}

export function git(args: string[]): string {
  const r = spawnSync("git", args, { cwd: ROOT, encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : "";
}

/** Files jco-transpile and its WASI shim open beside themselves (`new URL("./x",
 * import.meta.url)`), which the bundler leaves alone: embedded under the same names at the
 * bundle's root, where those URLs point in the binary. The shim's worker is bundled as an entry. */
function jcoAssets(): string[] {
  const pkg = (name: string): string => {
    const dir = join(ROOT, "node_modules", name);
    return existsSync(dir) ? realpathSync(dir) : dir;
  };
  const jco = join(pkg("@bytecodealliance/jco-transpile"), "vendor");
  const shim = join(
    realpathSync(join(pkg("@bytecodealliance/jco-transpile"), "..", "..")),
    "@bytecodealliance/preview2-shim/dist/io/worker-thread.bundle.js",
  );
  const files = [
    ...["js-component-bindgen-component", "wasm-tools"].flatMap((n) => [
      join(jco, `${n}.core.wasm`),
      join(jco, `${n}.core2.wasm`),
    ]),
    shim,
  ];
  for (const f of files) {
    if (!existsSync(f)) throw new Error(`Cannot build: ${f} is missing (run deno install)`);
  }
  return files;
}

/** The WIT and C SDK as one JSON file (`weft-sdk.bin`: the bundler would treat .c/.h entry
 * points as code), unpacked by src/filters/plugin_build.ts when `weft plugin build` runs. */
function sdkBundle(): string {
  const files = [
    "wasm/filter.wit",
    "wasm/filter_0_2_0.wit",
    "wasm/filter_0_3_0.wit",
    "wasm/sdk/c/weft_filter.c",
    "wasm/sdk/c/weft_filter.h",
  ];
  const dir = join(ROOT, ".weft", "build");
  mkdirSync(dir, { recursive: true });
  const out = join(dir, "weft-sdk.bin");
  const sdk = Object.fromEntries(files.map((f) => [f, readFileSync(join(ROOT, f), "utf8")]));
  writeFileSync(out, JSON.stringify(sdk));
  return out;
}

export interface BuiltBinary {
  readonly path: string;
  readonly bytes: number;
  readonly commit: string;
}

/** `buildDate` defaults to $SOURCE_DATE_EPOCH, else now; a fixed date makes the same sources
 * give the same binary (tools/image.ts uses the commit's date, so its cache hits). */
export async function buildBinary(
  outfile = join(ROOT, "weft"),
  opts: { buildDate?: string | undefined } = {},
): Promise<BuiltBinary> {
  const plugins = await buildAllFirstParty();
  // Their main core modules sandbox-instrumented now, not at every node's start
  // (src/filters/sandbox/prebuilt.ts).
  const prebuiltDir = join(ROOT, ".weft", "build", "prebuilt");
  rmSync(prebuiltDir, { recursive: true, force: true });
  mkdirSync(prebuiltDir, { recursive: true });
  const prebuilt = await writePrebuiltCores(plugins.map((p) => readFileSync(p.path)), prebuiltDir);
  const version = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version as string;
  const dirty = git(["status", "--porcelain", "--untracked-files=no"]) !== "";
  const commit = (git(["rev-parse", "--short=12", "HEAD"]) || "unknown") + (dirty ? "-dirty" : "");
  const epoch = Deno.env.get("SOURCE_DATE_EPOCH");
  const date = opts.buildDate ??
    (epoch ? new Date(Number(epoch) * 1000) : new Date()).toISOString().replace(/\.\d+Z$/, "Z");
  const info = { version, commit, buildDate: date };
  const spec = {
    entry: join(ROOT, "src/main.ts"),
    // + the WIT and C SDK, so `weft plugin build` works from the binary (with clang installed).
    assets: [...plugins.map((p) => p.path), ...prebuilt, ...jcoAssets(), sdkBundle()],
    outfile,
    define: { "globalThis.WEFT_BUILD_INFO": JSON.stringify(info) },
  };
  const r = spawnSync(bunPath(), [join(ROOT, "tools/bun_compile.ts"), JSON.stringify(spec)], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (r.status !== 0) throw new Error(`Cannot build: Bun.build (compile) exited ${r.status}`);
  return { path: outfile, bytes: statSync(outfile).size, commit };
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--outfile");
  const out = i >= 0 && Deno.args[i + 1] ? resolve(Deno.args[i + 1]!) : undefined;
  const b = await buildBinary(out);
  console.error(`build: ${b.path} (${(b.bytes / 1e6).toFixed(1)} MB, commit ${b.commit})`);
}
