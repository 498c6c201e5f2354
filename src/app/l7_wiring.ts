/**
 * L7 wiring: what the node agent knows of L7 filters. The filter host itself (l7_host.ts: jco,
 * wasm, proxy-wasm, first-party plugin builds) is loaded with a dynamic import only when a
 * config or snapshot gives some service a filter chain, so an L4-only node never pays for it
 * (tens of MB resident). `prepare` loads every filter of a snapshot before it is applied, so a
 * bad filter rejects the update (or the start) and the last good generation keeps serving.
 */
import { WeftError } from "../core/mod.ts";
import type { FilterRef, FilterResolver, HttpFilter, ServiceDial, Snapshot } from "../core/mod.ts";
import type { ServiceConfig, WeftConfig } from "./config_types.ts";
import type { L7Host, L7HostOptions } from "./l7_host.ts";

const isHttp = (svc: ServiceConfig): boolean => svc.ports.some((p) => p.protocol !== "TCP");

/** Whether weft.yaml may give `svc` a filter chain: WasmPlugins, or an HTTP service with routes
 * or under some AuthorizationPolicy or RequestAuthentication (a superset of what firstPartyChains turns into refs). */
export function serviceMayHaveFilters(svc: ServiceConfig, cfg: WeftConfig): boolean {
  return svc.plugins.length > 0 ||
    (isHttp(svc) &&
      (svc.http.length > 0 || cfg.authorizationPolicies.length > 0 ||
        (cfg.requestAuthentications?.length ?? 0) > 0));
}

function snapshotHasFilters(s: Snapshot): boolean {
  return s.services.some((svc) => svc.inboundFilters.length > 0 || svc.outboundFilters.length > 0);
}

export class L7Wiring {
  private host: L7Host | undefined;
  private loading: Promise<L7Host> | undefined;

  constructor(readonly opts: L7HostOptions) {}

  /** The node's mesh dialer for proxy-wasm callouts to services (set once the proxy exists). */
  setServiceDialer(dial: ServiceDial): void {
    this.opts.dialService = dial;
  }

  /** True once the filter host is loaded (some config or snapshot had filters). */
  get loaded(): boolean {
    return this.host !== undefined;
  }

  /** Load the filter host if `cfg` may need it; call before `chainsFor` runs on `cfg`. */
  async loadFor(cfg: WeftConfig): Promise<void> {
    if (cfg.services.some((s) => serviceMayHaveFilters(s, cfg))) await this.load();
  }

  private load(): Promise<L7Host> {
    if (!this.loading) {
      this.loading = import("./l7_host.ts").then(({ L7Host }) => {
        this.host = new L7Host(this.opts);
        return this.host;
      });
      this.loading.catch(() => (this.loading = undefined)); // a later snapshot may retry
    }
    return this.loading;
  }

  readonly chainsFor = (
    svc: ServiceConfig,
    cfg: WeftConfig,
  ): { inbound: FilterRef[]; outbound: FilterRef[] } => {
    if (this.host) return this.host.chainsFor(svc, cfg);
    if (serviceMayHaveFilters(svc, cfg)) {
      throw new Error(`L7Wiring: loadFor(cfg) must run before chainsFor (service ${svc.name})`);
    }
    return { inbound: [], outbound: [] };
  };

  /** Resolve first-party refs and load every filter (loading the host on the first filter). */
  async prepare(snapshot: Snapshot): Promise<Snapshot> {
    if (!this.host && !snapshotHasFilters(snapshot)) return Object.freeze({ ...snapshot });
    return await (await this.load()).prepare(snapshot);
  }

  /** The data path's resolver; it only sees refs `prepare` has loaded, so the host exists. */
  resolver(): FilterResolver {
    return {
      resolve: (ref: FilterRef): HttpFilter => {
        if (!this.host) throw new Error(`L7Wiring: filter ${ref.name} resolved before prepare`);
        return this.host.resolver().resolve(ref);
      },
    };
  }

  reload(name: string): Promise<Record<string, unknown>> {
    if (!this.host) {
      return Promise.reject(
        new WeftError("filter_not_found", `Cannot reload filter "${name}": no such filter`),
      );
    }
    return this.host.reload(name);
  }

  summary(): Record<string, unknown>[] {
    return this.host?.summary() ?? [];
  }

  close(): Promise<void> {
    this.host?.close();
    return Promise.resolve();
  }
}
