/**
 * The server side of one ADS stream, Delta or SotW (xds.md §17 checklist): per type the
 * subscription (explicit names, wildcard incl. legacy), what the client holds (Delta) or the
 * last sent version and nonce (SotW); NACKs detected by error_detail and never answered with a
 * resend; stale SotW nonces ignored; Delta subscription changes honoured whatever the nonce;
 * pushes in make-before-break order with stale clusters/endpoints removed last.
 */
import { create } from "@bufbuild/protobuf";
import { logger } from "../../core/mod.ts";
import {
  type DeltaDiscoveryRequest,
  DeltaDiscoveryResponseSchema,
  type DiscoveryRequest,
  DiscoveryResponseSchema,
} from "../proto.ts";
import { xdsPushes, xdsServerNacks } from "../metrics.ts";
import { CLUSTER, ENDPOINT, SOTW_FULL_STATE, TYPE_ORDER } from "../type_urls.ts";
import type { Built, NodeResources } from "./build.ts";

const log = logger("xds_server");

interface TypeSub {
  wildcard: boolean;
  everSubscribed: boolean;
  /** SotW: some request of this type named resources (ends legacy wildcard). */
  named: boolean;
  names: Set<string>;
  /** Delta: name → version the client holds. */
  held: Map<string, string>;
  /** Delta: the resource map the client was last brought up to date with, removals included
   * (the control plane reuses a type's map while nothing of that type changed). */
  syncedWith: ReadonlyMap<string, unknown> | undefined;
  /** SotW. */
  lastNonce: string;
  lastVersion: string | undefined;
  /** SotW: what the last response carried (a full-state push may keep stale ones a while). */
  sent: ReadonlyMap<string, Built>;
  ackedVersion: string;
}

export type Send = (m: unknown) => void;

export class AdsServerStream {
  nodeId: string | undefined;
  private readonly subs = new Map<string, TypeSub>();
  private nonce = 0;
  nacks = 0;

  constructor(
    readonly mode: "delta" | "sotw",
    private readonly resourcesFor: (nodeId: string) => NodeResources,
    private readonly send: Send,
  ) {}

  private sub(t: string): TypeSub {
    let s = this.subs.get(t);
    if (!s) {
      this.subs.set(
        t,
        s = {
          wildcard: false,
          everSubscribed: false,
          named: false,
          names: new Set(),
          held: new Map(),
          syncedWith: undefined,
          lastNonce: "",
          lastVersion: undefined,
          sent: new Map(),
          ackedVersion: "",
        },
      );
    }
    return s;
  }

  onSotw(req: DiscoveryRequest): void {
    // Identity comes from the first message only (§10); a later node cannot change it.
    if (this.nodeId === undefined) this.nodeId = req.node?.id ?? "";
    log.debug("sotw request", {
      type: req.typeUrl,
      names: req.resourceNames,
      version: req.versionInfo,
      nonce: req.responseNonce,
      nack: req.errorDetail?.message,
    });
    const s = this.sub(req.typeUrl);
    if (req.responseNonce && req.responseNonce !== s.lastNonce) return; // stale (§4.7)
    const nacked = req.errorDetail !== undefined;
    if (nacked) {
      this.nacks++;
      xdsServerNacks.inc({ url: req.typeUrl });
      log.warn("client NACK", {
        node: this.nodeId,
        type: req.typeUrl,
        detail: req.errorDetail?.message,
      });
    } else if (req.responseNonce) s.ackedVersion = req.versionInfo;
    const names = new Set(req.resourceNames.filter((n) => n !== "*"));
    // Legacy wildcard lasts while every request of this type has been empty (§5).
    s.named ||= req.resourceNames.length > 0;
    const wildcard = req.resourceNames.includes("*") || !s.named;
    const grew = [...names].some((n) => !s.names.has(n)) || (wildcard && !s.wildcard);
    s.everSubscribed = true;
    s.names = names;
    s.wildcard = wildcard;
    // After a NACK only a grown subscription is answered: never resend the same set (§4.10).
    if (nacked && !grew) return;
    this.pushSotw(req.typeUrl, !req.responseNonce || grew);
  }

  /** `keepStale`: a full-state type also carries what it last sent and no longer has, so that a
   * cluster is removed only after the listeners and routes stop naming it (§8). */
  private pushSotw(t: string, force: boolean, keepStale = false): void {
    const s = this.sub(t);
    if (!s.everSubscribed) return;
    const all = this.resourcesFor(this.nodeId ?? "").get(t) ?? new Map();
    const picked: [string, Built][] = [...all].filter(([n]) => s.wildcard || s.names.has(n));
    if (keepStale && SOTW_FULL_STATE.has(t)) {
      for (const [n, b] of s.sent) {
        if (!all.has(n) && (s.wildcard || s.names.has(n))) picked.push([n, b]);
      }
    }
    if (!SOTW_FULL_STATE.has(t) && picked.length === 0 && !force) return;
    const version = picked.map(([n, b]) => `${n}@${b.version}`).join(",");
    if (!force && version === s.lastVersion) return;
    s.lastVersion = version;
    s.sent = new Map(picked);
    s.lastNonce = String(++this.nonce);
    xdsPushes.inc({ url: t });
    log.debug("sotw push", { type: t, names: picked.map(([n]) => n), nonce: s.lastNonce });
    this.send(create(DiscoveryResponseSchema, {
      typeUrl: t,
      versionInfo: hashText(version),
      nonce: s.lastNonce,
      resources: picked.map(([, b]) => b.any),
    }));
  }

  onDelta(req: DeltaDiscoveryRequest): void {
    if (this.nodeId === undefined) this.nodeId = req.node?.id ?? "";
    const s = this.sub(req.typeUrl);
    s.syncedWith = undefined; // the subscription or what the client holds may change here
    for (const [n, v] of Object.entries(req.initialResourceVersions)) s.held.set(n, v);
    const forced = new Set<string>();
    for (const n of req.resourceNamesSubscribe) {
      if (n === "*") s.wildcard = true;
      else {
        s.names.add(n);
        forced.add(n);
      }
    }
    const dropped: string[] = [];
    for (const n of req.resourceNamesUnsubscribe) {
      if (n === "*") s.wildcard = false;
      else if (s.names.delete(n)) dropped.push(n);
    }
    // A name unsubscribed but still covered by the wildcard is answered in `resources`
    // (one not covered lands in removed_resources below), xds.md §5.
    if (s.wildcard) { for (const n of dropped) forced.add(n); }
    if (!s.everSubscribed && req.resourceNamesSubscribe.length === 0 && !req.responseNonce) {
      s.wildcard = true;
    }
    s.everSubscribed = true;
    if (req.errorDetail) {
      this.nacks++;
      xdsServerNacks.inc({ url: req.typeUrl });
      log.warn("client NACK", {
        node: this.nodeId,
        type: req.typeUrl,
        detail: req.errorDetail.message,
      });
    }
    const changedSub =
      req.resourceNamesSubscribe.length + req.resourceNamesUnsubscribe.length > 0 ||
      Object.keys(req.initialResourceVersions).length > 0;
    if (req.responseNonce && !changedSub) return; // plain ACK/NACK
    this.pushDelta(req.typeUrl, forced, true, !req.responseNonce);
  }

  /** Send what the client lacks; `removals` false defers deletions (make-before-break). */
  private pushDelta(
    t: string,
    forced: ReadonlySet<string>,
    removals: boolean,
    always: boolean,
  ): void {
    const s = this.sub(t);
    if (!s.everSubscribed) return;
    const all = this.resourcesFor(this.nodeId ?? "").get(t) ?? new Map();
    // A mesh push over an unchanged type: nothing to compare (10 000 Address resources).
    if (all === s.syncedWith && forced.size === 0 && !always) return;
    const inScope = (n: string): boolean => s.wildcard || s.names.has(n);
    const resources = [];
    for (const [n, b] of all) {
      if (!inScope(n)) continue;
      if (s.held.get(n) === b.version && !forced.has(n)) continue;
      resources.push({ name: n, version: b.version, resource: b.any });
      s.held.set(n, b.version);
    }
    const removed: string[] = [];
    if (removals) {
      for (const n of [...s.held.keys()]) {
        if (!all.has(n) || !inScope(n)) {
          removed.push(n);
          s.held.delete(n);
        }
      }
      for (const n of forced) if (!all.has(n) && !removed.includes(n)) removed.push(n);
      s.syncedWith = all;
    } else s.syncedWith = undefined;
    if (resources.length === 0 && removed.length === 0 && !always) return;
    xdsPushes.inc({ url: t });
    this.send(create(DeltaDiscoveryResponseSchema, {
      typeUrl: t,
      nonce: String(++this.nonce),
      systemVersionInfo: String(this.nonce),
      resources,
      removedResources: removed,
    }));
  }

  /** The mesh changed: push every subscribed type in dependency order. */
  pushAll(): void {
    if (!this.nodeId && this.nodeId !== "") return;
    if (this.mode === "sotw") {
      // Make-before-break: new clusters (stale ones kept) → endpoints → listeners → routes,
      // then the clusters again without the stale ones.
      for (const t of TYPE_ORDER) if (this.subs.has(t)) this.pushSotw(t, false, t === CLUSTER);
      if (this.subs.has(CLUSTER)) this.pushSotw(CLUSTER, false);
      return;
    }
    const late = [CLUSTER, ENDPOINT];
    for (const t of TYPE_ORDER) {
      if (this.subs.has(t)) this.pushDelta(t, new Set(), !late.includes(t), false);
    }
    for (const t of late) if (this.subs.has(t)) this.pushDelta(t, new Set(), true, false);
  }
}

function hashText(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}
