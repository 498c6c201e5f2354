/**
 * The proxy-wasm host's entry in a filter registry. Its modules (loader, VMs, host functions,
 * WASI: about half of the filter layer's code) load with the first proxy-wasm filter a node
 * builds, not with the filter layer: a node running only component filters never evaluates them.
 */
import type { FilterFactory, FilterRegistry } from "../registry.ts";
import { PROXY_WASM_TYPE } from "../filter_types.ts";
import type { ProxyWasmHostOptions } from "./options.ts";

let loader: Promise<typeof import("./loader.ts")> | undefined;
/** The proxy-wasm loader, imported once (a failed import is retried by the next filter). */
function loadHost(): Promise<typeof import("./loader.ts")> {
  return loader ??= import("./loader.ts").catch((e: unknown) => {
    loader = undefined;
    throw e;
  });
}

/** The filter registry's factory for "weft.proxy_wasm" (src/filters/registry.ts fetches and
 * verifies the bytes). `options` are the host-side settings shared by every plugin it builds;
 * per-plugin overrides by filter name. */
export function proxyWasmFactory(
  options: ProxyWasmHostOptions = {},
  perPlugin: Readonly<Record<string, ProxyWasmHostOptions>> = {},
): FilterFactory {
  return {
    create: async (ref, bytes) =>
      (await loadHost()).proxyWasmFilterFromBytes(ref, bytes, {
        ...options,
        ...perPlugin[ref.name],
      }),
  };
}

/** Register the proxy-wasm host in a filter registry under "weft.proxy_wasm". */
export function registerProxyWasm(
  registry: FilterRegistry,
  options: ProxyWasmHostOptions = {},
  perPlugin: Readonly<Record<string, ProxyWasmHostOptions>> = {},
): void {
  registry.register(PROXY_WASM_TYPE, proxyWasmFactory(options, perPlugin));
}
