/**
 * Loads a `weft:filter/http-filter` component once per generation. A C-SDK-shaped guest (its main
 * core module imports only the host interface) is driven directly: its core module is read out of
 * the component (component_core.ts), instrumented and compiled, and jco is never loaded. Any other
 * guest (JS via componentize-qjs, Rust/Go components) is transpiled by jco in memory — jco-transpile
 * and its WASI shim (preview2-shim, which starts a worker thread: ~37 MB) are imported on the first
 * such load — and every core module is sandbox-instrumented (fuel checks, memory cap) and compiled
 * once. Instances are then cheap (`instantiate` per pool slot, each with its own host bridge).
 */
import { createHash } from "node:crypto";
import { WeftError } from "../../core/mod.ts";
import { capMemory, instrumentModule } from "../sandbox/instrument.ts";
import { embeddedPrebuiltCore } from "../sandbox/prebuilt.ts";
import type { Guest } from "./guest.ts";
import type { HostBridge } from "./host_bridge.ts";
import { instantiateDirect, isDirectEligible } from "./direct_abi.ts";
import { instantiateJco, type JcoInstantiate } from "./jco_guest.ts";
import { coreModules } from "./component_core.ts";

type Jco = typeof import("@bytecodealliance/jco-transpile");
let jco: Promise<Jco> | undefined;
/** jco-transpile, imported once by the first component that needs it (a failed import is retried
 * by the next load). */
function loadJco(): Promise<Jco> {
  return jco ??= import("@bytecodealliance/jco-transpile").catch((e: unknown) => {
    jco = undefined;
    throw e;
  });
}

const NAME = "guest";

export interface LoadOptions {
  readonly maxMemoryBytes: number;
  /** "auto" drives C-SDK-shaped guests directly, others through jco; "jco" forces jco. */
  readonly binding?: "auto" | "jco";
  /** Imports for WASI-using guests (e.g. preview2-shim), keyed like jco's instantiate wants. */
  readonly extraImports?: Record<string, unknown>;
  /** The main core module already instrumented without a memory cap, by the component's sha256
   * (default: the ones embedded in the single binary at build time, sandbox/prebuilt.ts). */
  readonly prebuiltCore?: (sha256: string) => Promise<Uint8Array | undefined>;
}

export interface LoadedComponent {
  readonly binding: "direct" | "jco";
  readonly sha256: string;
  instantiate(bridge: HostBridge): Promise<Guest>;
}

/** Lower-case hex sha256 of `bytes`, through node:crypto: a node whose certificates are issued
 * with node:crypto (src/tls) then never maps WebCrypto's code for a filter load (~0.7 MB of Bun's
 * own code in an idle node, bench:idle). No JS loop over the digest either: such loops, run when
 * the filter layer loads after start-up, crossed JavaScriptCore's optimizing thresholds before
 * (DFG compiles of `next` and `map` with BUN_JSC_reportDFGCompileTimes=1). */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Loaded components by (sha256, memory cap, binding): a loaded component holds no per-instance
 * state, so every filter and generation with identical bytes shares one compiled module (on an
 * xDS node every HTTP service carries its own filter of the same plugin). Held weakly: a module
 * lives as long as a generation uses it. Loads with their own imports or prebuilt lookup are not
 * shared. */
const shared = new Map<string, WeakRef<LoadedComponent> | Promise<LoadedComponent>>();
const forget = new FinalizationRegistry<string>((key) => {
  const v = shared.get(key);
  if (v instanceof WeakRef && v.deref() === undefined) shared.delete(key);
});

/** How many components were compiled (not taken from the shared cache); for tests. */
export let componentsCompiled = 0;

export async function loadComponent(
  bytes: Uint8Array,
  opts: LoadOptions,
): Promise<LoadedComponent> {
  const sha256 = sha256Hex(bytes);
  if (opts.extraImports || opts.prebuiltCore) return await compileComponent(bytes, sha256, opts);
  const key = `${sha256}:${opts.maxMemoryBytes}:${opts.binding ?? "auto"}`;
  const hit = shared.get(key);
  const ready = hit instanceof WeakRef ? hit.deref() : undefined;
  if (ready) return ready;
  if (hit instanceof Promise) return await hit;
  const p = compileComponent(bytes, sha256, opts);
  shared.set(key, p);
  try {
    const c = await p;
    shared.set(key, new WeakRef(c));
    forget.register(c, key);
    return c;
  } catch (e) {
    shared.delete(key);
    throw e;
  }
}

async function compileComponent(
  bytes: Uint8Array,
  sha256: string,
  opts: LoadOptions,
): Promise<LoadedComponent> {
  componentsCompiled++;
  const maxMemoryPages = Math.max(1, Math.floor(opts.maxMemoryBytes / 65536));
  const auto = (opts.binding ?? "auto") === "auto";
  const prebuilt = auto ? await (opts.prebuiltCore ?? embeddedPrebuiltCore)(sha256) : undefined;
  const first = auto ? await compileFirstCore(bytes, maxMemoryPages, prebuilt) : undefined;
  if (first && isDirectEligible(first.module)) {
    const main = first.module;
    return {
      binding: "direct",
      sha256,
      instantiate: (b) => Promise.resolve(instantiateDirect(main, b)),
    };
  }
  let files: Record<string, Uint8Array>;
  try {
    const { transpileBytes } = await loadJco();
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
  const modules = new Map<string, WebAssembly.Module>();
  for (const [name, data] of Object.entries(files)) {
    if (!name.endsWith(".wasm")) continue;
    // The first core module was compiled above already when jco left it unchanged.
    const reuse = name === `${NAME}.core.wasm` && first && sameBytes(first.bytes, data);
    modules.set(
      name,
      reuse ? first.module : await compileCore(instrumentModule(data, { maxMemoryPages })),
    );
  }
  const main = modules.get(`${NAME}.core.wasm`);
  if (!main) throw new WeftError("filter_load", "Cannot load filter component: no core module");
  if (auto && isDirectEligible(main)) {
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

/** The component's first core module (jco's `<name>.core.wasm`), instrumented (or taken
 * `prebuilt` and capped) and compiled; undefined when it cannot be read or compiled here (jco then
 * reads the component and reports the error). */
async function compileFirstCore(
  bytes: Uint8Array,
  maxMemoryPages: number,
  prebuilt: Uint8Array | undefined,
): Promise<{ bytes: Uint8Array; module: WebAssembly.Module } | undefined> {
  const core = coreModules(bytes)?.[0];
  if (!core) return undefined;
  try {
    const sandboxed = prebuilt
      ? capMemory(prebuilt, maxMemoryPages)
      : instrumentModule(core, { maxMemoryPages });
    return { bytes: core, module: await compileCore(sandboxed) };
  } catch {
    return undefined;
  }
}

/** Core modules up to this size compile synchronously. */
export const SYNC_COMPILE_MAX_BYTES = 64 * 1024;

/**
 * Compiles a sandboxed core module. A small one (the first-party cores are ~45 KB: 1–5 ms) compiles
 * on the calling thread: on Bun, WebAssembly.compile hands even those to JavaScriptCore's wasm
 * compiler thread, whose start and per-thread allocator pages stayed resident in an idle node
 * (bench:idle, binary with the three first-party filters: 49.1 → 48.8 MB, two alternated rounds).
 * Larger modules compile off the event loop, so a live reload does not stall requests.
 */
export function compileCore(bytes: Uint8Array<ArrayBuffer>): Promise<WebAssembly.Module> {
  if (bytes.length > SYNC_COMPILE_MAX_BYTES) return WebAssembly.compile(bytes);
  try {
    return Promise.resolve(new WebAssembly.Module(bytes));
  } catch (e) {
    return Promise.reject(e);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}
