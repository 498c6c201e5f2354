/**
 * Loads a `weft:filter/http-filter@0.1.0` component once per generation: jco transpiles it in
 * memory, every core module is sandbox-instrumented (fuel checks, memory cap) and compiled once;
 * instances are then cheap (`instantiate` per pool slot, each with its own host bridge).
 */
import { transpileBytes } from "@bytecodealliance/jco-transpile";
import { WeftError } from "../../core/mod.ts";
import { instrumentModule } from "../sandbox/instrument.ts";
import type { Guest } from "./guest.ts";
import type { HostBridge } from "./host_bridge.ts";
import { instantiateDirect, isDirectEligible } from "./direct_abi.ts";
import { instantiateJco, type JcoInstantiate } from "./jco_guest.ts";

const NAME = "guest";

export interface LoadOptions {
  readonly maxMemoryBytes: number;
  /** "auto" drives C-SDK-shaped guests directly, others through jco; "jco" forces jco. */
  readonly binding?: "auto" | "jco";
  /** Imports for WASI-using guests (e.g. preview2-shim), keyed like jco's instantiate wants. */
  readonly extraImports?: Record<string, unknown>;
}

export interface LoadedComponent {
  readonly binding: "direct" | "jco";
  readonly sha256: string;
  instantiate(bridge: HostBridge): Promise<Guest>;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function loadComponent(
  bytes: Uint8Array,
  opts: LoadOptions,
): Promise<LoadedComponent> {
  const sha256 = await sha256Hex(bytes);
  let files: Record<string, Uint8Array>;
  try {
    ({ files } = await transpileBytes(bytes, {
      name: NAME,
      instantiation: "async",
      emitTypescriptDeclarations: false,
    }));
  } catch (e) {
    throw new WeftError("filter_load", `Cannot load filter component: ${(e as Error).message}`, {
      cause: e,
      hint: "build it against wasm/filter.wit (world http-filter)",
    });
  }
  const maxMemoryPages = Math.max(1, Math.floor(opts.maxMemoryBytes / 65536));
  const modules = new Map<string, WebAssembly.Module>();
  for (const [name, data] of Object.entries(files)) {
    if (!name.endsWith(".wasm")) continue;
    modules.set(name, await WebAssembly.compile(instrumentModule(data, { maxMemoryPages })));
  }
  const main = modules.get(`${NAME}.core.wasm`);
  if (!main) throw new WeftError("filter_load", "Cannot load filter component: no core module");
  if ((opts.binding ?? "auto") === "auto" && isDirectEligible(main)) {
    return {
      binding: "direct",
      sha256,
      instantiate: (b) => Promise.resolve(instantiateDirect(main, b)),
    };
  }
  const js = files[`${NAME}.js`];
  if (!js) throw new WeftError("filter_load", "Cannot load filter component: jco produced no JS");
  const url = `data:text/javascript;base64,${toBase64(js)}`;
  const mod = await import(url) as { instantiate: JcoInstantiate };
  const extra = opts.extraImports ?? {};
  return {
    binding: "jco",
    sha256,
    instantiate: (b) => instantiateJco(mod.instantiate, modules, extra, b),
  };
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}
