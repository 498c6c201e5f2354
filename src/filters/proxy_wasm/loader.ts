/**
 * From configuration to a running filter: fetch the module (file://, a path, or http(s)://),
 * verify its sha256, compile once per digest, check the ABI marker, and start the first VM.
 * `fromWasmPlugin` maps Istio's WasmPlugin spec onto a FilterRef (the YAML itself is read by the
 * control path).
 */
import { readFile } from "node:fs/promises";
import { filePathOf } from "../file_url.ts";
import { env, logger, WeftError } from "../../core/mod.ts";
import type { FailPolicy, FilterRef } from "../../core/mod.ts";
import { type AbiVersion, detectAbi, isPreMarkerModule } from "./abi.ts";
import { ProxyWasmFilter } from "./filter.ts";
import { type FunctionImport, functionImports } from "./module_info.ts";
import {
  optionsFromRuntime,
  type PluginSettings,
  type ProxyWasmHostOptions,
  resolveSettings,
} from "./options.ts";
import { instrumentModule } from "../sandbox/instrument.ts";
import { GuestFailure } from "./vm.ts";
import { compileCore, sha256Hex } from "../component/component_loader.ts";

import { PROXY_WASM_TYPE } from "../filter_types.ts";
export { PROXY_WASM_TYPE };

interface Compiled {
  readonly module: WebAssembly.Module;
  readonly abi: AbiVersion;
  readonly imports: readonly FunctionImport[];
}
const compiled = new Map<string, Compiled>();

/** Read module bytes from a file:// or http(s):// URL, or a plain path; check sha256. */
export async function loadWasmBytes(url: string, sha256?: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    if (/^https?:\/\//.test(url)) {
      const res = await fetch(url);
      if (!res.ok) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status}`);
      }
      bytes = new Uint8Array(await res.arrayBuffer());
    } else if (url.startsWith("file://")) bytes = await readFile(filePathOf(url));
    else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw new Error("unsupported URL scheme");
    else bytes = await readFile(url);
  } catch (e) {
    throw new WeftError("proxy_wasm_fetch", `Cannot fetch wasm module ${url}: ${String(e)}`, {
      cause: e,
      hint: "url must be file://, http(s):// or a path (oci:// is not supported)",
    });
  }
  if (sha256 !== undefined) {
    const got = sha256Hex(bytes);
    if (got !== sha256.toLowerCase()) {
      throw new WeftError(
        "proxy_wasm_sha256",
        `Cannot load wasm module ${url}: sha256 mismatch (want ${sha256}, got ${got})`,
      );
    }
  }
  return bytes;
}

/** Compile once per (digest, sandbox settings). The sandbox rewrite adds a fuel counter that
 * calls `weft:sandbox.check` (the VM traps past its per-call deadline) and clamps the memory
 * maximum, so runaway loops and growth stop inside the guest. */
async function compile(bytes: Uint8Array, settings: PluginSettings): Promise<Compiled> {
  const name = settings.name;
  const pages = Math.floor(settings.maxMemoryBytes / 65536);
  const key = `${sha256Hex(bytes)}:${settings.sandbox ? pages : "raw"}`;
  const hit = compiled.get(key);
  if (hit) return hit;
  let module: WebAssembly.Module;
  let code = bytes;
  try {
    if (settings.sandbox) code = instrumentModule(bytes, { maxMemoryPages: pages });
    module = await compileCore(code as Uint8Array<ArrayBuffer>);
  } catch (e) {
    if (e instanceof WeftError) throw e;
    throw new WeftError("proxy_wasm_compile", `Cannot compile proxy-wasm plugin ${name}: ${e}`, {
      cause: e,
    });
  }
  const exportNames = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  let abi = detectAbi(exportNames);
  if (!abi && isPreMarkerModule(exportNames)) {
    abi = "0.1.0";
    logger("proxy_wasm").warn("proxy-wasm module has no ABI marker; running it as ABI 0.1.0", {
      plugin: name,
      hint: "a pre-0.1.0 build (Envoy 1.14 / Istio 1.5 era); rebuild with a current SDK",
    });
  }
  if (!abi) {
    throw new WeftError(
      "proxy_wasm_abi",
      `Cannot load proxy-wasm plugin ${name}: missing or unknown Proxy-Wasm ABI version`,
      { hint: "the module must export proxy_abi_version_0_2_1, _0_2_0 or _0_1_0" },
    );
  }
  const c = { module, abi, imports: declaredImports(module, code) };
  compiled.set(key, c);
  return c;
}

/** Function imports with result types from the binary; if a section is beyond the small parser
 * (new proposals), fall back to the engine's list with i32 results (every proxy_* returns i32). */
function declaredImports(module: WebAssembly.Module, code: Uint8Array): FunctionImport[] {
  try {
    return functionImports(code);
  } catch {
    return WebAssembly.Module.imports(module).filter((i) => i.kind === "function").map((i) => ({
      module: i.module,
      name: i.name,
      results: ["i32"],
    }));
  }
}

/** Build a filter from its FilterRef (type "weft.proxy_wasm"; config = pluginConfig). */
export async function createProxyWasmFilter(
  ref: FilterRef,
  options: ProxyWasmHostOptions = {},
): Promise<ProxyWasmFilter> {
  if (ref.url === undefined) {
    throw new WeftError("proxy_wasm_config", `Cannot load proxy-wasm plugin ${ref.name}: no url`);
  }
  return await proxyWasmFilterFromBytes(ref, await loadWasmBytes(ref.url, ref.sha256), options);
}

/** Build a filter from module bytes the caller already fetched and verified. */
export async function proxyWasmFilterFromBytes(
  ref: FilterRef,
  bytes: Uint8Array,
  options: ProxyWasmHostOptions = {},
): Promise<ProxyWasmFilter> {
  const settings = resolveSettings(ref.name, ref.failPolicy, ref.config, {
    ...options,
    ...optionsFromRuntime(ref.runtime),
  });
  const c = await compile(bytes, settings);
  try {
    return new ProxyWasmFilter({ ...c, settings, log: logger("proxy_wasm") });
  } catch (e) {
    if (e instanceof GuestFailure) {
      throw new WeftError(
        "proxy_wasm_start",
        `Cannot start proxy-wasm plugin ${ref.name}: the VM failed during start (${e.kind}: ` +
          `${e.message})`,
        { cause: e },
      );
    }
    throw e;
  }
}

/** The WasmPlugin spec fields weft reads (Istio extensions.istio.io/v1alpha1). */
export interface WasmPluginSpec {
  /** metadata.name; the filter name unless pluginName is set. */
  readonly name: string;
  readonly url: string;
  readonly sha256?: string;
  readonly pluginName?: string;
  readonly pluginConfig?: unknown;
  readonly phase?: "AUTHN" | "AUTHZ" | "STATS" | "UNSPECIFIED_PHASE";
  readonly priority?: number;
  readonly failStrategy?: "FAIL_CLOSE" | "FAIL_OPEN" | "FAIL_RELOAD";
  readonly vmConfig?: {
    readonly env?: readonly {
      readonly name: string;
      readonly valueFrom?: "INLINE" | "HOST";
      readonly value?: string;
    }[];
  };
}

/** The host options a WasmPlugin implies: `vmConfig.env` (INLINE literal, or HOST: the proxy's
 * own variable of that name) becomes the plugin's WASI environment. */
export function hostOptionsFromWasmPlugin(spec: WasmPluginSpec): ProxyWasmHostOptions {
  const vars: Record<string, string> = {};
  for (const e of spec.vmConfig?.env ?? []) {
    const v = e.valueFrom === "HOST" ? env(e.name) : e.value;
    if (v !== undefined) vars[e.name] = v;
  }
  return { env: vars };
}

export function fromWasmPlugin(spec: WasmPluginSpec): FilterRef {
  const failPolicy: FailPolicy = spec.failStrategy ?? "FAIL_CLOSE";
  const phase = spec.phase === undefined || spec.phase === "UNSPECIFIED_PHASE"
    ? "UNSPECIFIED"
    : spec.phase;
  const opts = hostOptionsFromWasmPlugin(spec);
  return Object.freeze({
    // The filter is the WasmPlugin (metadata.name); pluginName is the root id the guest sees.
    name: spec.name,
    type: PROXY_WASM_TYPE,
    url: spec.url,
    sha256: spec.sha256,
    config: spec.pluginConfig,
    failPolicy,
    phase,
    priority: spec.priority ?? 0,
    runtime: {
      ...(spec.pluginName !== undefined ? { rootId: spec.pluginName } : {}),
      ...(opts.env !== undefined ? { env: opts.env } : {}),
    },
  });
}
