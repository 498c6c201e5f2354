/**
 * weft's control path: the xDS client (Delta or SotW ADS → immutable core Snapshots), one
 * module per resource type under resources/, and the embedded control plane.
 * May import: src/core/mod.ts, src/tls/mod.ts. Nothing outside src/xds sees protobuf types.
 */
export { XdsClient, type XdsClientOptions } from "./client.ts";
export type { SnapshotBase } from "./translate.ts";
export { COMPONENT_RUNTIME, FILTER_TYPES } from "./resources/http_filters.ts";
export {
  type ControlPlane,
  type ControlPlaneOptions,
  loadMesh,
  parseMesh,
  ServingCertificate,
  startControlPlane,
} from "./control_plane/mod.ts";
/** AuthorizationPolicies → istiod-shaped Envoy RBAC filter configs (proto3 JSON). */
export { rbacFilters as envoyRbacFilters } from "./control_plane/build_rbac.ts";
export { RemoteCa, type RemoteCaOptions } from "./ca_client.ts";
