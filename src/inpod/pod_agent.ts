/**
 * The in-pod side of the node agent (what ztunnel's inpod module plus istio-cni's node agent do):
 * serves the ZDS-shaped unix socket, and for each pod applies weft's nftables table inside the
 * pod's namespace after its listeners are open (and deletes it after they close), keeping a
 * state file of enrolled pods so a restarted agent re-enrolls them (ztunnel gets the same from
 * istio-cni's snapshot). Pods whose namespace is gone are dropped from the state.
 */
import * as net from "node:net";
import { isIPv6 } from "node:net";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { errorMessage, logger, WeftError } from "../core/mod.ts";
import type { PodEnrollment, PodView } from "../core/mod.ts";
import { applyPodRules, hasPodRules, missingTools, removePodRules } from "./nft_rules.ts";
import { type AddWorkload, lineReader, parseRequest, type ZdsRequest } from "./zds.ts";

const log = logger("inpod");

/** What the agent needs from the data path (NodeProxy). */
export interface PodHost {
  enrollPod(pod: PodEnrollment): Promise<PodView>;
  removePod(uid: string, graceMs: number): Promise<boolean>;
  enrolledPods(): PodView[];
  readonly snapshot: { readonly node: { readonly hbonePort: number } };
}

export interface PodAgentOptions {
  /** Unix socket path the CNI command talks to. */
  readonly socketPath: string;
  /** Directory of the state file (pods.json). */
  readonly stateDir: string;
  /** How long a removed pod's connections may finish after FIN. */
  readonly removeGraceMs: number;
  readonly outboundPort: number;
  readonly inboundPort: number;
}

interface PodRecord extends AddWorkload {
  readonly address: string;
}

export class PodAgent {
  private server: net.Server | undefined;
  private readonly records = new Map<string, PodRecord>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly host: PodHost, private readonly opts: PodAgentOptions) {}

  private get statePath(): string {
    return join(this.opts.stateDir, "pods.json");
  }

  /** Re-enroll the pods of the state file, then accept requests on the socket. */
  async start(): Promise<void> {
    const missing = missingTools();
    if (missing.length) {
      throw new WeftError(
        "inpod_tools_missing",
        `Cannot start in-pod capture: ${missing.join(", ")} not found on PATH`,
        { hint: "the node agent's image needs nsenter (util-linux), nft (nftables) and ip" },
      );
    }
    for (const rec of this.loadState()) {
      if (!existsSync(rec.netns)) {
        log.info("pod namespace gone, dropped", { uid: rec.uid, netns: rec.netns });
        continue;
      }
      const err = await this.add(rec);
      if (err) log.warn("pod not re-enrolled", { uid: rec.uid, err });
    }
    this.saveState();
    mkdirSync(dirname(this.opts.socketPath), { recursive: true });
    rmSync(this.opts.socketPath, { force: true });
    const server = net.createServer((s) => this.onClient(s));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e) =>
        reject(
          new WeftError("listen_failed", `Cannot listen on ${this.opts.socketPath}: ${e.message}`),
        ));
      server.listen(this.opts.socketPath, () => resolve());
    });
    // Enrolling a pod changes its traffic: only root (the CNI plugin) may talk to the agent.
    chmodSync(this.opts.socketPath, 0o600);
    this.server = server;
    log.info("pod channel ready", { socket: this.opts.socketPath, pods: this.records.size });
  }

  private loadState(): PodRecord[] {
    try {
      const v = JSON.parse(readFileSync(this.statePath, "utf8"));
      if (!Array.isArray(v)) return [];
      // Each entry is checked as the add request it came from; a bad one is dropped, logged.
      return v.flatMap((rec) => {
        const req = parseRequest(JSON.stringify({ add: rec }));
        if (typeof req !== "string" && "add" in req) return [rec as PodRecord];
        log.warn("bad entry in the pod state file, dropped", { path: this.statePath, err: req });
        return [];
      });
    } catch {
      return [];
    }
  }

  private saveState(): void {
    mkdirSync(this.opts.stateDir, { recursive: true });
    const tmp = this.statePath + ".tmp";
    writeFileSync(tmp, JSON.stringify([...this.records.values()], null, 1));
    renameSync(tmp, this.statePath);
  }

  private onClient(sock: net.Socket): void {
    let greeted = false;
    let snapshot: Set<string> | undefined;
    sock.on("error", () => {});
    const answer = (error: string): void => {
      if (!sock.destroyed) sock.write(JSON.stringify({ ack: { error } }) + "\n");
    };
    lineReader(sock, (line) => {
      const req = parseRequest(line);
      if (typeof req === "string") return answer(`bad request: ${req}`);
      if (!greeted) {
        if (!("hello" in req)) return answer("bad request: hello first");
        greeted = true;
        snapshot = new Set();
        return answer("");
      }
      // One request at a time across clients: rules and listeners change in a known order.
      this.queue = this.queue.then(() => this.handle(req, snapshot)).then(
        (err) => answer(err ?? ""),
        (e) => answer(errorMessage(e)),
      );
    }, () => {
      answer("bad request: line too long");
      sock.destroy();
    });
  }

  private async handle(req: ZdsRequest, seen: Set<string> | undefined): Promise<string | void> {
    if ("add" in req) {
      seen?.add(req.add.uid);
      const err = await this.add(req.add);
      this.saveState();
      return err;
    }
    if ("keep" in req) {
      seen?.add(req.keep.uid);
      return this.records.has(req.keep.uid) ? undefined : `unknown pod ${req.keep.uid}`;
    }
    if ("del" in req) {
      await this.remove(req.del.uid);
      this.saveState();
      return;
    }
    if ("check" in req) return await this.check(req.check.uid);
    if ("snapshotSent" in req) {
      for (const uid of [...this.records.keys()]) if (!seen?.has(uid)) await this.remove(uid);
      this.saveState();
    }
  }

  /** Listeners first, then the rules that send traffic to them; an error string on failure.
   * Every pod IP (IPv4 and IPv6, a dual-stack pod has both) is offered; those a workload has are
   * served, and the IPv6 policy route is added only for a pod served on IPv6. */
  private async add(a: AddWorkload): Promise<string | undefined> {
    const addresses = a.ips.map((ip) => ip.replace(/\/\d+$/, ""));
    try {
      const view = await this.host.enrollPod({ uid: a.uid, netnsPath: a.netns, addresses });
      const hbonePort = this.host.snapshot.node.hbonePort;
      const families = [...new Set(view.addresses.map((ip) => isIPv6(ip) ? 6 : 4))];
      await applyPodRules(a.netns, {
        outboundPort: this.opts.outboundPort,
        inboundPort: this.opts.inboundPort,
        hbonePort,
        nodeAddresses: a.nodeAddresses ?? [],
      }, families);
      this.records.set(a.uid, { ...a, address: view.address });
    } catch (e) {
      await this.host.removePod(a.uid, 0).catch(() => false);
      return errorMessage(e);
    }
    return undefined;
  }

  /** Listeners and connections first, then the rules: the kernel translates a redirected
   * connection's packets only while the pod's nat hooks exist, so deleting the table first
   * would strand the FINs that end the pod's connections. */
  private async remove(uid: string): Promise<void> {
    const rec = this.records.get(uid);
    this.records.delete(uid);
    await this.host.removePod(uid, this.opts.removeGraceMs);
    if (rec && existsSync(rec.netns)) {
      await removePodRules(rec.netns).catch((e) =>
        log.warn("pod rules not removed", { uid, err: errorMessage(e) })
      );
    }
  }

  private async check(uid: string): Promise<string | undefined> {
    const rec = this.records.get(uid);
    if (!rec) return `pod ${uid} is not enrolled`;
    if (!this.host.enrolledPods().some((p) => p.uid === uid)) return `pod ${uid}: no listeners`;
    if (!(await hasPodRules(rec.netns))) return `pod ${uid}: redirection rules missing`;
    return undefined;
  }

  pods(): PodView[] {
    return this.host.enrolledPods();
  }

  /** Stop accepting requests; pods keep their rules (a restarted agent re-enrolls them). */
  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
    rmSync(this.opts.socketPath, { force: true });
  }
}
