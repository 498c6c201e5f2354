/**
 * The ADS client protocol for one stream, Delta or SotW, transport-free so tests can drive it
 * message by message (shared/reference/xds.md §4-§9): ACK = new version + nonce; NACK = previous
 * version + error_detail naming every rejected resource; per-type versions; wildcard for
 * LDS/CDS/Address/Authorization, explicit names for RDS/EDS/ECDS derived from what is held;
 * SotW full-state removal for LDS/CDS; Delta removed_resources; Delta resubscribe with
 * initial_resource_versions; SotW resubscribe with the last accepted version.
 */
import {
  createDeltaDiscoveryRequest,
  createDiscoveryRequest,
  createStatus,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type Node,
} from "./node_proto.ts";
import { applyResources, removeResources } from "./apply.ts";
import { RESOURCE_TYPES } from "./resources/registry.ts";
import type { ResourceStore } from "./store.ts";
import type { ExtensionValue } from "./resources/extension_config.ts";
import type { ListenerValue } from "./resources/listener.ts";
import {
  CLUSTER,
  EXTENSION_CONFIG,
  LISTENER,
  ROUTE,
  SOTW_FULL_STATE,
  TYPE_ORDER,
} from "./type_urls.ts";
import { ENDPOINT } from "./type_urls.ts";

export type Mode = "delta" | "sotw";
export const WILDCARD_TYPES: ReadonlySet<string> = new Set(
  TYPE_ORDER.filter((t) => ![ROUTE, ENDPOINT, EXTENSION_CONFIG].includes(t)),
);
/** gRPC INVALID_ARGUMENT: the code weft NACKs with. */
const INVALID_ARGUMENT = 3;

/** State that outlives a stream: accepted SotW versions per type (resent on reconnect). */
export class ProtocolState {
  readonly accepted = new Map<string, string>();
  /** Delta `Resource.ttl`: per type, name → when the resource expires (performance.now ms). */
  private readonly ttl = new Map<string, Map<string, number>>();
  constructor(
    readonly store: ResourceStore,
    readonly types: readonly string[] = TYPE_ORDER,
    readonly now: () => number = () => performance.now(),
  ) {}

  /** Note a resource's TTL (xds.md §12): `ttlMs` undefined clears it. */
  setTtl(typeUrl: string, name: string, ttlMs: number | undefined): void {
    let m = this.ttl.get(typeUrl);
    if (ttlMs === undefined) {
      m?.delete(name);
      return;
    }
    if (!m) this.ttl.set(typeUrl, m = new Map());
    m.set(name, this.now() + ttlMs);
  }

  hasTtl(typeUrl: string, name: string): boolean {
    return this.ttl.get(typeUrl)?.has(name) ?? false;
  }

  /** Remove the resources whose TTL ran out; true when something was removed. */
  expire(): boolean {
    const now = this.now();
    let changed = false;
    for (const [t, m] of this.ttl) {
      const gone = [...m].filter(([, at]) => at <= now).map(([n]) => n);
      for (const n of gone) m.delete(n);
      changed = removeResources(this.store, t, gone) || changed;
    }
    return changed;
  }

  /** When the next TTL runs out (performance.now ms), if any. */
  nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const m of this.ttl.values()) {
      for (const at of m.values()) if (next === undefined || at < next) next = at;
    }
    return next;
  }

  /** Names of an explicit type (RDS, ECDS from listeners; EDS from clusters) that what we
   * hold references. */
  desired(typeUrl: string): Set<string> {
    const want = new Set<string>();
    const from = typeUrl === ROUTE || typeUrl === EXTENSION_CONFIG
      ? LISTENER
      : typeUrl === ENDPOINT
      ? CLUSTER
      : "";
    const type = RESOURCE_TYPES.get(from);
    if (!type) return want;
    for (const [, v] of this.store.values(from)) {
      for (const d of type.deps(v)) if (d.typeUrl === typeUrl) want.add(d.name);
    }
    return want; // clusters named by routes need no subscription: CDS is wildcard
  }

  /** ECDS: a config whose type is not among the `type_urls` every listener naming it allows is
   * rejected (Envoy's config_fail), so the last good config stays (xds.md §13). */
  readonly check = (typeUrl: string) => (name: string, value: unknown): string | undefined => {
    if (typeUrl !== EXTENSION_CONFIG) return undefined;
    const t = (value as ExtensionValue).typeUrl;
    for (const [, l] of this.store.values<ListenerValue>(LISTENER)) {
      if (l.kind !== "http") continue;
      for (const e of l.chain) {
        if (e.kind !== "ecds" || e.name !== name || e.typeUrls.length === 0) continue;
        if (!e.typeUrls.includes(t)) {
          return `config type ${t} is not one of the type_urls (${e.typeUrls.join(", ")})`;
        }
      }
    }
    return undefined;
  };
}

export interface ResponseOutcome {
  readonly changed: boolean;
  readonly nack: string | undefined;
}

export type Outgoing = DiscoveryRequest | DeltaDiscoveryRequest;

export class AdsStreamProtocol {
  private nodeSent = false;
  /** Names subscribed on this stream, per explicit type. */
  private readonly subscribed = new Map<string, Set<string>>();
  private readonly nonces = new Map<string, string>();
  /** Types with a subscription not yet answered on this stream. */
  private readonly pending = new Set<string>();

  /** Every type subscribed on this stream has been answered (ztunnel's readiness rule). */
  get synced(): boolean {
    return this.pending.size === 0;
  }

  constructor(
    readonly mode: Mode,
    private readonly node: Node,
    private readonly state: ProtocolState,
    private readonly send: (m: Outgoing) => void,
  ) {}

  private node1(): Node | undefined {
    if (this.nodeSent) return undefined;
    this.nodeSent = true;
    return this.node;
  }

  /** First requests of a stream, in dependency order. */
  start(): void {
    for (const t of this.state.types) {
      if (WILDCARD_TYPES.has(t)) this.subscribe(t, new Set(["*"]), true);
      else {
        const want = this.state.desired(t);
        if (want.size) this.subscribe(t, want, true);
      }
    }
  }

  private subscribe(typeUrl: string, names: Set<string>, initial: boolean): void {
    const before = this.subscribed.get(typeUrl) ?? new Set<string>();
    this.subscribed.set(typeUrl, names);
    if ([...names].some((n) => !before.has(n))) this.pending.add(typeUrl);
    if (this.mode === "delta") {
      const sub = [...names].filter((n) => initial || !before.has(n));
      const unsub = [...before].filter((n) => !names.has(n));
      this.send(createDeltaDiscoveryRequest({
        node: this.node1(),
        typeUrl,
        resourceNamesSubscribe: sub,
        resourceNamesUnsubscribe: unsub,
        initialResourceVersions: initial ? this.state.store.versions(typeUrl) : {},
      }));
      return;
    }
    this.send(createDiscoveryRequest({
      node: this.node1(),
      typeUrl,
      versionInfo: this.state.accepted.get(typeUrl) ?? "",
      // SotW wildcard uses the legacy empty list, which every server understands.
      resourceNames: WILDCARD_TYPES.has(typeUrl) ? [] : [...names],
      responseNonce: this.nonces.get(typeUrl) ?? "",
    }));
  }

  /** Re-derive RDS/EDS/ECDS names from what is held and send subscription changes; drop
   * resources no longer referenced (SotW has no other deletion signal for them). */
  private resubscribeDependents(): boolean {
    let changed = false;
    for (const t of this.state.types) {
      if (WILDCARD_TYPES.has(t)) continue;
      const want = this.state.desired(t);
      const have = this.subscribed.get(t) ?? new Set<string>();
      if (want.size === have.size && [...want].every((n) => have.has(n))) continue;
      if (want.size === 0 && !this.subscribed.has(t)) continue;
      const gone = [...this.state.store.of(t).keys()].filter((n) => !want.has(n));
      changed = removeResources(this.state.store, t, gone) || changed;
      this.subscribe(t, want, false);
    }
    return changed;
  }

  /** A response of a type this stream never subscribed to (a server bug or an attacker) is
   * NACKed and nothing in it is applied; undefined when the type was subscribed. */
  private notSubscribed(t: string): string | undefined {
    if (this.subscribed.has(t)) return undefined;
    return RESOURCE_TYPES.has(t) ? `type ${t} was not subscribed` : `unknown type URL ${t}`;
  }

  onSotw(res: DiscoveryResponse): ResponseOutcome {
    const t = res.typeUrl;
    this.pending.delete(t);
    this.nonces.set(t, res.nonce);
    const wildcard = WILDCARD_TYPES.has(t);
    const asked = this.subscribed.get(t) ?? new Set<string>();
    const unasked = this.notSubscribed(t);
    const r = applyResources(
      this.state.store,
      t,
      res.resources.map((any) => ({ name: undefined, version: res.versionInfo, any })),
      (n) => !unasked && (wildcard || asked.has(n)),
      this.state.check(t),
    );
    let changed = r.changed;
    // Full state, but only from a well-formed response: a resource rejected before its name
    // could be read may be one we hold, and a name sent twice makes the set ambiguous (Envoy
    // rejects such a response whole); what is held keeps its last good value (§4.3, §4.11).
    const wellFormed = !r.unnamed && !r.duplicates;
    if (SOTW_FULL_STATE.has(t) && RESOURCE_TYPES.has(t) && !unasked && wellFormed) {
      const gone = [...this.state.store.of(t).keys()].filter((n) => !r.seen.has(n));
      changed = removeResources(this.state.store, t, gone) || changed;
    }
    const errors = unasked ? [unasked, ...r.errors.filter((e) => e !== unasked)] : r.errors;
    const nack = errors.length ? errors.join("; ") : undefined;
    if (!nack) this.state.accepted.set(t, res.versionInfo);
    this.send(createDiscoveryRequest({
      typeUrl: t,
      versionInfo: this.state.accepted.get(t) ?? "",
      resourceNames: wildcard ? [] : [...asked],
      responseNonce: res.nonce,
      errorDetail: nack ? createStatus({ code: INVALID_ARGUMENT, message: nack }) : undefined,
    }));
    changed = this.resubscribeDependents() || changed;
    return { changed, nack };
  }

  onDelta(res: DeltaDiscoveryResponse): ResponseOutcome {
    const t = res.typeUrl;
    this.pending.delete(t);
    const wildcard = WILDCARD_TYPES.has(t);
    const asked = this.subscribed.get(t) ?? new Set<string>();
    const unasked = this.notSubscribed(t);
    const held = this.state.store.of(t);
    // A TTL heartbeat: a held name, its version, a TTL and no body (§12) only renews the TTL.
    const beat = (x: DeltaDiscoveryResponse["resources"][number]): boolean =>
      !unasked && x.resource === undefined && x.ttl !== undefined &&
      held.get(x.name)?.version === x.version && this.state.hasTtl(t, x.name);
    const items = res.resources.filter((x) => !beat(x));
    for (const x of res.resources) if (beat(x)) this.state.setTtl(t, x.name, ttlMs(x.ttl!));
    const r = applyResources(
      this.state.store,
      t,
      items.map((x) => ({ name: x.name, version: x.version, any: x.resource })),
      // Names never asked for are not kept: RDS/EDS/ECDS are explicit subscriptions.
      (n) => !unasked && (wildcard || asked.has(n)),
      this.state.check(t),
    );
    let changed = r.changed;
    if (RESOURCE_TYPES.has(t) && !unasked) {
      for (const x of items) {
        // What was applied now carries its TTL (or none); a rejected one keeps its old state.
        if (r.accepted.has(x.name)) {
          this.state.setTtl(t, x.name, x.ttl ? ttlMs(x.ttl) : undefined);
        }
      }
      for (const n of res.removedResources) this.state.setTtl(t, n, undefined);
      changed = removeResources(this.state.store, t, res.removedResources) || changed;
    }
    const errors = unasked ? [unasked, ...r.errors.filter((e) => e !== unasked)] : r.errors;
    const nack = errors.length ? errors.join("; ") : undefined;
    this.send(createDeltaDiscoveryRequest({
      typeUrl: t,
      responseNonce: res.nonce,
      errorDetail: nack ? createStatus({ code: INVALID_ARGUMENT, message: nack }) : undefined,
    }));
    changed = this.resubscribeDependents() || changed;
    return { changed, nack };
  }
}

function ttlMs(d: { seconds: bigint; nanos: number }): number {
  return Number(d.seconds) * 1000 + d.nanos / 1e6;
}
