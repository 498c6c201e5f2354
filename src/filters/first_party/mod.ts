/**
 * Converters from Istio config (parsed by src/istio) and Envoy config to the JSON configs of weft's first-party plugins
 * (plugins/authz, plugins/traffic-split, plugins/fault). Pure functions over `unknown` input,
 * path-qualified errors (WeftError code `config_invalid`). May import: src/core (via mod.ts).
 */
export { authorizationPolicyFromIstio, authzConfigFromPolicies } from "./authz_config.ts";
export type { AuthzPluginConfig, AuthzPluginPolicy } from "./authz_config.ts";
export { authzConfigFromEnvoyRbac } from "./rbac_config.ts";
export {
  splitConfigFromRoutes,
  splitConfigFromVirtualService,
  subsetsFromDestinationRule,
} from "./split_config.ts";
export type {
  SplitDestination,
  SplitMatch,
  SplitOptions,
  SplitPluginConfig,
  SplitRoute,
  SplitStringMatch,
} from "./split_config.ts";
export {
  durationMs,
  faultConfigFromEnvoy,
  faultConfigFromHttpFault,
  faultConfigFromIstio,
  faultStages,
  GRPC_CODES,
} from "./fault_config.ts";
export type {
  Denominator,
  FaultHeaderMatch,
  FaultPluginConfig,
  FractionalPercent,
} from "./fault_config.ts";
