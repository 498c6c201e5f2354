/**
 * proxy-wasm host: runs existing Envoy/Istio proxy-wasm filters (ABI 0.2.1, 0.2.0, 0.1.0) as
 * weft `HttpFilter`s. Owns: module loading and ABI checks, VMs and contexts, the host functions,
 * WASI, trap recovery. May import: src/core (through its mod.ts), and within src/filters the
 * sandbox instrumentation and the registry's types.
 */
export {
  createProxyWasmFilter,
  fromWasmPlugin,
  hostOptionsFromWasmPlugin,
  loadWasmBytes,
  PROXY_WASM_TYPE,
  proxyWasmFilterFromBytes,
  type WasmPluginSpec,
} from "./loader.ts";
export { proxyWasmFactory, registerProxyWasm } from "./register.ts";
export { ProxyWasmFilter } from "./filter.ts";
export type { ProxyWasmHostOptions } from "./options.ts";
export { decodePairs, encodePairs, Status } from "./abi.ts";
