/**
 * In-pod capture (ztunnel's in-pod mode): for each enrolled pod, weft's listeners open INSIDE the
 * pod's network namespace: 15001 (outbound, redirected by the pod's nftables rules), 15006
 * (plaintext inbound, redirected) and 15008 (HBONE, on the pod's IP, presenting its identity).
 * A dual-stack pod gets 15001 and 15006 on 0.0.0.0 and on :: (IPv6 only, so IPv4 peers keep
 * their plain addresses) and one 15008 per address, each address naming its workload (as
 * ztunnel binds [::] in the pod and keys workloads by every address). The original destination
 * comes from SO_ORIGINAL_DST (IP6T_SO_ORIGINAL_DST for IPv6; on Deno from conntrack); deliveries
 * to the pod's application are dialled from inside the pod (src/core/netns.ts, netns_dial.ts).
 * The rules themselves belong to src/inpod.
 */
import * as net from "node:net";
import type { Snapshot, Workload } from "./snapshot.ts";
import type { ConnTable, L4Conn } from "./l4_conn.ts";
import { HboneServer, type InboundDeps } from "./hbone_server.ts";
import { handleOutbound, type OutboundDeps, type PodDial } from "./outbound.ts";
import { handlePlaintextInbound } from "./inbound_plain.ts";
import { dialInNetns } from "./netns_dial.ts";
import { canMark, closeNetns, listenInNetns, type Netns, openNetns, originalDst } from "./netns.ts";
import { dialTcp } from "./l4_conn.ts";
import { l4Metrics } from "./l4_telemetry.ts";
import { splitHostPort } from "./ip.ts";
import { ipFamily } from "./sockaddr.ts";
import { WeftError } from "./errors.ts";
import { logger } from "./log.ts";

const log = logger("inpod");
export const OUTBOUND_CAPTURE_PORT = 15001;
export const INBOUND_CAPTURE_PORT = 15006;

export interface PodEnrollment {
  /** Kubernetes pod UID (ZDS AddWorkload.uid). */
  readonly uid: string;
  /** Path of the pod's network namespace (CNI_NETNS). */
  readonly netnsPath: string;
  /** The pod's IPs (CNI result / ZDS): each names its workload in the snapshot; addresses no
   * workload has are not served (their traffic is refused), at least one must be. */
  readonly addresses: readonly string[];
}

export interface PodView {
  readonly uid: string;
  /** The first served address (IPv4 first). */
  readonly address: string;
  /** Every served address. */
  readonly addresses: readonly string[];
  readonly netns: string;
  readonly workload: string;
  readonly identity: string;
  readonly listeners: readonly string[];
}

interface Pod {
  readonly spec: PodEnrollment;
  readonly ns: Netns;
  /** Served addresses (IPv4 first), each with its workload and HBONE listener. */
  readonly addresses: readonly string[];
  readonly workloads: Map<string, Workload>;
  readonly servers: net.Server[];
  readonly hbone: HboneServer[];
}

function listenIn(
  ns: Netns,
  host: "0.0.0.0" | "::",
  port: number,
  onConn: (s: net.Socket) => void,
): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => {
    s.setNoDelay(true);
    // A dual-stack listener (Deno) reports an IPv4 peer as ::ffff:a.b.c.d; the data path and its
    // records know the pod by its plain IPv4 address.
    const peer = s.remoteAddress;
    if (peer?.startsWith("::ffff:")) {
      Object.defineProperty(s, "remoteAddress", { value: peer.slice(7), configurable: true });
    }
    onConn(s);
  });
  return new Promise((resolve, reject) => {
    server.once("error", (e) =>
      reject(
        new WeftError("listen_failed", `Cannot listen on :${port} in ${ns.path}: ${e.message}`),
      ));
    const opts = { port, host, ipv6Only: host === "::" };
    listenInNetns(ns, () => server.listen(opts, () => resolve(server)), reject);
  });
}

/** The capture listeners' addresses: one per family the pod is served on; where the runtime
 * has no IPv6-only listeners (Deno's node:net ignores ipv6Only), one dual-stack `::`. */
function wildcards(addresses: readonly string[]): ("0.0.0.0" | "::")[] {
  const fam = new Set(addresses.map(ipFamily));
  if (fam.has(6) && !canMark()) return ["::"];
  return [...(fam.has(4) ? ["0.0.0.0" as const] : []), ...(fam.has(6) ? ["::" as const] : [])];
}

function sameAddresses(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function closeServer(s: net.Server): Promise<void> {
  return new Promise((r) => s.close(() => r()));
}

function hostOf(addr: string | undefined): string | undefined {
  return addr ? splitHostPort(addr)?.host : undefined;
}

export class PodCaptures {
  private readonly pods = new Map<string, Pod>();
  private readonly byIp = new Map<string, Pod>();

  constructor(
    private readonly snapshot: () => Snapshot,
    private readonly inbound: InboundDeps,
    private readonly outbound: OutboundDeps,
    private readonly conns: ConnTable,
  ) {}

  /** Dials from inside the enrolled pod with this IP (source = the pod, marked 0x539). Where
   * sockets cannot be marked (Deno), only dials the pod's rules let through unmarked (to the
   * HBONE port, to the pod itself) leave from the pod; the rest (passthrough) from the node,
   * as the pod's rules would otherwise send them back to weft. */
  dialerFrom(podIp: string): PodDial | undefined {
    const pod = this.byIp.get(podIp);
    if (!pod) return undefined;
    if (canMark()) return (host, port, ms, src) => dialInNetns(pod.ns, host, port, ms, src);
    const hbonePort = this.snapshot().node.hbonePort;
    return (host, port, ms) =>
      port === hbonePort || pod.workloads.has(host)
        ? dialInNetns(pod.ns, host, port, ms)
        : dialTcp(host, port, ms);
  }

  /** Enroll (or re-enroll) a pod: open its listeners inside its namespace. */
  async add(spec: PodEnrollment): Promise<PodView> {
    const snap = this.snapshot();
    const workloads = new Map<string, Workload>();
    for (const ip of spec.addresses) {
      const wl = snap.workloads.find((w) => w.address === ip);
      if (wl) workloads.set(ip, wl);
    }
    if (workloads.size === 0) {
      throw new WeftError(
        "inpod_unknown_workload",
        `Cannot enroll pod ${spec.uid}: no workload with address ${spec.addresses.join(" or ")}`,
        { hint: "add the workload to the config (or xDS) before the pod starts" },
      );
    }
    const addresses = [...workloads.keys()].sort((a, b) => ipFamily(a)! - ipFamily(b)!);
    const old = this.pods.get(spec.uid);
    // A repeated add (a ZDS snapshot after a restart) keeps the pod's listeners and connections.
    if (
      old && old.spec.netnsPath === spec.netnsPath && sameAddresses(old.addresses, addresses)
    ) {
      return this.view(old);
    }
    if (old) await this.remove(spec.uid, 0);
    const ns = openNetns(spec.netnsPath);
    const pod: Pod = { spec, ns, addresses, workloads, servers: [], hbone: [] };
    try {
      for (const host of wildcards(addresses)) {
        pod.servers.push(
          await listenIn(ns, host, OUTBOUND_CAPTURE_PORT, (s) => this.onOutbound(pod, s)),
        );
        pod.servers.push(
          await listenIn(ns, host, INBOUND_CAPTURE_PORT, (s) => this.onInbound(pod, s)),
        );
      }
      for (const ip of addresses) await this.startHbone(pod, workloads.get(ip)!, snap);
    } catch (e) {
      await this.closePod(pod);
      throw e;
    }
    this.pods.set(spec.uid, pod);
    for (const ip of addresses) this.byIp.set(ip, pod);
    const names = [...new Set([...workloads.values()].map((w) => w.name))];
    log.info("pod enrolled", {
      uid: spec.uid,
      address: addresses.join(","),
      workload: names.join(","),
    });
    return this.view(pod);
  }

  /** 15008 on one of the pod's addresses, presenting that address's workload identity. */
  private async startHbone(pod: Pod, wl: Workload, snap: Snapshot): Promise<void> {
    // A namespace that cannot be entered when Deno's deferred bind runs fails the start.
    let bindFailed: (e: unknown) => void = () => {};
    const failed = new Promise<never>((_, reject) => bindFailed = reject);
    const bind = (listen: () => void): void => listenInNetns(pod.ns, listen, bindFailed);
    const hbone = new HboneServer({ ...this.inbound, bind }, wl, snap.node.hbonePort);
    pod.hbone.push(hbone);
    await Promise.race([hbone.start(), failed]);
  }

  private onOutbound(pod: Pod, s: net.Socket): void {
    const dst = originalDst(s, pod.ns);
    if (!dst) {
      l4Metrics.refused.inc({ direction: "outbound", reason: "no_original_dst" });
      s.destroy();
      return;
    }
    void handleOutbound(this.outbound, s, dst.host, dst.port); // never rejects
  }

  private onInbound(pod: Pod, s: net.Socket): void {
    const dst = originalDst(s, pod.ns);
    const own = [OUTBOUND_CAPTURE_PORT, INBOUND_CAPTURE_PORT, this.snapshot().node.hbonePort];
    if (!dst || own.includes(dst.port)) {
      // Delivering to one of weft's own ports in the pod would loop back into this listener.
      const reason = dst ? "self_call" : "no_original_dst";
      l4Metrics.refused.inc({ direction: "inbound", reason });
      s.destroy();
      return;
    }
    // The pod's address the client dialled (its family's, should the kernel report another).
    const fam = ipFamily(dst.host);
    const to = pod.workloads.has(dst.host)
      ? dst.host
      : pod.addresses.find((a) => ipFamily(a) === fam);
    if (!to) {
      l4Metrics.refused.inc({ direction: "inbound", reason: "unknown_workload" });
      s.destroy();
      return;
    }
    handlePlaintextInbound(this.inbound, s, to, dst.port);
  }

  /** Remove a pod: listeners close, its connections get a graceful end (FIN both ways), and
   * whatever is still open after `graceMs` is closed. */
  async remove(uid: string, graceMs: number): Promise<boolean> {
    const pod = this.pods.get(uid);
    if (!pod) return false;
    this.pods.delete(uid);
    for (const ip of pod.addresses) if (this.byIp.get(ip) === pod) this.byIp.delete(ip);
    const ips = new Set(pod.addresses);
    const has = (addr: string | undefined): boolean => {
      const h = hostOf(addr);
      return h !== undefined && ips.has(h);
    };
    const mine = (c: L4Conn): boolean =>
      has(c.info.srcAddr) || has(c.info.dstAddr) || has(c.info.dstHboneAddr);
    const conns = this.conns.list().filter(mine);
    for (const c of conns) {
      c.downstream.end();
      c.upstream?.end();
    }
    const deadline = performance.now() + graceMs;
    while (conns.some((c) => !c.done) && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const c of conns) if (!c.done) c.abort("drained", "pod removed");
    await this.closePod(pod);
    log.info("pod removed", { uid, address: pod.addresses.join(","), closed: conns.length });
    return true;
  }

  private async closePod(pod: Pod): Promise<void> {
    await Promise.all([...pod.servers.map(closeServer), ...pod.hbone.map((h) => h.close())]);
    closeNetns(pod.ns);
  }

  /** A new snapshot: pods keep their listeners; their workload (identity) follows it. */
  update(snap: Snapshot): void {
    for (const pod of this.pods.values()) {
      for (const [i, ip] of pod.addresses.entries()) {
        const w = snap.workloads.find((x) => x.address === ip);
        if (!w) continue;
        pod.workloads.set(ip, w);
        pod.hbone[i]?.setWorkload(w);
      }
    }
  }

  list(): PodView[] {
    return [...this.pods.values()].map((p) => this.view(p));
  }

  private view(p: Pod): PodView {
    const first = p.workloads.get(p.addresses[0]!)!;
    const hosts = wildcards(p.addresses).map((h) => h === "::" ? "[::]" : h);
    return {
      uid: p.spec.uid,
      address: p.addresses[0]!,
      addresses: p.addresses,
      netns: p.spec.netnsPath,
      workload: `${first.namespace}/${first.name}`,
      identity: first.identity,
      listeners: [
        ...hosts.flatMap((h) => [`${h}:${OUTBOUND_CAPTURE_PORT}`, `${h}:${INBOUND_CAPTURE_PORT}`]),
        ...p.hbone.map((h) => h.address),
      ],
    };
  }

  /** Drain: capture listeners stop accepting, HBONE sessions get GOAWAY; open connections
   * finish under the node's drain deadline. */
  drain(): void {
    for (const pod of this.pods.values()) {
      for (const s of pod.servers.splice(0)) closeServer(s).catch(() => {});
      for (const h of pod.hbone) h.drain().catch(() => {});
    }
  }

  async closeAll(): Promise<void> {
    const pods = [...this.pods.values()];
    this.pods.clear();
    this.byIp.clear();
    await Promise.all(pods.map((p) => this.closePod(p)));
  }
}
