/**
 * The loaded half of L7Wiring: the filter host (components + proxy-wasm, jco and wasm), the
 * first-party plugin chains built from weft.yaml (or mapped from xDS) and the dev watcher.
 * Imported only by l7_wiring.ts, dynamically, when some service has filters: a node without L7
 * services never loads jco or the wasm tooling. Nothing here compiles: first-party plugins are
 * prebuilt (src/filters registers their factories).
 */
import type { FilterRef, FilterResolver, Service, Snapshot } from "../core/mod.ts";
import { defaultRegistry, FilterHost, registerProxyWasm, watchFilters } from "../filters/mod.ts";
import type { FilterWatcher } from "../filters/mod.ts";
import type { ServiceConfig, WeftConfig } from "./config_types.ts";
import { firstPartyChains, scopeFirstParty } from "./first_party_refs.ts";
import { pluginFilters } from "./snapshot_builder.ts";

export class L7Host {
  readonly host: FilterHost;
  private watcher: FilterWatcher | undefined;

  constructor(readonly opts: { dev: boolean; nodeName?: string }) {
    const registry = defaultRegistry();
    registerProxyWasm(registry, { nodeId: opts.nodeName ?? "weft" });
    this.host = new FilterHost(registry);
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
    await this.host.apply(services.flatMap((s) => [...s.inboundFilters, ...s.outboundFilters]));
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
