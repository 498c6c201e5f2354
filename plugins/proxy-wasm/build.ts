/**
 * Builds the proxy-wasm example filters into plugins/proxy-wasm/build/ (git-ignored):
 * - add-header, auth-check: AssemblyScript 0.17 + @solo-io/proxy-runtime 0.1.8, installed from
 *   npm into plugins/proxy-wasm/node_modules by `npm ci` (separate from the root package.json:
 *   the runtime only builds with assemblyscript 0.17.x).
 * - c-add-header: C against the ABI directly, clang --target=wasm32-unknown-unknown.
 * Outputs are cached by a hash of their inputs. `deno task plugins:proxy-wasm`.
 * Tests also use `buildCModule` to compile small C test modules from source.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";

export const PW_DIR: string = dirname(fileURLToPath(import.meta.url));
export const BUILD_DIR: string = join(PW_DIR, "build");
const ASC = join(PW_DIR, "node_modules/assemblyscript/bin/asc");

function run(cmd: string, args: string[], cwd: string): Promise<void> {
  return new Promise((ok, fail) => {
    execFile(cmd, args, { cwd, maxBuffer: 16 << 20 }, (err, _out, stderr) => {
      if (err) {
        fail(
          new Error(
            `${cmd} ${args.join(" ")} failed: ${stderr || err.message}`,
          ),
        );
      } else ok();
    });
  });
}

function hashOf(files: readonly string[], extra: readonly string[]): string {
  const h = createHash("sha256");
  for (const f of files) h.update(f).update(readFileSync(f));
  for (const e of extra) h.update(e);
  return h.digest("hex");
}

/** Rebuild `out` only when the hash of its inputs changed; write atomically (tests build in
 * parallel). */
async function cached(
  out: string,
  inputs: readonly string[],
  extra: readonly string[],
  build: (tmp: string) => Promise<void>,
): Promise<string> {
  mkdirSync(dirname(out), { recursive: true });
  const hash = hashOf(inputs, extra);
  const stamp = `${out}.inputs`;
  if (
    existsSync(out) && existsSync(stamp) && readFileSync(stamp, "utf8") === hash
  ) return out;
  const tmp = `${out}.${process.pid}.${Date.now()}.tmp`;
  await build(tmp);
  renameSync(tmp, out);
  writeFileSync(stamp, hash);
  return out;
}

const C_FLAGS = [
  "--target=wasm32-unknown-unknown",
  "-O2",
  "-nostdlib",
  "-ffreestanding",
  "-Wall",
  "-Werror",
  "-Wl,--no-entry",
  "-Wl,--export-dynamic",
  "-Wl,--strip-all",
];

/** Compile a freestanding C proxy-wasm module; `defines` become -D flags. Extra `-Wl,` flags
 * (e.g. --allow-undefined for modules importing functions by name) go in `flags`. */
export function buildCModule(
  source: string,
  out: string,
  opts: { defines?: readonly string[]; flags?: readonly string[] } = {},
): Promise<string> {
  const src = resolve(source);
  const args = [
    ...C_FLAGS,
    ...(opts.flags ?? []),
    ...(opts.defines ?? []).map((d) => `-D${d}`),
    "-I",
    join(PW_DIR, "c-add-header"),
  ];
  const header = join(PW_DIR, "c-add-header/proxy_wasm_abi.h");
  return cached(
    out,
    [src, header],
    args,
    (tmp) => run("clang", [...args, "-o", tmp, src], PW_DIR),
  );
}

/** `npm ci` once, even when several test processes ask at the same time (a directory is the
 * cross-process lock; the others wait for the toolchain to appear). */
async function ensureNpmDeps(): Promise<void> {
  if (existsSync(ASC)) return;
  const lock = join(PW_DIR, ".npm-ci.lock");
  try {
    mkdirSync(lock);
  } catch {
    const deadline = Date.now() + 300_000;
    while (!existsSync(ASC) || existsSync(lock)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for npm ci (${lock})`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return;
  }
  try {
    await run("npm", ["ci", "--no-audit", "--no-fund"], PW_DIR);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

async function buildAssemblyScript(name: string): Promise<string> {
  await ensureNpmDeps();
  const entry = join(PW_DIR, name, "assembly/index.ts");
  const inputs = [
    entry,
    join(PW_DIR, "common/config.ts"),
    join(PW_DIR, "package-lock.json"),
  ];
  const args = [
    "-b",
    "",
    "--use",
    "abort=abort_proc_exit",
    "-O3",
    "--noColors",
  ];
  const out = join(BUILD_DIR, `${name.replace(/-/g, "_")}.wasm`);
  return await cached(out, inputs, args, (tmp) => {
    const a = [...args];
    a[1] = tmp;
    return run("node", [ASC, entry, ...a], PW_DIR);
  });
}

export interface ProxyWasmBuild {
  readonly addHeader: string;
  readonly authCheck: string;
  readonly cAddHeader: string;
}

/** Build all three examples (cached); returns the .wasm paths. */
export async function buildProxyWasmPlugins(): Promise<ProxyWasmBuild> {
  const addHeader = await buildAssemblyScript("add-header");
  const authCheck = await buildAssemblyScript("auth-check");
  const cAddHeader = await buildCModule(
    join(PW_DIR, "c-add-header/add_header.c"),
    join(BUILD_DIR, "c_add_header.wasm"),
  );
  return { addHeader, authCheck, cAddHeader };
}

if (import.meta.main) {
  const built = await buildProxyWasmPlugins();
  for (const p of Object.values(built)) process.stdout.write(`${p}\n`);
}
