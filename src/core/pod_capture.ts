/**
 * In-pod capture (ztunnel's in-pod mode): for each enrolled pod, weft's listeners open INSIDE the
 * pod's network namespace: 15001 (outbound, redirected by the pod's nftables rules), 15006
 * (plaintext inbound, redirected) and 15008 (HBONE, on the pod's IP, presenting its identity).
 * The original destination comes from SO_ORIGINAL_DST; deliveries to the pod's application are
 * dialled from inside the pod (src/core/netns.ts). The rules themselves belong to src/inpod.
 */
import * as net from "node:net";
import type { Snapshot, Workload } from "./snapshot.ts";
import type { ConnTable, L4Conn } from "./l4_conn.ts";
import { HboneServer, type InboundDeps } from "./hbone_server.ts";
import { handleOutbound, type OutboundDeps, type PodDial } from "./outbound.ts";
import { handlePlaintextInbound } from "./inbound_plain.ts";
import { closeNetns, dialInNetns, inNetns, type Netns, openNetns, originalDst } from "./netns.ts";
import { l4Metrics } from "./l4_telemetry.ts";
import { splitHostPort } from "./ip.ts";
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
  /** The pod's IP: names its workload in the snapshot. */
  readonly address: string;
}

export interface PodView {
  readonly uid: string;
  readonly address: string;
  readonly netns: string;
  readonly workload: string;
  readonly identity: string;
  readonly listeners: readonly string[];
}

interface Pod {
  readonly spec: PodEnrollment;
  readonly ns: Netns;
  workload: Workload;
  readonly servers: net.Server[];
  hbone: HboneServer | undefined;
}

function listenIn(ns: Netns, port: number, onConn: (s: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => {
    s.setNoDelay(true);
    onConn(s);
  });
  return new Promise((resolve, reject) => {
    server.once("error", (e) =>
      reject(
        new WeftError("listen_failed", `Cannot listen on :${port} in ${ns.path}: ${e.message}`),
      ));
    inNetns(ns, () => server.listen(port, "0.0.0.0", () => resolve(server)));
  });
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

  /** Dials from inside the enrolled pod with this IP (source = the pod, marked 0x539). */
  dialerFrom(podIp: string): PodDial | undefined {
    const pod = this.byIp.get(podIp);
    return pod ? (host, port, ms, src) => dialInNetns(pod.ns, host, port, ms, src) : undefined;
  }

  /** Enroll (or re-enroll) a pod: open its three listeners inside its namespace. */
  async add(spec: PodEnrollment): Promise<PodView> {
    const snap = this.snapshot();
    const wl = snap.workloads.find((w) => w.address === spec.address);
    if (!wl) {
      throw new WeftError(
        "inpod_unknown_workload",
        `Cannot enroll pod ${spec.uid}: no workload with address ${spec.address}`,
        { hint: "add the workload to the config (or xDS) before the pod starts" },
      );
    }
    const old = this.pods.get(spec.uid);
    // A repeated add (a ZDS snapshot after a restart) keeps the pod's listeners and connections.
    if (old && old.spec.netnsPath === spec.netnsPath && old.spec.address === spec.address) {
      return this.view(old);
    }
    if (old) await this.remove(spec.uid, 0);
    const ns = openNetns(spec.netnsPath);
    const pod: Pod = { spec, ns, workload: wl, servers: [], hbone: undefined };
    try {
      pod.servers.push(await listenIn(ns, OUTBOUND_CAPTURE_PORT, (s) => this.onOutbound(s)));
      pod.servers.push(await listenIn(ns, INBOUND_CAPTURE_PORT, (s) => this.onInbound(pod, s)));
      const hbone = new HboneServer(
        { ...this.inbound, bind: (listen) => inNetns(ns, listen) },
        wl,
        snap.node.hbonePort,
      );
      pod.hbone = hbone;
      await hbone.start();
    } catch (e) {
      await this.closePod(pod);
      throw e;
    }
    this.pods.set(spec.uid, pod);
    this.byIp.set(spec.address, pod);
    log.info("pod enrolled", { uid: spec.uid, address: spec.address, workload: wl.name });
    return this.view(pod);
  }

  private onOutbound(s: net.Socket): void {
    const dst = originalDst(s);
    if (!dst) {
      l4Metrics.refused.inc({ direction: "outbound", reason: "no_original_dst" });
      s.destroy();
      return;
    }
    void handleOutbound(this.outbound, s, dst.host, dst.port); // never rejects
  }

  private onInbound(pod: Pod, s: net.Socket): void {
    const dst = originalDst(s);
    const own = [OUTBOUND_CAPTURE_PORT, INBOUND_CAPTURE_PORT, this.snapshot().node.hbonePort];
    if (!dst || own.includes(dst.port)) {
      // Delivering to one of weft's own ports in the pod would loop back into this listener.
      const reason = dst ? "self_call" : "no_original_dst";
      l4Metrics.refused.inc({ direction: "inbound", reason });
      s.destroy();
      return;
    }
    handlePlaintextInbound(this.inbound, s, pod.spec.address, dst.port);
  }

  /** Remove a pod: listeners close, its connections get a graceful end (FIN both ways), and
   * whatever is still open after `graceMs` is closed. */
  async remove(uid: string, graceMs: number): Promise<boolean> {
    const pod = this.pods.get(uid);
    if (!pod) return false;
    this.pods.delete(uid);
    if (this.byIp.get(pod.spec.address) === pod) this.byIp.delete(pod.spec.address);
    const ip = pod.spec.address;
    const mine = (c: L4Conn): boolean =>
      hostOf(c.info.srcAddr) === ip || hostOf(c.info.dstAddr) === ip ||
      hostOf(c.info.dstHboneAddr) === ip;
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
    log.info("pod removed", { uid, address: ip, closed: conns.length });
    return true;
  }

  private async closePod(pod: Pod): Promise<void> {
    await Promise.all([...pod.servers.map(closeServer), pod.hbone?.close()]);
    closeNetns(pod.ns);
  }

  /** A new snapshot: pods keep their listeners; their workload (identity) follows it. */
  update(snap: Snapshot): void {
    for (const pod of this.pods.values()) {
      const w = snap.workloads.find((x) => x.address === pod.spec.address);
      if (w) {
        pod.workload = w;
        pod.hbone?.setWorkload(w);
      }
    }
  }

  list(): PodView[] {
    return [...this.pods.values()].map((p) => this.view(p));
  }

  private view(p: Pod): PodView {
    return {
      uid: p.spec.uid,
      address: p.spec.address,
      netns: p.spec.netnsPath,
      workload: `${p.workload.namespace}/${p.workload.name}`,
      identity: p.workload.identity,
      listeners: [
        `0.0.0.0:${OUTBOUND_CAPTURE_PORT}`,
        `0.0.0.0:${INBOUND_CAPTURE_PORT}`,
        p.hbone?.address ?? "",
      ],
    };
  }

  /** Drain: capture listeners stop accepting, HBONE sessions get GOAWAY; open connections
   * finish under the node's drain deadline. */
  drain(): void {
    for (const pod of this.pods.values()) {
      for (const s of pod.servers.splice(0)) closeServer(s).catch(() => {});
      pod.hbone?.drain().catch(() => {});
    }
  }

  async closeAll(): Promise<void> {
    const pods = [...this.pods.values()];
    this.pods.clear();
    this.byIp.clear();
    await Promise.all(pods.map((p) => this.closePod(p)));
  }
}
