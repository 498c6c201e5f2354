/**
 * Registers the config checks of the filter types xDS can deliver (core's registry), so the
 * control path converts and validates them before it ACKs: HTTPFault and RBAC through the
 * first-party converters, ExtAuthz's provider through the ext_authz filter's, jwt_authn's rules
 * through src/istio's parser. Loaded (dynamically) only by nodes that take config from xDS.
 */
import { registerFilterConfigCheck, WeftError } from "../core/mod.ts";
import { Checker, isObj, parseJwtRules, Problems } from "../istio/mod.ts";
import {
  authzConfigFromEnvoyRbac,
  EXT_AUTHZ_XDS_TYPE,
  extAuthzConfigFromXds,
  faultConfigFromEnvoy,
  FIRST_PARTY_XDS_TYPE,
  JWT_AUTHN_TYPE,
} from "../filters/mod.ts";

export function registerXdsFilterChecks(): void {
  registerFilterConfigCheck(FIRST_PARTY_XDS_TYPE.fault, (c) => void faultConfigFromEnvoy(c));
  registerFilterConfigCheck(FIRST_PARTY_XDS_TYPE.authz, (c) => void authzConfigFromEnvoyRbac(c));
  // Checked as decoded, before the gate is paired in (src/xds/resources/ext_authz.ts).
  registerFilterConfigCheck(
    EXT_AUTHZ_XDS_TYPE,
    (c) => void extAuthzConfigFromXds(c),
  );
  // jwt_authn (RequestAuthentication): its rules as weft.yaml's parser takes them.
  registerFilterConfigCheck(JWT_AUTHN_TYPE, (c) => {
    const problems = new Problems();
    parseJwtRules(new Checker(problems), "jwtRules", isObj(c) ? c.jwtRules : undefined);
    if (!problems.ok) {
      throw new WeftError("config_invalid", `Cannot use jwt_authn: ${problems.list.join("; ")}`);
    }
  });
}
