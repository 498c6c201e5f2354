/**
 * Registers the config checks of the filter types xDS can deliver (core's registry), so the
 * control path converts and validates them before it ACKs: HTTPFault and RBAC through the
 * first-party converters, ExtAuthz's provider through the ext_authz filter's. Loaded (dynamically) only by nodes that take config from xDS.
 */
import { registerFilterConfigCheck } from "../core/mod.ts";
import {
  authzConfigFromEnvoyRbac,
  EXT_AUTHZ_XDS_TYPE,
  extAuthzConfigFromXds,
  faultConfigFromEnvoy,
  FIRST_PARTY_XDS_TYPE,
} from "../filters/mod.ts";

export function registerXdsFilterChecks(): void {
  registerFilterConfigCheck(FIRST_PARTY_XDS_TYPE.fault, (c) => void faultConfigFromEnvoy(c));
  registerFilterConfigCheck(FIRST_PARTY_XDS_TYPE.authz, (c) => void authzConfigFromEnvoyRbac(c));
  // Checked as decoded, before the gate is paired in (src/xds/resources/ext_authz.ts).
  registerFilterConfigCheck(
    EXT_AUTHZ_XDS_TYPE,
    (c) => void extAuthzConfigFromXds(c),
  );
}
