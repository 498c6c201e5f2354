/**
 * weft's control path: the xDS client (Delta or SotW ADS → immutable core Snapshots) and the CA
 * client, one module per resource type under resources/, and the embedded control plane.
 * May import: src/core/mod.ts, src/tls/mod.ts. Nothing outside src/xds sees protobuf types.
 *
 * The node agent imports this module for its clients, which run on weft's own HTTP/2 (src/core
 * GrpcChannel). The control plane serves through @grpc/grpc-js (on node:http2) and loads on first
 * use, so a node agent never evaluates grpc-js nor opens a node:http2 session. The clients use
 * the generated codec (node_proto.ts), not protobuf-es; the mesh compiler (parseMesh) and the
 * RBAC builder are the control plane's (control_plane/mod.ts), outside the node's graph.
 */
import type {
  ControlPlane,
  ControlPlaneOptions,
  JwtVerifier,
  Mesh,
  SaTokenOptions,
  ServingCertificate,
  ServingCertificateOptions,
} from "./control_plane/mod.ts";

export { XdsClient, type XdsClientOptions } from "./client.ts";
export type { SnapshotBase } from "./translate.ts";
export { COMPONENT_RUNTIME, FILTER_TYPES } from "./resources/http_filters.ts";
export type {
  ControlPlane,
  ControlPlaneOptions,
  JwtVerifier,
  Mesh,
  SaTokenOptions,
  ServingCertificate,
  ServingCertificateOptions,
};
export { RemoteCa, type RemoteCaOptions } from "./ca_client.ts";
export { type BearerToken, tokenFromFile } from "./token_file.ts";

/** The SPIFFE id the control plane serves with (and a node expects by default). */
export function controlPlaneIdentity(trustDomain: string): string {
  return `spiffe://${trustDomain}/ns/istio-system/sa/weft-control-plane`;
}

/** Start the embedded control plane (ADS server, CA service). */
export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  return (await import("./control_plane/mod.ts")).startControlPlane(opts);
}

/** Read, validate and encode a mesh (every problem in one error). */
export async function loadMesh(paths: readonly string[]): Promise<Mesh> {
  return (await import("./control_plane/mod.ts")).loadMesh(paths);
}

/** The control plane's rotating serving certificate (ServingCertificate.start). */
export async function startServingCertificate(
  opts: ServingCertificateOptions,
): Promise<ServingCertificate> {
  return (await import("./control_plane/mod.ts")).ServingCertificate.start(opts);
}
