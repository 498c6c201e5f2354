/**
 * HTTP filter configs (inline `typed_config` or an ECDS `TypedExtensionConfig`) → weft FilterRefs.
 * Known types: RBAC → the authz plugin, HTTPFault → the fault plugin, Wasm → a component or
 * proxy-wasm filter by URL + sha256, jwt_authn (istiod's shape, resources/jwt_authn.ts) → the
 * host's jwt_authn filter, ExtAuthz → the ext_authz filter (ext_authz.ts), Router → end of chain,
 * Cors → nothing at the listener (its policies ride on routes: route_cors.ts). TypedStruct
 * wrappers are unwrapped.
 */
import type { FilterRef, FilterRuntime } from "../../core/mod.ts";
import { checkFilterConfig, env, errorMessage, WeftError } from "../../core/mod.ts";
import {
  type Any,
  decodeCors,
  decodeHTTPFault,
  decodeRBAC,
  decodeRouter,
  decodeStringValue,
  decodeTypedStruct,
  decodeUdpaTypedStruct,
  decodeWasm,
  toJsonHTTPFault,
  toJsonRBAC,
  TYPE_NAMES,
  typeUrlOf,
  unpackAs,
  type Wasm,
} from "../node_proto.ts";
import type { FilterJson, JsonValue, KnownFilter } from "./filter_json.ts";
import { decodeJwtAuthn, JWT_AUTHN_TYPE_URL } from "./jwt_authn.ts";
import { EXT_AUTHZ_TYPE_URL, extAuthzRef } from "./ext_authz.ts";

/** FilterRef.type values weft's filter host registers (src/filters maps them to code). */
export const FILTER_TYPES = {
  authz: "weft.authz",
  fault: "weft.fault",
  trafficSplit: "weft.traffic_split",
  component: "weft.component",
  proxyWasm: "weft.proxy_wasm",
  jwtAuthn: "weft.jwt_authn",
} as const;

/** `vm_config.runtime` naming a WIT component instead of a proxy-wasm module. */
export const COMPONENT_RUNTIME = "weft.component";

export type FilterSpec =
  | { readonly kind: "router" }
  /** Envoy's cors filter: it acts through the route's CorsPolicy, which the route carries. */
  | { readonly kind: "cors" }
  | { readonly kind: "filter"; readonly ref: FilterRef };

const KNOWN: readonly string[] = [
  TYPE_NAMES.rbac,
  TYPE_NAMES.fault,
  TYPE_NAMES.wasm,
  TYPE_NAMES.router,
  TYPE_NAMES.cors,
];

/** Wrappers whose configs are read from JSON, which needs protobuf-es's JSON mapping and the
 * wrapped type's schema (filter_json.ts). RBAC and HTTPFault sent as themselves become proto3 JSON
 * through the generated codec (toJsonRBAC, toJsonHTTPFault) without it. */
/** Filter type names whose configs are checked by src/filters (loaded lazily, before the ACK). */
export { JWT_AUTHN_TYPE_NAME } from "./jwt_authn.ts";

export const TYPED_STRUCT_TYPE_NAMES: readonly string[] = [
  TYPE_NAMES.typedStruct,
  TYPE_NAMES.udpaTypedStruct,
];

let filterJson: FilterJson | undefined;

/** Load protobuf-es with the RBAC/HTTPFault/Wasm/Router schemas (~14 MB with its descriptors, so
 * a node loads it only for a config that needs it: client.ts awaits this before decoding a
 * response whose bytes name a TypedStruct). */
export async function loadFilterJson(): Promise<void> {
  filterJson ??= (await import("./filter_json.ts")).FILTER_JSON;
}

function json(): FilterJson {
  if (!filterJson) throw new Error("the filter JSON mapping was not loaded (loadFilterJson)");
  return filterJson;
}

function unwrapTypedStruct(any: Any): { typeUrl: string; json: JsonValue } | undefined {
  const decode = any.typeUrl === typeUrlOf(TYPE_NAMES.typedStruct)
    ? decodeTypedStruct
    : any.typeUrl === typeUrlOf(TYPE_NAMES.udpaTypedStruct)
    ? decodeUdpaTypedStruct
    : undefined;
  if (!decode) return undefined;
  const ts = decode(any.value);
  return { typeUrl: ts.typeUrl, json: ts.value ?? {} };
}

function decodeKnown(any: Any): KnownFilter {
  const wrapped = unwrapTypedStruct(any);
  for (const typeName of KNOWN) {
    if (wrapped && wrapped.typeUrl === typeUrlOf(typeName)) {
      try {
        return json().fromTypedStruct(typeName, wrapped.json);
      } catch (cause) {
        throw new WeftError("xds_bad_filter", `Cannot decode ${typeName}: ${cause}`);
      }
    }
    if (any.typeUrl !== typeUrlOf(typeName)) continue;
    if (typeName === TYPE_NAMES.router) {
      unpackAs(any, typeName, decodeRouter);
      return { typeName };
    }
    if (typeName === TYPE_NAMES.cors) {
      unpackAs(any, typeName, decodeCors);
      return { typeName };
    }
    if (typeName === TYPE_NAMES.wasm) {
      return { typeName, msg: unpackAs(any, typeName, decodeWasm) };
    }
    return typeName === TYPE_NAMES.rbac
      ? { typeName, config: toJsonRBAC(unpackAs(any, typeName, decodeRBAC)) }
      : { typeName, config: toJsonHTTPFault(unpackAs(any, typeName, decodeHTTPFault)) };
  }
  throw new WeftError(
    "xds_unknown_filter",
    `Cannot use HTTP filter: unsupported config type ${wrapped?.typeUrl ?? any.typeUrl}`,
  );
}

function wasmRef(name: string, msg: Wasm): FilterRef {
  const cfg = msg.config;
  const vm = cfg?.vm.case === "vmConfig" ? cfg.vm.value : undefined;
  const code = vm?.code?.specifier;
  let url: string | undefined;
  let sha256: string | undefined;
  if (code?.case === "remote") {
    url = code.value.httpUri?.uri;
    sha256 = code.value.sha256 || undefined;
  } else if (code?.case === "local" && code.value.specifier.case === "filename") {
    const f = code.value.specifier.value;
    url = f.includes("://") ? f : `file://${f}`;
  }
  if (!url || !/^(file|https?|oci):\/\//.test(url)) {
    throw new WeftError(
      "xds_bad_filter",
      `Cannot use wasm filter ${name}: code must be a file://, https:// or oci:// URL`,
    );
  }
  // An oci:// image is pulled by the filter host; a malformed reference there is a fetch
  // failure served by the fail strategy, as Istio's agent does (its ECDS rewrite to deny-all).
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) {
    throw new WeftError(
      "xds_bad_filter",
      `Cannot use wasm filter ${name}: sha256 must be 64 hex digits`,
    );
  }
  let config: unknown = {};
  if (cfg?.configuration) {
    const raw = cfg.configuration.typeUrl === typeUrlOf(TYPE_NAMES.stringValue)
      ? decodeStringValue(cfg.configuration.value).value
      : "";
    try {
      config = raw === "" ? {} : JSON.parse(raw);
    } catch {
      config = raw; // Istio passes JSON text; anything else goes through as a string
    }
  }
  // Envoy's Wasm PluginConfig: root_id (Istio's pluginName), vm_id, vm_config.configuration,
  // and environment_variables (key_values, and host_env_keys read from weft's own environment).
  const vars: Record<string, string> = { ...(vm?.environmentVariables?.keyValues ?? {}) };
  for (const k of vm?.environmentVariables?.hostEnvKeys ?? []) {
    const v = env(k);
    if (v !== undefined) vars[k] = v;
  }
  const vmConfig = vm?.configuration?.typeUrl === typeUrlOf(TYPE_NAMES.stringValue)
    ? decodeStringValue(vm.configuration.value).value
    : undefined;
  const runtime: FilterRuntime = {
    ...(cfg?.rootId ? { rootId: cfg.rootId } : {}),
    ...(vm?.vmId ? { vmId: vm.vmId } : {}),
    ...(Object.keys(vars).length ? { env: vars } : {}),
    ...(vmConfig ? { vmConfig } : {}),
  };
  return {
    name: cfg?.name || name,
    ...(Object.keys(runtime).length ? { runtime } : {}),
    type: vm?.runtime === COMPONENT_RUNTIME ? FILTER_TYPES.component : FILTER_TYPES.proxyWasm,
    url,
    sha256,
    config,
    failPolicy: cfg?.failOpen ? "FAIL_OPEN" : "FAIL_CLOSE",
    phase: "UNSPECIFIED",
    priority: 0,
  };
}

/** Decode one filter config. `name` is the HttpFilter (or ECDS resource) name. Any failure is a
 * WeftError (nested bytes, bad UTF-8, bad JSON all come from the untrusted control plane). */
export function filterFromAny(name: string, any: Any): FilterSpec {
  try {
    return decodeFilter(name, any);
  } catch (cause) {
    if (cause instanceof WeftError) throw cause;
    throw new WeftError(
      "xds_bad_filter",
      `Cannot decode HTTP filter ${name}: ${errorMessage(cause)}`,
      {
        cause,
      },
    );
  }
}

function decodeFilter(name: string, any: Any): FilterSpec {
  const spec = decodeFilterUnchecked(name, any);
  // Converted and validated here, before the ACK: a config weft cannot use is a NACK.
  if (spec.kind === "filter") checkFilterConfig(spec.ref);
  return spec;
}

/** Envoy's jwt_authn as istiod writes it for RequestAuthentication → the host's jwt_authn filter
 * (AUTHN phase, before RBAC); its rules are validated as weft.yaml's before the ACK by the filter
 * check src/app/filter_checks.ts registers (src/istio stays out of a node's xDS graph). */
function jwtAuthnRef(name: string, any: Any): FilterRef {
  let config: { jwtRules: Record<string, unknown>[] };
  try {
    config = decodeJwtAuthn(any.value);
  } catch (cause) {
    throw new WeftError("xds_bad_filter", `Cannot use HTTP filter ${name}: ${errorMessage(cause)}`);
  }
  return {
    name,
    type: FILTER_TYPES.jwtAuthn,
    url: undefined,
    sha256: undefined,
    config,
    failPolicy: "FAIL_CLOSE",
    phase: "AUTHN",
    // After ext_authz and AUTHN WasmPlugins, before RBAC (istiod's inbound order, W12).
    priority: -1_000_000,
  };
}

function decodeFilterUnchecked(name: string, any: Any): FilterSpec {
  if (any.typeUrl === JWT_AUTHN_TYPE_URL) return { kind: "filter", ref: jwtAuthnRef(name, any) };
  if (any.typeUrl === EXT_AUTHZ_TYPE_URL) {
    return { kind: "filter", ref: extAuthzRef(name, any.value) };
  }
  const known = decodeKnown(any);
  if (known.typeName === TYPE_NAMES.router) return { kind: "router" };
  if (known.typeName === TYPE_NAMES.cors) return { kind: "cors" };
  if (known.msg) return { kind: "filter", ref: wasmRef(name, known.msg) };
  const rbac = known.typeName === TYPE_NAMES.rbac;
  return {
    kind: "filter",
    ref: {
      name,
      type: rbac ? FILTER_TYPES.authz : FILTER_TYPES.fault,
      url: undefined,
      sha256: undefined,
      config: known.config ?? {},
      failPolicy: "FAIL_CLOSE",
      phase: rbac ? "AUTHZ" : "UNSPECIFIED",
      priority: 0,
    },
  };
}

/** The config's own type URL, looking through a TypedStruct wrapper. */
export function innerTypeUrl(any: Any): string {
  try {
    return unwrapTypedStruct(any)?.typeUrl ?? any.typeUrl;
  } catch {
    return any.typeUrl;
  }
}

/** The type URLs an ECDS `type_urls` list may name that weft can run. */
export function knownFilterTypeUrls(): string[] {
  return [...KNOWN.map(typeUrlOf), JWT_AUTHN_TYPE_URL];
}
