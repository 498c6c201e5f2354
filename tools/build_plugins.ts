// deno-lint-ignore-file no-console
/**
 * `deno task plugins`: builds the first-party plugins (plugins/authz, fault, traffic-split) into
 * plugins/<name>/build/<name>.wasm ahead of time, so the node agent only loads wasm (no compiler
 * at run time). Cached by a hash of every input (the plugin's sources and build script, the shared
 * C runtime, the C SDK, the WIT contract): an unchanged plugin is not rebuilt. Run by
 * `deno task setup` (so by `deno task test` and `deno task build`); `--force` rebuilds.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { AUTHZ_SOURCES } from "../plugins/authz/build.ts";
import { FAULT_SOURCES } from "../plugins/fault/build.ts";
import { SPLIT_SOURCES } from "../plugins/traffic-split/build.ts";
import { buildCPlugin } from "../plugins/_common/build_c_plugin.ts";
import { FIRST_PARTY, type FirstParty } from "../src/filters/mod.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

const SOURCES: Record<FirstParty, readonly string[]> = {
  authz: AUTHZ_SOURCES,
  fault: FAULT_SOURCES,
  "traffic-split": SPLIT_SOURCES,
};

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]
  ).sort();
}

/** sha256 over every input file of a plugin (path and content). */
export async function sourceHash(name: FirstParty): Promise<string> {
  const files = [
    ...filesUnder(join(ROOT, "plugins", name, "src")),
    join(ROOT, "plugins", name, "build.ts"),
    ...filesUnder(join(ROOT, "plugins/_common/c")).filter((f) => !f.includes("/test/")),
    join(ROOT, "plugins/_common/build_c_plugin.ts"),
    ...filesUnder(join(ROOT, "wasm/sdk/c")),
    join(ROOT, "wasm/filter.wit"),
  ];
  const parts = files.map((f) => `${f.slice(ROOT.length)}\u0000${readFileSync(f, "utf8")}`);
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\u0001")));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export interface FirstPartyBuild {
  readonly name: FirstParty;
  readonly path: string;
  readonly bytes: number;
  readonly cached: boolean;
}

/** Builds one plugin unless its hash file matches; publishes with renames (parallel tests). */
export async function buildFirstParty(name: FirstParty, force = false): Promise<FirstPartyBuild> {
  const outDir = join(ROOT, "plugins", name, "build");
  const path = join(outDir, `${name}.wasm`);
  const hashPath = join(outDir, `${name}.hash`);
  const hash = await sourceHash(name);
  if (!force && existsSync(path) && existsSync(hashPath)) {
    if (readFileSync(hashPath, "utf8") === hash) {
      return { name, path, bytes: readFileSync(path).length, cached: true };
    }
  }
  mkdirSync(outDir, { recursive: true });
  const tmp = Deno.makeTempDirSync({ dir: outDir, prefix: ".tmp-" });
  try {
    const out = await buildCPlugin({ name, sources: SOURCES[name], outDir: tmp });
    renameSync(out.path, path);
    Deno.writeTextFileSync(join(tmp, "hash"), hash);
    renameSync(join(tmp, "hash"), hashPath);
    return { name, path, bytes: out.bytes.length, cached: false };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export async function buildAllFirstParty(force = false): Promise<FirstPartyBuild[]> {
  const out: FirstPartyBuild[] = [];
  for (const name of FIRST_PARTY) out.push(await buildFirstParty(name, force));
  return out;
}

if (import.meta.main) {
  for (const b of await buildAllFirstParty(Deno.args.includes("--force"))) {
    console.error(`plugins: ${b.cached ? "cached" : "built"} ${b.path} (${b.bytes} bytes)`);
  }
}
