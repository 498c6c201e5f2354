/** WeftConfig → the immutable core Snapshot the data path reads. */
import { spiffeId } from "../core/mod.ts";
import type { Endpoint, FilterRef, FilterRuntime, Service, Snapshot } from "../core/mod.ts";
import { joinHostPort } from "../core/mod.ts";
import { routePolicies } from "../istio/mod.ts";
import type { PluginConfig, ServiceConfig, WeftConfig } from "./config_types.ts";

let counter = 0;

export function snapshotFromConfig(
  cfg: WeftConfig,
  l7: (svc: ServiceConfig, cfg: WeftConfig) => { inbound: FilterRef[]; outbound: FilterRef[] } =
    pluginFilters,
): Snapshot {
  const td = cfg.node.trustDomain;
  const services: Service[] = cfg.services.map((s) => {
    const endpoints: Endpoint[] = s.endpoints.map((e) => ({
      workload: e.workload,
      namespace: e.namespace,
      address: e.address,
      hboneAddress: e.tunnel === "HBONE"
        ? e.hboneAddress ?? joinHostPort(e.address, cfg.node.hbonePort)
        : undefined,
      node: e.node,
      identity: e.tunnel === "HBONE" ? spiffeId(td, e.namespace, e.serviceAccount) : undefined,
      labels: e.labels,
      weight: e.weight,
      ...(e.network !== undefined ? { network: e.network } : {}),
      ...(e.networkGateway ? { networkGateway: e.networkGateway } : {}),
    }));
    const chains = l7(s, cfg);
    const routes = routePolicies(s.http, cfg.defaultHttpRetryPolicy);
    return {
      name: s.name,
      namespace: s.namespace,
      hostname: s.hostname,
      vips: s.vips,
      ports: s.ports,
      endpoints,
      subsets: s.subsets,
      outboundFilters: chains.outbound,
      inboundFilters: chains.inbound,
      ...(routes ? { routes } : {}),
      ...(s.subjectAltNames ? { subjectAltNames: s.subjectAltNames } : {}),
    };
  });
  return Object.freeze({
    version: `bootstrap-${++counter}`,
    node: {
      name: cfg.node.name,
      hbonePort: cfg.node.hbonePort,
      trustDomain: td,
      network: cfg.node.network,
    },
    rootNamespace: cfg.node.rootNamespace,
    workloads: cfg.workloads,
    services,
    policies: cfg.authorizationPolicies,
    outboundTrafficPolicy: cfg.outboundTrafficPolicy,
    timeouts: cfg.timeouts,
    limits: cfg.limits,
    capture: {
      socks5: cfg.listeners.socks5,
      inboundPlaintextPort: cfg.listeners.inboundPlaintextPort,
      defaultSourceWorkload: cfg.node.defaultSourceWorkload,
      serviceVips: cfg.listeners.captureServiceVips,
      inpod: cfg.inpod !== undefined,
    },
  });
}

/** A user plugin's ref; its scope is the service (and direction) that configures it. */
export function pluginRef(p: PluginConfig, scope?: string): FilterRef {
  const runtime: FilterRuntime = {
    ...(p.pluginName !== undefined ? { rootId: p.pluginName } : {}),
    ...(Object.keys(p.env).length ? { env: p.env } : {}),
    ...(Object.keys(p.clusters).length ? { clusters: p.clusters } : {}),
    ...(p.maxMemoryBytes !== undefined ? { maxMemoryBytes: p.maxMemoryBytes } : {}),
    ...(p.callBudgetMs !== undefined ? { callBudgetMs: p.callBudgetMs } : {}),
    ...(p.bodies !== "none" ? { bodies: p.bodies } : {}),
  };
  return {
    name: p.name,
    type: p.type === "proxy-wasm" ? "weft.proxy_wasm" : "weft.component",
    url: p.url,
    sha256: p.sha256,
    config: p.pluginConfig,
    failPolicy: p.failStrategy,
    phase: p.phase,
    priority: p.priority,
    ...(scope !== undefined ? { scope } : {}),
    ...(Object.keys(runtime).length ? { runtime } : {}),
  };
}

/** User plugins only (first-party plugin chains are added by the L7 wiring). */
export function pluginFilters(svc: ServiceConfig): { inbound: FilterRef[]; outbound: FilterRef[] } {
  const scope = (d: string) => `${svc.namespace}/${svc.name}/${d}`;
  return {
    inbound: svc.plugins.filter((p) => p.direction === "inbound").map((p) =>
      pluginRef(p, scope("inbound"))
    ),
    outbound: svc.plugins.filter((p) => p.direction === "outbound").map((p) =>
      pluginRef(p, scope("outbound"))
    ),
  };
}
