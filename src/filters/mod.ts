/**
 * The L7 filter host: loads WebAssembly component filters (`weft:filter@0.1.0`, wasm/) with jco,
 * sandboxes them (time budget, memory cap), pools instances, applies fail policies, hot-reloads
 * generations, and maps FilterRef.type to implementations (registry, filter_types.ts: the one
 * table of type names; the first-party plugins register factories that load their prebuilt
 * wasm). The plugin build (clang, componentize) is a developer tool: it loads only through
 * `loadPluginBuilder()`, never on the node agent's path.
 * May import: src/core (through core/mod.ts) only.
 */
export {
  COMPONENT_TYPE,
  componentFactory,
  defaultRegistry,
  fetchModule,
  FilterRegistry,
} from "./registry.ts";
export type { FilterFactory } from "./registry.ts";
export {
  FIRST_PARTY,
  FIRST_PARTY_TYPE,
  FIRST_PARTY_XDS_TYPE,
  firstPartyOf,
} from "./filter_types.ts";
export type { FirstParty } from "./filter_types.ts";
export { EXT_AUTHZ_TYPE, EXT_AUTHZ_XDS_TYPE } from "./filter_types.ts";
export { registerExtAuthz } from "./ext_authz/register.ts";
export { extAuthzConfig, extAuthzConfigFromXds } from "./ext_authz/config.ts";
export type { ExtAuthzFilterConfig } from "./ext_authz/config.ts";
export { firstPartyWasm } from "./first_party/wasm_locator.ts";
export type { LocatedWasm } from "./first_party/wasm_locator.ts";
export { FilterHost, ManagedFilter } from "./filter_host.ts";
export type { ReloadResult } from "./filter_host.ts";
export { watchFilters } from "./watcher.ts";
export type { FilterWatcher, WatchEvent } from "./watcher.ts";
export { ComponentFilter, DEFAULT_SANDBOX } from "./component/component_filter.ts";
export type { SandboxOptions } from "./component/component_filter.ts";
export { loadComponent } from "./component/component_loader.ts";
export type { LoadedComponent } from "./component/component_loader.ts";
export { filterMetrics } from "./filter_metrics.ts";
export {
  DEFAULT_FUEL,
  instrumentModule,
  SANDBOX_CHECK_NAME,
  SANDBOX_IMPORT_MODULE,
} from "./sandbox/instrument.ts";
export type { InstrumentOptions } from "./sandbox/instrument.ts";
export { writePrebuiltCores } from "./sandbox/prebuilt.ts";
export type { BuiltPlugin, PluginManifest } from "./plugin_build.ts";
/** The plugin builder (clang, componentize-qjs, jco's wasm-tools), loaded on demand. */
export function loadPluginBuilder(): Promise<typeof import("./plugin_build.ts")> {
  return import("./plugin_build.ts");
}
// The proxy-wasm host itself loads with the first proxy-wasm filter (proxy_wasm/register.ts).
export { proxyWasmFactory, registerProxyWasm } from "./proxy_wasm/register.ts";
export { JWT_AUTHN_TYPE, PROXY_WASM_TYPE } from "./filter_types.ts";
export type { ProxyWasmHostOptions } from "./proxy_wasm/options.ts";
export type { WasmPluginSpec } from "./proxy_wasm/loader.ts";
export { scaffoldPlugin } from "./scaffold.ts";
export type { PluginLang } from "./scaffold.ts";
export * from "./first_party/mod.ts";
// The jwt_authn filter's verifier, for the control plane's service-account tokens (src/app
// wires it into src/xds, which may not import this layer).
export { parseJwt, signatureProblem, timeProblem } from "./jwt/jwt_verify.ts";
export { type Jwks, parseJwks } from "./jwt/jwks.ts";
