/**
 * Listener resources: the outbound listener per service port (HTTP as api_listener with the
 * fault, WasmPlugin and router filters; TCP as tcp_proxy, weighted by VirtualService tcp routes)
 * and the inbound L7 authorization listener per HTTP service and node (build_rbac.ts; jwt_authn
 * for RequestAuthentication, resources/jwt_authn.ts).
 */
import { create, createRegistry, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { type Any, anyPack, AnySchema } from "@bufbuild/protobuf/wkt";
import {
  HttpConnectionManagerSchema,
  ListenerSchema,
  RBACSchema,
  RouterSchema,
  TcpProxySchema,
  UriTemplateMatchConfigSchema,
} from "../proto.ts";

/** The Any types inside RBAC as istiod writes it (`{*}`/`{**}` paths as URI templates). */
const RBAC_TYPES = { registry: createRegistry(UriTemplateMatchConfigSchema) };
import type { AuthorizationPolicy } from "../../core/mod.ts";
import type { JwtRule } from "../../istio/mod.ts";
import { rbacFilters } from "./build_rbac.ts";
import { encodeJwtAuthn, JWT_AUTHN_TYPE_URL } from "../resources/jwt_authn.ts";
import type { RbacOrAny } from "./build_ext_authz.ts";
import {
  clusterName,
  faultFilter,
  listenerName,
  orderedPlugins,
  pluginResourceName,
} from "./build_routes.ts";
import { matches } from "./build_select.ts";
import { corsFilter } from "./build_cors.ts";
import type { Mesh, MeshRouteDestination, MeshService, MeshWorkload } from "./mesh.ts";

function httpManager(s: MeshService, port: number) {
  const filters = [];
  // Envoy's shape for route-scoped faults (what istiod sends): an empty fault filter on the
  // listener, the actual fault in each route's typed_per_filter_config.
  const fault = faultFilter(s);
  if (fault) {
    filters.push({
      name: "envoy.filters.http.fault",
      configType: { case: "typedConfig" as const, value: fault },
    });
  }
  const cors = corsFilter(s);
  if (cors) filters.push(cors);
  for (const p of orderedPlugins(s)) {
    filters.push({
      name: pluginResourceName(s, p),
      configType: {
        case: "configDiscovery" as const,
        value: {
          configSource: { configSourceSpecifier: { case: "ads" as const, value: {} } },
          typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"],
        },
      },
    });
  }
  filters.push({
    name: "envoy.filters.http.router",
    configType: {
      case: "typedConfig" as const,
      value: anyPack(RouterSchema, create(RouterSchema)),
    },
  });
  return anyPack(
    HttpConnectionManagerSchema,
    create(HttpConnectionManagerSchema, {
      statPrefix: listenerName(s, port),
      routeSpecifier: {
        case: "rds",
        value: {
          routeConfigName: listenerName(s, port),
          configSource: { configSourceSpecifier: { case: "ads", value: {} } },
        },
      },
      httpFilters: filters,
    }),
  );
}

/** VirtualService `tcp`: the first route for this port (weighted), else the whole service. */
function tcpClusters(s: MeshService, port: number) {
  const r = s.tcp.find((t) => t.port === undefined || t.port === port);
  const name = (d: MeshRouteDestination) =>
    `outbound|${d.port ?? port}|${d.subset ?? ""}|${d.host || s.hostname}`;
  if (!r) return { case: "cluster" as const, value: clusterName(s, port) };
  if (r.route.length === 1) return { case: "cluster" as const, value: name(r.route[0]!) };
  return {
    case: "weightedClusters" as const,
    value: { clusters: r.route.map((d) => ({ name: name(d), weight: d.weight })) },
  };
}

export function listener(s: MeshService, p: MeshService["ports"][number]) {
  const sock = (ip: string) => ({
    address: {
      case: "socketAddress" as const,
      value: { address: ip, portSpecifier: { case: "portValue" as const, value: p.port } },
    },
  });
  const tcp = p.protocol === "TCP";
  return create(ListenerSchema, {
    name: listenerName(s, p.port),
    address: s.vips[0] ? sock(s.vips[0]) : undefined,
    additionalAddresses: s.vips.slice(1).map((v) => ({ address: sock(v) })),
    metadata: {
      filterMetadata: {
        weft: {
          hostname: s.hostname,
          service: s.name,
          namespace: s.namespace,
          targetPort: p.targetPort,
        },
      },
    },
    filterChains: tcp
      ? [{
        filters: [{
          name: "envoy.filters.network.tcp_proxy",
          configType: {
            case: "typedConfig",
            value: anyPack(
              TcpProxySchema,
              create(TcpProxySchema, {
                statPrefix: s.hostname,
                clusterSpecifier: tcpClusters(s, p.port),
              }),
            ),
          },
        }],
      }]
      : [],
    // gRPC clients read HTTP listeners from api_listener (xds.md §15).
    apiListener: tcp ? undefined : { apiListener: httpManager(s, p.port) },
  });
}

/** The policies that apply to a workload (its namespace or the root namespace, by selector),
 * plus those bound to it by name (converted PeerAuthentications, whose selector matches nothing). */
export function workloadPolicies(
  mesh: Mesh,
  byNamespace: ReadonlyMap<string, readonly AuthorizationPolicy[]>,
  byId: ReadonlyMap<string, AuthorizationPolicy>,
  w: MeshWorkload,
  bound: ReadonlyMap<MeshWorkload, readonly string[]>,
): AuthorizationPolicy[] {
  const out = [w.namespace, mesh.rootNamespace]
    .filter((ns, i) => i === 0 || ns !== w.namespace)
    .flatMap((ns) => byNamespace.get(ns) ?? [])
    .filter((p) =>
      p.targetServices === undefined && (p.selector === undefined || matches(w.labels, p.selector))
    );
  for (const id of bound.get(w) ?? []) {
    const p = byId.get(id);
    if (p && !out.includes(p)) out.push(p);
  }
  return out;
}

/** Inbound L7 authorization for an HTTP service on one node (istiod's sidecar/waypoint inbound
 * shape): an HCM whose RBAC filters hold every policy of the service's workloads on that node
 * (the weft.yaml union), then the router to the local workload. `traffic_direction: INBOUND`
 * and `filter_metadata.weft.node` tell nodes whose it is. */
export function inboundListener(
  s: MeshService,
  node: string,
  port: MeshService["ports"][number],
  policies: readonly AuthorizationPolicy[],
  custom: readonly RbacOrAny[] = [],
  jwtRules: readonly JwtRule[] = [],
) {
  const name = inboundListenerName(s, node);
  const typed = (name: string, value: Any) => ({
    name,
    configType: { case: "typedConfig" as const, value },
  });
  const filters = [
    // CUSTOM first (its shadow RBAC gate and ext_authz, build_ext_authz.ts), as istiod orders them.
    ...custom.map((f) =>
      typed(
        f.name,
        "any" in f
          ? f.any
          : anyPack(RBACSchema, fromJson(RBACSchema, f.rbac as JsonValue, RBAC_TYPES)),
      )
    ),
    // jwt_authn before RBAC, as istiod's inbound chain (RequestAuthentication).
    ...(jwtRules.length > 0
      ? [typed(
        "envoy.filters.http.jwt_authn",
        create(AnySchema, { typeUrl: JWT_AUTHN_TYPE_URL, value: encodeJwtAuthn(jwtRules) }),
      )]
      : []),
    ...rbacFilters(policies).map((f) =>
      typed(
        "envoy.filters.http.rbac",
        anyPack(RBACSchema, fromJson(RBACSchema, f.config as JsonValue, RBAC_TYPES)),
      )
    ),
    typed("envoy.filters.http.router", anyPack(RouterSchema, create(RouterSchema))),
  ];
  const cluster = `inbound|${port.targetPort}||`;
  return create(ListenerSchema, {
    name,
    trafficDirection: 1, // INBOUND
    address: {
      address: {
        case: "socketAddress",
        value: { address: "0.0.0.0", portSpecifier: { case: "portValue", value: port.targetPort } },
      },
    },
    metadata: {
      filterMetadata: {
        weft: { hostname: s.hostname, service: s.name, namespace: s.namespace, node },
      },
    },
    filterChains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        configType: {
          case: "typedConfig",
          value: anyPack(
            HttpConnectionManagerSchema,
            create(HttpConnectionManagerSchema, {
              statPrefix: name,
              routeSpecifier: {
                case: "routeConfig",
                value: {
                  name,
                  virtualHosts: [{
                    name: "inbound|http",
                    domains: ["*"],
                    routes: [{
                      match: { pathSpecifier: { case: "prefix", value: "/" } },
                      action: {
                        case: "route",
                        value: { clusterSpecifier: { case: "cluster", value: cluster } },
                      },
                    }],
                  }],
                },
              },
              httpFilters: filters,
            }),
          ),
        },
      }],
    }],
  });
}

export const inboundListenerName = (s: MeshService, node: string): string =>
  `inbound|${node}|${s.hostname}`;
