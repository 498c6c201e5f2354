/**
 * The Istio vocabulary: typed, validated parsers for the Kubernetes-style objects weft reads
 * (security.istio.io, networking.istio.io, extensions.istio.io, core/v1 Service and Pod,
 * discovery.k8s.io EndpointSlice) and the one validation toolkit every config reader uses. Used
 * by weft.yaml (src/app), the control plane (src/xds) and the first-party filter converters.
 * May import: src/core/mod.ts.
 */
export * from "./check.ts";
export type * from "./types.ts";
export { GRPC_CODES } from "./grpc_status.ts";
export { loadIstioDocuments, parseIstioObjects, SUPPORTED_KINDS } from "./documents.ts";
export type { DocumentCache, LoadResult, SourceText } from "./documents.ts";
export { parseAuthorizationPolicy, parsePeerAuthentication } from "./security.ts";
export { parseVirtualService } from "./virtual_service.ts";
export {
  jwksProblem,
  jwtRuleToIstio,
  parseJwtRules,
  parseRequestAuthentication,
  requestAuthnsFor,
} from "./request_authn.ts";
export { EXT_AUTHZ_DEFAULT_TIMEOUT_MS, parseExtensionProviders, providerFor } from "./ext_authz.ts";
export { parseDestinationRule } from "./destination.ts";
export { hostFqdn, labelsMatch } from "./select.ts";
export { convertPeerAuthentication } from "./peer_authn.ts";
export { parseFault, parseHttpRetry, parseHttpRoute } from "./virtual_service.ts";
export {
  effectiveRetry,
  requestMatchOf,
  routePolicies,
  routesForSource,
  sourceSelectors,
} from "./route_policy.ts";
export { isOciUrl, type OciRef, ociRefText, parseOciRef } from "./oci_ref.ts";
export { PULL_SECRET_ENV, withPullSecrets } from "./pull_secret.ts";
