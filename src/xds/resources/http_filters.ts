/**
 * HTTP filter configs (inline `typed_config` or an ECDS `TypedExtensionConfig`) → weft FilterRefs.
 * Known types: RBAC → the authz plugin, HTTPFault → the fault plugin, Wasm → a component or
 * proxy-wasm filter by URL + sha256, Router → end of chain. TypedStruct wrappers are unwrapped.
 */
import { type DescMessage, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import type { Any } from "@bufbuild/protobuf/wkt";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { fromBinary } from "@bufbuild/protobuf";
import type { FilterRef, FilterRuntime } from "../../core/mod.ts";
import { checkFilterConfig, env, errorMessage, WeftError } from "../../core/mod.ts";
import {
  HTTPFaultSchema,
  RBACSchema,
  RouterSchema,
  TypedStructSchema,
  typeUrlOf,
  UdpaTypedStructSchema,
  unpackAs,
  WasmSchema,
} from "../proto.ts";

/** FilterRef.type values weft's filter host registers (src/filters maps them to code). */
export const FILTER_TYPES = {
  authz: "weft.authz",
  fault: "weft.fault",
  trafficSplit: "weft.traffic_split",
  component: "weft.component",
  proxyWasm: "weft.proxy_wasm",
} as const;

/** `vm_config.runtime` naming a WIT component instead of a proxy-wasm module. */
export const COMPONENT_RUNTIME = "weft.component";

export type FilterSpec =
  | { readonly kind: "router" }
  | { readonly kind: "filter"; readonly ref: FilterRef };

const KNOWN = [RBACSchema, HTTPFaultSchema, WasmSchema, RouterSchema] as const;

function unwrapTypedStruct(any: Any): { typeUrl: string; json: JsonValue } | undefined {
  for (const schema of [TypedStructSchema, UdpaTypedStructSchema]) {
    if (any.typeUrl !== typeUrlOf(schema)) continue;
    const ts = fromBinary(schema, any.value);
    const json: JsonValue = ts.value ?? {};
    return { typeUrl: ts.typeUrl, json };
  }
  return undefined;
}

function decodeKnown(any: Any): { schema: DescMessage; msg: unknown } {
  const wrapped = unwrapTypedStruct(any);
  for (const schema of KNOWN) {
    if (wrapped && wrapped.typeUrl === typeUrlOf(schema)) {
      try {
        return { schema, msg: fromJson(schema, wrapped.json) };
      } catch (cause) {
        throw new WeftError("xds_bad_filter", `Cannot decode ${schema.typeName}: ${cause}`);
      }
    }
    if (any.typeUrl === typeUrlOf(schema)) return { schema, msg: unpackAs(any, schema) };
  }
  throw new WeftError(
    "xds_unknown_filter",
    `Cannot use HTTP filter: unsupported config type ${wrapped?.typeUrl ?? any.typeUrl}`,
  );
}

function wasmRef(name: string, msg: ReturnType<typeof unpackAs<typeof WasmSchema>>): FilterRef {
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
  if (!url || !/^(file|https?):\/\//.test(url)) {
    throw new WeftError(
      "xds_bad_filter",
      `Cannot use wasm filter ${name}: code must be a file:// or https:// URL`,
    );
  }
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) {
    throw new WeftError(
      "xds_bad_filter",
      `Cannot use wasm filter ${name}: sha256 must be 64 hex digits`,
    );
  }
  let config: unknown = {};
  if (cfg?.configuration) {
    const raw = cfg.configuration.typeUrl === typeUrlOf(StringValueSchema)
      ? fromBinary(StringValueSchema, cfg.configuration.value).value
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
  const vmConfig = vm?.configuration?.typeUrl === typeUrlOf(StringValueSchema)
    ? fromBinary(StringValueSchema, vm.configuration.value).value
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

function decodeFilterUnchecked(name: string, any: Any): FilterSpec {
  const { schema, msg } = decodeKnown(any);
  if (schema === RouterSchema) return { kind: "router" };
  if (schema === WasmSchema) return { kind: "filter", ref: wasmRef(name, msg as never) };
  const type = schema === RBACSchema ? FILTER_TYPES.authz : FILTER_TYPES.fault;
  const config = toJson(schema, msg as never);
  return {
    kind: "filter",
    ref: {
      name,
      type,
      url: undefined,
      sha256: undefined,
      config,
      failPolicy: "FAIL_CLOSE",
      phase: schema === RBACSchema ? "AUTHZ" : "UNSPECIFIED",
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
  return KNOWN.map(typeUrlOf);
}
