/**
 * The generated protobuf-es schemas the control plane and the tests use, in one place, plus Any
 * helpers. Generated code lives in ./gen (`deno task gen`); nothing outside src/xds sees protobuf
 * types. The node agent does not import this module: it decodes and encodes with the generated
 * codec (node_proto.ts → gen/node_codec.ts), without protobuf-es at run time.
 */
import { type DescMessage, fromBinary, type MessageShape } from "@bufbuild/protobuf";
import type { Any } from "@bufbuild/protobuf/wkt";
import { WeftError } from "../core/mod.ts";

export { ListenerSchema } from "./gen/envoy/config/listener/v3/listener_pb.ts";
export type { Listener } from "./gen/envoy/config/listener/v3/listener_pb.ts";
export { RouteConfigurationSchema } from "./gen/envoy/config/route/v3/route_pb.ts";
export type { RouteConfiguration } from "./gen/envoy/config/route/v3/route_pb.ts";
export * as routeComponents from "./gen/envoy/config/route/v3/route_components_pb.ts";
export { Cluster_DiscoveryType, ClusterSchema } from "./gen/envoy/config/cluster/v3/cluster_pb.ts";
export type { Cluster } from "./gen/envoy/config/cluster/v3/cluster_pb.ts";
export { ClusterLoadAssignmentSchema } from "./gen/envoy/config/endpoint/v3/endpoint_pb.ts";
export type { ClusterLoadAssignment } from "./gen/envoy/config/endpoint/v3/endpoint_pb.ts";
export { TypedExtensionConfigSchema } from "./gen/envoy/config/core/v3/extension_pb.ts";
export type { TypedExtensionConfig } from "./gen/envoy/config/core/v3/extension_pb.ts";
export {
  DeltaDiscoveryRequestSchema,
  DeltaDiscoveryResponseSchema,
  DiscoveryRequestSchema,
  DiscoveryResponseSchema,
  ResourceSchema,
} from "./gen/envoy/service/discovery/v3/discovery_pb.ts";
export type {
  DeltaDiscoveryRequest,
  DeltaDiscoveryResponse,
  DiscoveryRequest,
  DiscoveryResponse,
  Resource,
} from "./gen/envoy/service/discovery/v3/discovery_pb.ts";
export { NodeSchema } from "./gen/envoy/config/core/v3/base_pb.ts";
export type { Node } from "./gen/envoy/config/core/v3/base_pb.ts";
export {
  HttpConnectionManagerSchema,
} from "./gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.ts";
export type {
  HttpConnectionManager,
  HttpFilter,
} from "./gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.ts";
export { TcpProxySchema } from "./gen/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy_pb.ts";
export { RBACSchema } from "./gen/envoy/extensions/filters/http/rbac/v3/rbac_pb.ts";
export { UriTemplateMatchConfigSchema } from "./gen/envoy/extensions/path/match/uri_template/v3/uri_template_match_pb.ts";
export { HTTPFaultSchema } from "./gen/envoy/extensions/filters/http/fault/v3/fault_pb.ts";
export { WasmSchema } from "./gen/envoy/extensions/filters/http/wasm/v3/wasm_pb.ts";
export { RouterSchema } from "./gen/envoy/extensions/filters/http/router/v3/router_pb.ts";
export {
  CorsPolicySchema,
  CorsSchema,
} from "./gen/envoy/extensions/filters/http/cors/v3/cors_pb.ts";
export { TypedStructSchema } from "./gen/xds/type/v3/typed_struct_pb.ts";
export { TypedStructSchema as UdpaTypedStructSchema } from "./gen/udpa/type/v1/typed_struct_pb.ts";
export { StatusSchema } from "./gen/google/rpc/status_pb.ts";
export { AddressSchema as IstioAddressSchema } from "./gen/istio/workload/workload_pb.ts";
export * as istioWorkload from "./gen/istio/workload/workload_pb.ts";
export { AuthorizationSchema as IstioAuthorizationSchema } from "./gen/istio/security/authorization_pb.ts";
export * as istioSecurity from "./gen/istio/security/authorization_pb.ts";
export {
  IstioCertificateRequestSchema,
  IstioCertificateResponseSchema,
} from "./gen/istio/ca/ca_pb.ts";

export const TYPE_PREFIX = "type.googleapis.com/";

export function typeUrlOf(schema: DescMessage): string {
  return TYPE_PREFIX + schema.typeName;
}

/** Unpack an Any that must hold `schema`; a wrong type or bad bytes is a WeftError. */
export function unpackAs<D extends DescMessage>(any: Any, schema: D): MessageShape<D> {
  if (any.typeUrl !== typeUrlOf(schema)) {
    throw new WeftError(
      "xds_wrong_type",
      `Cannot decode resource: type ${any.typeUrl || "(empty)"}, expected ${typeUrlOf(schema)}`,
    );
  }
  try {
    return fromBinary(schema, any.value);
  } catch (cause) {
    throw new WeftError("xds_bad_bytes", `Cannot decode ${schema.typeName}: malformed bytes`, {
      cause,
    });
  }
}
