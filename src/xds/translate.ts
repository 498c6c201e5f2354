/**
 * Accepted xDS resources → one immutable core Snapshot. Listeners are served only when warm
 * (their routes, clusters, endpoints and ECDS configs are all present, xds.md §8); a listener
 * whose update is still warming keeps serving its last warm translation.
 */
import type { AuthorizationPolicy, FilterRef, Service, Snapshot } from "../core/mod.ts";
import type { ListenerValue } from "./resources/listener.ts";
import type { ResourceStore } from "./store.ts";
import { AddressTranslation } from "./translate_addresses.ts";
import {
  dependencies,
  type Fragment,
  fragment,
  inboundChain,
  merge,
} from "./translate_listener.ts";
import { AUTHORIZATION, LISTENER } from "./type_urls.ts";

/** What the snapshot takes from bootstrap rather than xDS. */
export type SnapshotBase = Omit<Snapshot, "version" | "workloads" | "services" | "policies">;

export class Translator {
  private readonly lastWarm = new Map<string, Fragment>();
  private readonly addressView: AddressTranslation;
  /** Listeners (by value) waiting for dependencies, since when. */
  private readonly warming = new Map<string, { value: ListenerValue; since: number }>();

  /** `initialFetchTimeoutMs` (Envoy's default 15 s; 0 = wait forever): after it a listener
   * serves without what is missing — no endpoints for a missing cluster, HTTP 500 for a
   * missing ECDS filter config (Envoy's NoFilterConfigFound). */
  constructor(
    private readonly base: SnapshotBase,
    private readonly initialFetchTimeoutMs = 15_000,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.addressView = new AddressTranslation(base.node);
  }

  /** When a warming listener times out next (then build again), or undefined. */
  nextDeadline(): number | undefined {
    if (this.initialFetchTimeoutMs <= 0) return undefined;
    let min: number | undefined;
    for (const w of this.warming.values()) {
      const d = w.since + this.initialFetchTimeoutMs;
      if (min === undefined || d < min) min = d;
    }
    return min;
  }

  build(store: ResourceStore, version: string): Snapshot {
    const frags: Fragment[] = [];
    const live = new Set<string>();
    const inbound = new Map<string, FilterRef[]>();
    for (const [name, l] of store.values<ListenerValue>(LISTENER)) {
      if (l.inbound) {
        // Named for this node, or (a per-node control plane) for no node in particular.
        if (l.kind === "http" && (l.node === undefined || l.node === this.base.node.name)) {
          inbound.set(l.hostname, inboundChain(l));
        }
        continue;
      }
      live.add(name);
      let f = this.warmFragment(store, name, l);
      if (f) this.warming.delete(name);
      else {
        const w = this.warming.get(name);
        if (w?.value !== l) this.warming.set(name, { value: l, since: this.now() });
        const since = this.warming.get(name)!.since;
        if (this.initialFetchTimeoutMs > 0 && this.now() - since >= this.initialFetchTimeoutMs) {
          f = fragment(store, l, true);
        }
      }
      if (f) this.lastWarm.set(name, f);
      const use = f ?? this.lastWarm.get(name);
      if (use) frags.push(use);
    }
    for (const k of this.lastWarm.keys()) if (!live.has(k)) this.lastWarm.delete(k);
    for (const k of this.fragments.keys()) if (!live.has(k)) this.fragments.delete(k);
    for (const k of this.warming.keys()) if (!live.has(k)) this.warming.delete(k);
    const addr = this.addressView.addresses(store);
    return Object.freeze({
      ...this.base,
      version,
      workloads: addr.workloads,
      services: Object.freeze(
        this.addressView.withAddressServices(merge(frags, this.merged)).map((s) => {
          const chain = inbound.get(s.hostname);
          return chain ? Object.freeze({ ...s, inboundFilters: Object.freeze(chain) }) : s;
        }),
      ),
      policies: Object.freeze(this.policies(store)),
    });
  }

  private policies(store: ResourceStore): AuthorizationPolicy[] {
    const out = [];
    for (const [, p] of store.values<AuthorizationPolicy>(AUTHORIZATION)) {
      out.push(
        p.namespace === "" ? Object.freeze({ ...p, namespace: this.base.rootNamespace }) : p,
      );
    }
    return out;
  }

  /** Each hostname's merged service with the fragments it was made of (see merge). */
  private readonly merged = new Map<string, { list: Fragment[]; service: Service }>();

  /** Each listener's warm fragment with the resources it was made of: a push that changed one
   * route re-translates that listener only. */
  private readonly fragments = new Map<string, { deps: unknown[]; frag: Fragment }>();

  private warmFragment(store: ResourceStore, name: string, l: ListenerValue): Fragment | undefined {
    const deps = dependencies(store, l);
    const m = this.fragments.get(name);
    if (m && m.deps.length === deps.length && m.deps.every((d, i) => d === deps[i])) return m.frag;
    const frag = fragment(store, l, false);
    if (frag) this.fragments.set(name, { deps, frag });
    else this.fragments.delete(name);
    return frag;
  }
}
