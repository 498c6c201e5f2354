/**
 * Istio Address resources (ztunnel's workload API) → this node's workloads and the services known
 * only from them, memoised per store generation so an update that did not touch an Address (a
 * route edit) does not walk 10 000 workloads.
 */
import type { Endpoint, Service, Snapshot } from "../core/mod.ts";
import type { AddressValue } from "./resources/address.ts";
import { identityOf } from "./resources/address.ts";
import type { ResourceStore } from "./store.ts";
import { ADDRESS } from "./type_urls.ts";

/** The Address resources of one build and what was made of them. */
export interface AddressMemo {
  readonly names: string[];
  readonly values: AddressValue[];
  /** Indexes of the service Addresses among `values`. */
  readonly serviceAt: number[];
  readonly workloads: Snapshot["workloads"];
  /** Endpoints by service key, built on first need: only a service known from Address alone
   * uses them (an LDS service has its endpoints from EDS), so a mesh whose services all come
   * over LDS never makes 10 000 Endpoint objects it would not read. */
  byService: ReadonlyMap<string, readonly Endpoint[]> | undefined;
  readonly store: ResourceStore;
  readonly services: Map<AddressValue, Service>;
}

export class AddressTranslation {
  constructor(private readonly node: Snapshot["node"]) {}

  /** The Address resources of the last build and what was made of them: an update that did
   * not touch them (a route edit) reuses all of it instead of walking 10 000 workloads. */
  private addressMemo: AddressMemo | undefined;

  private addressGen: { store: ResourceStore; gen: number } | undefined;

  addresses(store: ResourceStore): AddressMemo {
    // The same store and no Address change since: not even a walk (a route edit).
    const gen = store.generation(ADDRESS);
    if (this.addressMemo && this.addressGen?.store === store && this.addressGen.gen === gen) {
      return this.addressMemo;
    }
    this.addressGen = { store, gen };
    const names: string[] = [];
    const values: AddressValue[] = [];
    for (const [n, a] of store.values<AddressValue>(ADDRESS)) {
      names.push(n);
      values.push(a);
    }
    const m = this.addressMemo;
    if (
      m && m.values.length === values.length &&
      values.every((v, i) => v === m.values[i] && names[i] === m.names[i])
    ) return m;
    return this.addressMemo = {
      names,
      values,
      serviceAt: values.flatMap((v, i) => v.kind === "service" ? [i] : []),
      workloads: Object.freeze(this.workloads(store)),
      byService: undefined,
      store,
      services: new Map(),
    };
  }

  private workloads(store: ResourceStore): Snapshot["workloads"][number][] {
    const out = [];
    for (const [, a] of store.values<AddressValue>(ADDRESS)) {
      if (a.kind !== "workload" || a.node !== this.node.name || !a.workload.address) continue;
      out.push(
        Object.freeze({ ...a.workload, identity: identityOf(a, this.node.trustDomain) }),
      );
    }
    return out;
  }

  /** Services known only from Istio Address resources (ztunnel's workload API): endpoints are
   * the healthy workloads naming them. Services from LDS win for the same hostname. */
  withAddressServices(services: Service[]): Service[] {
    const have = new Map(services.map((s, i) => [s.hostname, i]));
    const memo = this.addressMemo!;
    for (const i of memo.serviceAt) {
      const a = memo.values[i]!;
      if (a.kind !== "service") continue;
      const at = have.get(a.hostname);
      if (at !== undefined) {
        // The LDS service keeps its routes and endpoints; the Address's SANs still widen the
        // identities its endpoints may present (ztunnel reads them from the Service, hbone.md §4).
        if (a.subjectAltNames.length > 0) {
          services[at] = Object.freeze({ ...services[at]!, subjectAltNames: a.subjectAltNames });
        }
        continue;
      }
      let svc = memo.services.get(a);
      if (!svc) {
        memo.byService ??= this.endpointsByService(memo.store);
        svc = Object.freeze({
          name: a.name,
          namespace: a.namespace,
          hostname: a.hostname,
          vips: a.vips,
          ports: a.ports,
          endpoints: Object.freeze(memo.byService.get(memo.names[i]!) ?? []),
          subsets: Object.freeze([]),
          outboundFilters: Object.freeze([]),
          inboundFilters: Object.freeze([]),
          ...(a.subjectAltNames.length > 0 ? { subjectAltNames: a.subjectAltNames } : {}),
        });
        memo.services.set(a, svc);
      }
      services.push(svc);
    }
    return services;
  }

  private endpointsByService(store: ResourceStore): Map<string, Endpoint[]> {
    const byService = new Map<string, Endpoint[]>();
    for (const [, a] of store.values<AddressValue>(ADDRESS)) {
      if (a.kind !== "workload" || !a.healthy) continue;
      const w = a.workload;
      const ep: Endpoint = Object.freeze({
        workload: w.name,
        namespace: w.namespace,
        address: w.address,
        hboneAddress: a.hbone && w.address ? hostPort(w.address, this.node.hbonePort) : undefined,
        node: a.node || undefined,
        identity: identityOf(a, this.node.trustDomain),
        labels: w.labels,
        weight: a.capacity,
        // "" = unset: the node's own network (weft reads an unset network as local).
        ...(a.network ? { network: a.network } : {}),
        ...(a.networkGateway ? { networkGateway: a.networkGateway } : {}),
      });
      for (const key of a.services) {
        const list = byService.get(key);
        if (list) list.push(ep);
        else byService.set(key, [ep]);
      }
    }
    return byService;
  }
}

function hostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}
