/**
 * The part of HTTP filter decoding that needs protobuf-es's JSON mapping, loaded on first need
 * (http_filters.ts loadFilterJson; the xDS client awaits it before a response naming a
 * TypedStruct): TypedStruct-wrapped configs are read from JSON, checked against their schema
 * (protobuf-es's fromJson), and RBAC/HTTPFault ones written back as proto3 JSON. Imports only these
 * four schemas' files (and the URI template matcher's). (RBAC and HTTPFault sent as themselves use the generated codec.)
 */
import { createRegistry, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { RBACSchema } from "../gen/envoy/extensions/filters/http/rbac/v3/rbac_pb.ts";
import { HTTPFaultSchema } from "../gen/envoy/extensions/filters/http/fault/v3/fault_pb.ts";
import { WasmSchema } from "../gen/envoy/extensions/filters/http/wasm/v3/wasm_pb.ts";
import { RouterSchema } from "../gen/envoy/extensions/filters/http/router/v3/router_pb.ts";
import { UriTemplateMatchConfigSchema } from "../gen/envoy/extensions/path/match/uri_template/v3/uri_template_match_pb.ts";
import type { Wasm } from "../node_proto.ts";

export type { JsonValue };

/** A known filter config: the Router (nothing to keep), a Wasm message, or proto3 JSON. */
export interface KnownFilter {
  readonly typeName: string;
  readonly msg?: Wasm;
  readonly config?: JsonValue;
}

export interface FilterJson {
  /** A TypedStruct's JSON for one of the four known types, checked against its schema. */
  fromTypedStruct(typeName: string, json: JsonValue): KnownFilter;
}

/** The Any an RBAC permission may hold (istiod's `{*}`/`{**}` paths as URI templates). */
const ANY_TYPES = { registry: createRegistry(UriTemplateMatchConfigSchema) };

const SCHEMAS = new Map<string, typeof RBACSchema | typeof HTTPFaultSchema>(
  [RBACSchema, HTTPFaultSchema].map((s) => [s.typeName, s]),
);

function schemaOf(typeName: string): typeof RBACSchema | typeof HTTPFaultSchema {
  const s = SCHEMAS.get(typeName);
  if (!s) throw new Error(`no schema for ${typeName}`);
  return s;
}

export const FILTER_JSON: FilterJson = {
  fromTypedStruct(typeName, json) {
    if (typeName === RouterSchema.typeName) {
      fromJson(RouterSchema, json);
      return { typeName };
    }
    if (typeName === WasmSchema.typeName) return { typeName, msg: fromJson(WasmSchema, json) };
    const s = schemaOf(typeName);
    return { typeName, config: toJson(s, fromJson(s, json, ANY_TYPES), ANY_TYPES) };
  },
};
