/**
 * Where the running agent finds the prebuilt first-party plugins (`deno task plugins` builds
 * them; nothing here compiles). In order:
 *  1. `$WEFT_PLUGIN_DIR/<name>.wasm` (an operator's override);
 *  2. embedded in the single `weft` binary (`bun build --compile` with the .wasm files as extra
 *     entry points: Bun.embeddedFiles);
 *  3. beside the executable: `<dir of weft>/plugins/<name>.wasm`;
 *  4. the checkout's build output: `plugins/<name>/build/<name>.wasm`.
 */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import process from "node:process";
import { filePathOf } from "../file_url.ts";
import { env, WeftError } from "../../core/mod.ts";
import type { FirstParty } from "../filter_types.ts";

export interface LocatedWasm {
  readonly bytes: Uint8Array;
  /** Where it came from: a path, or `embedded:<name>.wasm`. */
  readonly source: string;
}

interface EmbeddedBlob extends Blob {
  readonly name: string;
}

function embedded(file: string): EmbeddedBlob | undefined {
  const files = (globalThis as { Bun?: { embeddedFiles?: readonly EmbeddedBlob[] } }).Bun
    ?.embeddedFiles;
  return files?.find((f) => f.name === file);
}

function candidates(name: FirstParty): string[] {
  const file = `${name}.wasm`;
  const out: string[] = [];
  const dir = env("WEFT_PLUGIN_DIR");
  if (dir) out.push(join(dir, file));
  out.push(join(dirname(process.execPath), "plugins", file));
  // Only meaningful in a checkout: in a compiled binary import.meta.url is a virtual path.
  if (import.meta.url.startsWith("file:")) {
    const repo = join(dirname(filePathOf(import.meta.url)), "..", "..", "..");
    out.push(join(repo, "plugins", name, "build", file));
  }
  return out;
}

const cache = new Map<FirstParty, Promise<LocatedWasm>>();

/** The prebuilt module of a first-party plugin (read once per process). */
export function firstPartyWasm(name: FirstParty): Promise<LocatedWasm> {
  let p = cache.get(name);
  if (!p) {
    p = locate(name);
    cache.set(name, p);
    p.catch(() => cache.delete(name)); // a later load may find a freshly built file
  }
  return p;
}

async function locate(name: FirstParty): Promise<LocatedWasm> {
  const paths = candidates(name);
  const override = env("WEFT_PLUGIN_DIR") ? paths.shift() : undefined;
  if (override) return { bytes: await readOrThrow(name, override), source: override };
  const blob = embedded(`${name}.wasm`);
  if (blob) {
    return { bytes: new Uint8Array(await blob.arrayBuffer()), source: `embedded:${blob.name}` };
  }
  for (const p of paths) {
    try {
      return { bytes: new Uint8Array(await readFile(p)), source: p };
    } catch { /* next candidate */ }
  }
  throw new WeftError(
    "filter_fetch",
    `Cannot load first-party plugin ${name}: no ${name}.wasm in ${paths.join(", ")}`,
    { hint: "build the plugins with `deno task plugins`, or set WEFT_PLUGIN_DIR" },
  );
}

async function readOrThrow(name: FirstParty, path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw new WeftError(
      "filter_fetch",
      `Cannot load first-party plugin ${name}: cannot read ${path}`,
      {
        cause: e,
        hint: "WEFT_PLUGIN_DIR must hold authz.wasm, fault.wasm and traffic-split.wasm",
      },
    );
  }
}
