/**
 * The one table of filter type names (`FilterRef.type`) the filter host knows. src/xds and
 * src/app name types through these constants (src/xds keeps a mirror it may not import).
 */

/** A WIT component (`weft:filter/http-filter`) loaded from the ref's url. */
export const COMPONENT_TYPE = "weft.component";
/** A proxy-wasm (ABI 0.2.x) module loaded from the ref's url. */
export const PROXY_WASM_TYPE = "weft.proxy_wasm";

/** The external authorization filter (AuthorizationPolicy CUSTOM, src/filters/ext_authz). */
export const EXT_AUTHZ_TYPE = "weft.ext_authz";
/** The same from xDS: `{provider, rbac}`, the gate as Envoy RBAC JSON (src/xds/resources/
 * ext_authz.ts pairs istiod's shadow RBAC filter with envoy.filters.http.ext_authz). */
export const EXT_AUTHZ_XDS_TYPE = "weft.ext_authz.xds";

/** The first-party plugins (plugins/<name>), shipped prebuilt with weft. */
export const FIRST_PARTY = ["authz", "fault", "traffic-split"] as const;
export type FirstParty = typeof FIRST_PARTY[number];

/** Types xDS gives first-party filters: Envoy-shaped configs (RBAC and HTTPFault as proto JSON;
 * traffic_split already in the plugin's shape). */
export const FIRST_PARTY_XDS_TYPE: Readonly<Record<FirstParty, string>> = Object.freeze({
  authz: "weft.authz",
  fault: "weft.fault",
  "traffic-split": "weft.traffic_split",
});

/** Types of refs built from weft.yaml, whose config is already in the plugin's shape. */
export const FIRST_PARTY_TYPE: Readonly<Record<FirstParty, string>> = Object.freeze({
  authz: "weft.plugin.authz",
  fault: "weft.plugin.fault",
  "traffic-split": "weft.plugin.traffic-split",
});

/** The first-party plugin a type names, and whether its config is Envoy-shaped (from xDS). */
export function firstPartyOf(type: string): { name: FirstParty; fromXds: boolean } | undefined {
  for (const name of FIRST_PARTY) {
    if (FIRST_PARTY_TYPE[name] === type) return { name, fromXds: false };
    if (FIRST_PARTY_XDS_TYPE[name] === type) return { name, fromXds: true };
  }
  return undefined;
}

/** The host-native jwt_authn filter (RequestAuthentication; src/filters/jwt): config
 * `{jwtRules}` as src/istio parses them. */
export const JWT_AUTHN_TYPE = "weft.jwt_authn";
