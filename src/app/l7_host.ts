/**
 * The loaded half of L7Wiring: the filter host (components + proxy-wasm, jco and wasm), the
 * first-party plugin chains built from weft.yaml (or mapped from xDS) and the dev watcher.
 * Imported only by l7_wiring.ts, dynamically, when some service has filters: a node without L7
 * services never loads jco or the wasm tooling. Nothing here compiles: first-party plugins are
 * prebuilt (src/filters registers their factories).
 */
import type { FilterRef, FilterResolver, Service, ServiceDial, Snapshot } from "../core/mod.ts";
import {
  defaultRegistry,
  FilterHost,
  registerExtAuthz,
  registerProxyWasm,
  watchFilters,
} from "../filters/mod.ts";
import type { FilterWatcher } from "../filters/mod.ts";
import type { ServiceConfig, WeftConfig } from "./config_types.ts";
import { firstPartyChains, scopeFirstParty } from "./first_party_refs.ts";
import { pluginFilters } from "./snapshot_builder.ts";

/** Refs without a scope (xDS: an ECDS resource is one filter wherever it is used) keep one
 * filter per name; but when one name carries different configs on different services (inline
 * listener filters), each service's gets its own scope instead of one silently winning. */
export function scopeCollisions(services: Service[]): void {
  const configs = new Map<string, Set<string>>();
  for (const s of services) {
    for (const r of [...s.inboundFilters, ...s.outboundFilters]) {
      if (r.scope !== undefined) continue;
      let set = configs.get(r.name);
      if (!set) configs.set(r.name, set = new Set());
      set.add(JSON.stringify(r));
    }
  }
  const clash = (r: FilterRef) => r.scope === undefined && (configs.get(r.name)?.size ?? 0) > 1;
  services.forEach((s, i) => {
    const scoped = (d: string) => (r: FilterRef): FilterRef =>
      clash(r) ? { ...r, scope: `${s.namespace}/${s.name}/${d}` } : r;
    services[i] = {
      ...s,
      inboundFilters: s.inboundFilters.map(scoped("inbound")),
      outboundFilters: s.outboundFilters.map(scoped("outbound")),
    };
  });
}

export interface L7HostOptions {
  readonly dev: boolean;
  readonly nodeName?: string;
  readonly trustDomain?: string;
  /** weft.yaml node.metadata, over the defaults. */
  readonly nodeMetadata?: Readonly<Record<string, unknown>>;
  /** The node's mesh dialer (proxy-wasm callouts to service clusters); set once the proxy exists. */
  dialService?: ServiceDial | undefined;
}

export class L7Host {
  readonly host: FilterHost;
  private watcher: FilterWatcher | undefined;
  /** The services of the snapshot being served: proxy-wasm callout clusters that name a service
   * resolve against it at call time. */
  private services: readonly Service[] = [];
  private pick = 0;

  constructor(readonly opts: L7HostOptions) {
    const registry = defaultRegistry();
    registerProxyWasm(registry, {
      nodeId: opts.nodeName ?? "weft",
      // Per request the local workload's NAME/NAMESPACE/SERVICE_ACCOUNT overlay these
      // (src/filters/proxy_wasm/properties.ts).
      nodeMetadata: {
        NODE_NAME: opts.nodeName ?? "weft",
        PROXY_CONFIG: {},
        ISTIO_VERSION: "weft",
        // The keys istio-agent tells metadata_exchange to send to peers.
        EXCHANGE_KEYS:
          "NAME,NAMESPACE,INSTANCE_IPS,LABELS,OWNER,PLATFORM_METADATA,WORKLOAD_NAME,MESH_ID,SERVICE_ACCOUNT,CLUSTER_ID",
        MESH_ID: opts.trustDomain ?? "cluster.local",
        CLUSTER_ID: "Kubernetes",
        ...opts.nodeMetadata,
      },
      resolveService: (name, port) => this.resolveService(name, port),
      // Service clusters travel the mesh through the node's upstream dialer once it is wired.
      dialService: (name, port, local) =>
        this.opts.dialService
          ? this.opts.dialService(name, port, local)
          : Promise.reject(new Error("no mesh dialer wired")),
    });
    registerExtAuthz(
      registry,
      (name, port, local) =>
        this.opts.dialService
          ? this.opts.dialService(name, port, local)
          : Promise.reject(new Error("no mesh dialer wired")),
    );
    this.host = new FilterHost(registry);
  }

  /** "name", "name.namespace" or the hostname, and a service port (default: the first) →
   * one endpoint's "address:targetPort" (round robin), dialled directly. */
  private resolveService(name: string, port: number | undefined): string | undefined {
    const svc = this.services.find((s) =>
      s.hostname === name || s.name === name || `${s.name}.${s.namespace}` === name
    );
    const p = port === undefined ? svc?.ports[0] : svc?.ports.find((x) => x.port === port);
    if (!svc || !p || svc.endpoints.length === 0) return undefined;
    const ep = svc.endpoints[this.pick++ % svc.endpoints.length]!;
    return ep.address.includes(":")
      ? `[${ep.address}]:${p.targetPort}`
      : `${ep.address}:${p.targetPort}`;
  }

  chainsFor(svc: ServiceConfig, cfg: WeftConfig): { inbound: FilterRef[]; outbound: FilterRef[] } {
    const fp = firstPartyChains(svc, cfg);
    const user = pluginFilters(svc);
    return {
      inbound: [...fp.inbound, ...user.inbound],
      outbound: [...fp.outbound, ...user.outbound],
    };
  }

  /** Scope xDS first-party refs, load every filter, start the dev watcher once. */
  async prepare(snapshot: Snapshot): Promise<Snapshot> {
    const services: Service[] = [];
    for (const s of snapshot.services) {
      services.push({
        ...s,
        inboundFilters: s.inboundFilters.map((r) => scopeFirstParty(r, s)),
        outboundFilters: s.outboundFilters.map((r) => scopeFirstParty(r, s)),
      });
    }
    scopeCollisions(services);
    await this.host.apply(services.flatMap((s) => [...s.inboundFilters, ...s.outboundFilters]));
    this.services = services;
    if (this.opts.dev && !this.watcher && this.host.names().length > 0) {
      this.watcher = watchFilters(this.host);
    }
    return Object.freeze({ ...snapshot, services });
  }

  resolver(): FilterResolver {
    return this.host;
  }

  reload(name: string): Promise<Record<string, unknown>> {
    return this.host.reload(name).then((r) => ({ ...r }));
  }

  summary(): Record<string, unknown>[] {
    return this.host.summary();
  }

  close(): void {
    this.watcher?.close();
    this.host.close();
  }
}
