/**
 * LDS: a Listener is one service port. `tcp_proxy` → L4; `http_connection_manager` (in a filter
 * chain or an `api_listener`, as gRPC clients expect) → L7 with its HTTP filter chain, and routes
 * inline or by RDS name. Filters using ECDS (`config_discovery`) are dependencies. A listener
 * with `traffic_direction: INBOUND` is instead the inbound chain (RBAC) of a service's workloads
 * on the node named in `filter_metadata.weft.node`.
 */
import type { Any } from "@bufbuild/protobuf/wkt";
import type { FilterRef } from "../../core/mod.ts";
import { errorMessage } from "../../core/mod.ts";
import {
  decodeHttpConnectionManager,
  decodeListener,
  decodeTcpProxy,
  type HttpConnectionManager,
  type Listener,
  TYPE_NAMES,
  unpackAs,
} from "../node_proto.ts";
import { CLUSTER, EXTENSION_CONFIG, LISTENER, ROUTE } from "../type_urls.ts";
import { FILTER_TYPES, filterFromAny, innerTypeUrl } from "./http_filters.ts";
import { pairExtAuthz } from "./ext_authz.ts";
import {
  checkPort,
  type Decoded,
  invalid,
  type ResourceType,
  str,
  weftMeta,
} from "./resource_type.ts";
import { routeClusters, type RouteValue, routeValue } from "./route.ts";

/** One position in the HTTP filter chain: resolved now, or by ECDS name later. */
export type ChainEntry =
  | { readonly kind: "inline"; readonly ref: FilterRef }
  | {
    readonly kind: "ecds";
    readonly name: string;
    readonly optional: boolean;
    /** ExtensionConfigSource.type_urls: the config must be one of these (empty = any). */
    readonly typeUrls: readonly string[];
    /** ExtensionConfigSource.default_config: used while the ECDS config is missing, once
     * initial_fetch_timeout passed, or at once with apply_default_config_without_warming. */
    readonly defaultConfig?: {
      readonly ref: FilterRef | undefined;
      readonly withoutWarming: boolean;
    };
  };

interface Common {
  readonly name: string;
  /** Listener IPs (the service VIPs); empty for an api_listener. */
  readonly vips: readonly string[];
  readonly port: number;
  readonly hostname: string;
  readonly namespace: string;
  readonly service: string;
  readonly targetPort: number | undefined;
  /** `traffic_direction: INBOUND`: the inbound L7 chain of `hostname`'s workloads on `node`. */
  readonly inbound: boolean;
  /** filter_metadata.weft.node: the node whose workloads an inbound listener serves. */
  readonly node: string | undefined;
}

export type ListenerValue =
  | Common & {
    readonly kind: "tcp";
    readonly clusters: readonly { cluster: string; weight: number }[];
  }
  | Common & {
    readonly kind: "http";
    readonly protocol: "HTTP" | "HTTP2" | "GRPC";
    readonly rds: string | undefined;
    readonly routeConfig: RouteValue | undefined;
    readonly chain: readonly ChainEntry[];
  };

function identityOf(l: Listener, what: string): Omit<Common, "name"> {
  const md = weftMeta(l.metadata);
  const sa = l.address?.address.case === "socketAddress" ? l.address.address.value : undefined;
  const vips = sa ? [sa.address] : [];
  for (const a of l.additionalAddresses) {
    if (a.address?.address.case === "socketAddress") vips.push(a.address.address.value.address);
  }
  const fromName = /^(.+):(\d+)$/.exec(l.name);
  const port = sa?.portSpecifier.case === "portValue"
    ? sa.portSpecifier.value
    : Number(fromName?.[2] ?? 0);
  checkPort(what, port);
  const hostname = str(md["hostname"]) ?? fromName?.[1] ?? l.name;
  const labels = hostname.split(".");
  const tp = Number(md["targetPort"] ?? 0);
  return {
    vips,
    port,
    hostname,
    service: str(md["service"]) ?? labels[0] ?? hostname,
    namespace: str(md["namespace"]) ?? labels[1] ?? "default",
    targetPort: tp > 0 ? tp : undefined,
    inbound: l.trafficDirection === 1,
    node: str(md["node"]),
  };
}

function chainOf(hcm: HttpConnectionManager, what: string): ChainEntry[] {
  const chain: ChainEntry[] = [];
  let sawRouter = false;
  hcm.httpFilters.forEach((f, i) => {
    if (f.disabled) return;
    if (sawRouter) throw invalid(what, `http filter ${f.name} comes after the router`);
    if (f.configType.case === "configDiscovery") {
      const src = f.configType.value;
      const typeUrls = [...src.typeUrls];
      const d = src.defaultConfig;
      if (src.applyDefaultConfigWithoutWarming && !d) {
        throw invalid(
          what,
          `http filter ${f.name}: apply_default_config_without_warming needs default_config`,
        );
      }
      let defaultConfig: { ref: FilterRef | undefined; withoutWarming: boolean } | undefined;
      if (d) {
        const t = innerTypeUrl(d);
        if (typeUrls.length && !typeUrls.includes(t)) {
          throw invalid(what, `http filter ${f.name}: default_config type ${t} not in type_urls`);
        }
        let spec;
        try {
          spec = filterFromAny(f.name, d);
        } catch (err) {
          throw invalid(what, `http filter ${f.name} default_config: ${errorMessage(err)}`);
        }
        defaultConfig = {
          ref: spec.kind === "filter" ? spec.ref : undefined,
          withoutWarming: src.applyDefaultConfigWithoutWarming,
        };
      }
      chain.push({
        kind: "ecds",
        name: f.name,
        optional: f.isOptional,
        typeUrls,
        ...(defaultConfig ? { defaultConfig } : {}),
      });
      return;
    }
    if (f.configType.case !== "typedConfig") {
      throw invalid(what, `http filter ${f.name} has no config`);
    }
    try {
      const spec = filterFromAny(f.name, f.configType.value);
      if (spec.kind === "router") sawRouter = true;
      else if (spec.kind === "filter") {
        chain.push({ kind: "inline", ref: { ...spec.ref, priority: -i } });
      }
    } catch (err) {
      if (!f.isOptional) throw invalid(what, `http filter ${f.name}: ${errorMessage(err)}`);
    }
  });
  if (!sawRouter) throw invalid(what, "http filters must end with envoy.filters.http.router");
  return pairExtAuthz(chain, FILTER_TYPES.authz);
}

function httpValue(hcm: HttpConnectionManager, common: Common, what: string): ListenerValue {
  const rs = hcm.routeSpecifier;
  if (rs.case === "scopedRoutes" || rs.case === undefined) {
    throw invalid(what, "http_connection_manager needs rds or route_config");
  }
  if (rs.case === "rds") {
    const src = rs.value.configSource?.configSourceSpecifier.case;
    if (src !== "ads" && src !== "self") {
      throw invalid(what, "rds config_source must be ads or self");
    }
    if (!rs.value.routeConfigName) throw invalid(what, "rds route_config_name is empty");
  }
  const protocol = hcm.codecType === 2 ? "HTTP2" : "HTTP";
  return {
    ...common,
    kind: "http",
    protocol,
    rds: rs.case === "rds" ? rs.value.routeConfigName : undefined,
    routeConfig: rs.case === "routeConfig" ? routeValue(rs.value, what) : undefined,
    chain: chainOf(hcm, what),
  };
}

function networkFilter(l: Listener, common: Common, what: string): ListenerValue {
  if (l.filterChains.length !== 1) throw invalid(what, "expected exactly one filter chain");
  const filters = l.filterChains[0]!.filters;
  const last = filters[filters.length - 1];
  if (!last || last.configType.case !== "typedConfig") {
    throw invalid(what, "filter chain must end with tcp_proxy or http_connection_manager");
  }
  const any = last.configType.value;
  if (any.typeUrl.endsWith(".TcpProxy")) {
    const tp = unpackAs(any, TYPE_NAMES.tcpProxy, decodeTcpProxy);
    const spec = tp.clusterSpecifier;
    const clusters = spec.case === "cluster"
      ? [{ cluster: spec.value, weight: 1 }]
      : spec.case === "weightedClusters"
      ? spec.value.clusters.map((c) => ({ cluster: c.name, weight: c.weight }))
      : [];
    if (clusters.length === 0 || clusters.some((c) => !c.cluster)) {
      throw invalid(what, "tcp_proxy needs a cluster");
    }
    if (clusters.reduce((a, c) => a + c.weight, 0) <= 0) {
      throw invalid(what, "tcp_proxy weights sum to 0");
    }
    return { ...common, kind: "tcp", clusters };
  }
  return httpValue(unpackAs(any, TYPE_NAMES.hcm, decodeHttpConnectionManager), common, what);
}

export const listenerType: ResourceType<ListenerValue> = {
  typeUrl: LISTENER,
  decode(any: Any): Decoded<ListenerValue> {
    const l = unpackAs(any, TYPE_NAMES.listener, decodeListener);
    if (!l.name) throw invalid("listener", "name is empty");
    const what = `listener ${l.name}`;
    const common = { name: l.name, ...identityOf(l, what) };
    if (l.apiListener?.apiListener) {
      const hcm = unpackAs(l.apiListener.apiListener, TYPE_NAMES.hcm, decodeHttpConnectionManager);
      return { name: l.name, value: httpValue(hcm, common, what) };
    }
    const value = networkFilter(l, common, what);
    // weft runs an inbound chain's filters as delivered: nothing may be left out or come later.
    if (value.inbound) {
      if (value.kind !== "http") {
        throw invalid(what, "an inbound listener must end with http_connection_manager");
      }
      if (value.chain.some((e) => e.kind !== "inline")) {
        throw invalid(what, "an inbound listener's http filters must be inline (no ECDS)");
      }
    }
    return { name: l.name, value };
  },
  deps(v) {
    const out: { typeUrl: string; name: string }[] = [];
    if (v.kind === "tcp") {
      for (const c of v.clusters) out.push({ typeUrl: CLUSTER, name: c.cluster });
      return out;
    }
    if (v.rds) out.push({ typeUrl: ROUTE, name: v.rds });
    // An inbound chain routes to the local workload, not to a CDS cluster.
    if (v.routeConfig && !v.inbound) {
      for (const c of routeClusters(v.routeConfig)) out.push({ typeUrl: CLUSTER, name: c });
    }
    for (const e of v.chain) {
      if (e.kind === "ecds") out.push({ typeUrl: EXTENSION_CONFIG, name: e.name });
    }
    return out;
  },
};
