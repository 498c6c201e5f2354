/**
 * What the node agent's xDS and CA clients use of protobuf: the generated codec
 * (gen/node_codec.ts, no descriptors and no protobuf-es at run time) and the message types
 * (type-only imports of protobuf-es's generated files). The control plane and tests use proto.ts
 * (protobuf-es); tests/lazy_imports_test.ts keeps protobuf-es out of the node's static graph.
 */
import type { Any } from "@bufbuild/protobuf/wkt";
import { WeftError } from "../core/mod.ts";

export * from "./gen/node_codec.ts";
export type { Any } from "@bufbuild/protobuf/wkt";
export type { HttpFilter } from "./gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.ts";

export const TYPE_PREFIX = "type.googleapis.com/";

/** Type names the node compares Any type URLs against. */
export const TYPE_NAMES = {
  rbac: "envoy.extensions.filters.http.rbac.v3.RBAC",
  fault: "envoy.extensions.filters.http.fault.v3.HTTPFault",
  wasm: "envoy.extensions.filters.http.wasm.v3.Wasm",
  router: "envoy.extensions.filters.http.router.v3.Router",
  cors: "envoy.extensions.filters.http.cors.v3.Cors",
  corsPolicy: "envoy.extensions.filters.http.cors.v3.CorsPolicy",
  typedStruct: "xds.type.v3.TypedStruct",
  udpaTypedStruct: "udpa.type.v1.TypedStruct",
  stringValue: "google.protobuf.StringValue",
  listener: "envoy.config.listener.v3.Listener",
  hcm: "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  tcpProxy: "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
  route: "envoy.config.route.v3.RouteConfiguration",
  cluster: "envoy.config.cluster.v3.Cluster",
  endpoint: "envoy.config.endpoint.v3.ClusterLoadAssignment",
  extensionConfig: "envoy.config.core.v3.TypedExtensionConfig",
  address: "istio.workload.Address",
  authorization: "istio.security.Authorization",
} as const;

export function typeUrlOf(typeName: string): string {
  return TYPE_PREFIX + typeName;
}

/** Unpack an Any that must hold `typeName`; a wrong type or bad bytes is a WeftError. */
export function unpackAs<T>(any: Any, typeName: string, decode: (b: Uint8Array) => T): T {
  if (any.typeUrl !== typeUrlOf(typeName)) {
    throw new WeftError(
      "xds_wrong_type",
      `Cannot decode resource: type ${any.typeUrl || "(empty)"}, expected ${typeUrlOf(typeName)}`,
    );
  }
  try {
    return decode(any.value);
  } catch (cause) {
    throw new WeftError("xds_bad_bytes", `Cannot decode ${typeName}: malformed bytes`, { cause });
  }
}
