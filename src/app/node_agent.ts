/**
 * The node agent: identity (src/tls) + data path (NodeProxy) + admin/metrics/readiness, from a
 * bootstrap config, optionally updated by xDS or by edits of the config file. Graceful drain on
 * SIGTERM/SIGINT and POST /quitquitquit; exit 0 after the drain.
 */
import { watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import {
  env,
  errorCode,
  errorMessage,
  gcSetting,
  INBOUND_CAPTURE_PORT,
  logger,
  metrics,
  netnsUnsupportedReason,
  NodeProxy,
  onSignal,
  OUTBOUND_CAPTURE_PORT,
  releaseMemoryAfterBursts,
  rssBytes,
  settleAfterStart,
} from "../core/mod.ts";
import type { HttpServerHandle, Snapshot } from "../core/mod.ts";
import { openCa, openCrl, WorkloadIdentityManager } from "../tls/mod.ts";
import type { CrlStore, LeafIssuer } from "../tls/mod.ts";
// The control path (gRPC, protobuf) loads with a dynamic import only for --xds / ca.mode xds.
import type { BearerToken, XdsClient } from "../xds/mod.ts";
import type { PodAgent } from "../inpod/mod.ts";
import { adminApp, serveOn } from "./admin.ts";
import {
  metricsRoutes,
  readinessRoutes,
  routesHandler,
  servePlainHttp,
} from "./plain_http_server.ts";
import type { AdminSource } from "./admin.ts";
import { offLoopback } from "./admin_guard.ts";
import type { BoundAddress } from "./admin_guard.ts";
import type { WeftConfig } from "./config_types.ts";
import { snapshotFromConfig } from "./snapshot_builder.ts";
import { L7Wiring } from "./l7_wiring.ts";
import { buildInfo } from "./version.ts";

const log = logger("agent");
const build = buildInfo();
/** An xDS node keeps the start-up JIT policy until its first sync is applied, or this long
 * (WEFT_XDS_JIT_HOLD_MS: for tests of a control plane that never answers). */
const XDS_JIT_HOLD_MS = Number(env("WEFT_XDS_JIT_HOLD_MS") ?? 30_000);
metrics.gauge("istio_build", "Istio component build info", ["component", "tag"])
  .set({ component: "weft", tag: build.version }, 1);
metrics.gauge("weft_build", "weft build info (weft version)", [
  "component",
  "tag",
  "commit",
  "runtime",
  "build_date",
]).set({
  component: "weft",
  tag: build.version,
  commit: build.commit,
  runtime: build.runtime,
  build_date: build.buildDate,
}, 1);
const configReloads = metrics.counter(
  "weft_config_reloads_total",
  "Live edits of the config file by result (success, invalid, failed)",
  ["result"],
);
metrics.gauge("weft_process_resident_memory_bytes", "Resident set size of the weft process")
  .collect(() => rssBytes());

export interface NodeAgentOptions {
  readonly config: WeftConfig;
  readonly configPath?: string | undefined;
  readonly dev: boolean;
  readonly xds: string | undefined;
}

export async function runNodeAgent(opts: NodeAgentOptions): Promise<number> {
  const agent = await NodeAgent.start(opts);
  return await agent.done;
}

export class NodeAgent {
  private servers: HttpServerHandle[] = [];
  private quitting = false;
  private resolveDone!: (code: number) => void;
  readonly done: Promise<number> = new Promise((r) => this.resolveDone = r);
  private cleanups: (() => void)[] = [];
  private readonly startedAt = Date.now();

  private constructor(
    private config: WeftConfig,
    readonly identity: WorkloadIdentityManager,
    readonly proxy: NodeProxy,
    readonly l7: L7Wiring,
  ) {}

  private reloading: Promise<void> = Promise.resolve();
  private xdsClient: XdsClient | undefined;
  private xdsToken: BearerToken | undefined;
  private xdsRoots: string | undefined;
  private xdsApplied = false;
  private xdsSettled = false;
  /** Snapshots received and not applied yet (readiness waits for them). */
  private xdsPending = 0;

  private pods: PodAgent | undefined;
  private crl: CrlStore | undefined;

  static async start(opts: NodeAgentOptions): Promise<NodeAgent> {
    const cfg = opts.config;
    const noInpod = cfg.inpod ? netnsUnsupportedReason() : undefined;
    if (noInpod) throw new Error(`Cannot start in-pod capture (inpod:): ${noInpod}`);
    if (cfg.inpod) {
      const { missingTools } = await import("../inpod/mod.ts");
      const missing = missingTools();
      if (missing.length) {
        throw new Error(
          `Cannot start in-pod capture (inpod:): ${missing.join(", ")} not found on PATH ` +
            "(the node agent's image needs nsenter, nft and ip)",
        );
      }
    }
    if (cfg.ca.mode === "xds" && !opts.xds) {
      throw new Error(
        "Cannot start: ca.mode is xds but no control plane is given (--xds host:port or xds.address)",
      );
    }
    // istiod's bootstrap shape: the control plane's root from a file (a ConfigMap), the node's
    // token on every call, read again for each stream and CSR (kubelet rotates a projected
    // service-account token in place). A file missing at start stops the start.
    if (cfg.xds.tokenFile) await readFile(cfg.xds.tokenFile, "utf8");
    const xdsToken = cfg.xds.tokenFile
      ? (await import("../xds/mod.ts")).tokenFromFile(cfg.xds.tokenFile)
      : undefined;
    const xdsRoots = cfg.xds.rootCertFile
      ? await readFile(cfg.xds.rootCertFile, "utf8")
      : undefined;
    const serverTls = xdsRoots
      ? {
        tls: { rootsPem: xdsRoots },
        serverIdentity: cfg.xds.serverIdentity ??
          `spiffe://${cfg.node.trustDomain}/ns/istio-system/sa/weft-control-plane`,
      }
      : {};
    const ca: LeafIssuer = cfg.ca.mode === "xds"
      ? new (await import("../xds/mod.ts")).RemoteCa({
        address: opts.xds!,
        ...(xdsToken ? { token: xdsToken } : {}),
        ...serverTls,
      })
      : await openCa(
        cfg.ca.mode === "auto"
          ? { mode: "auto", stateDir: cfg.ca.stateDir }
          : { mode: "files", certPath: cfg.ca.certFile!, keyPath: cfg.ca.keyFile! },
      );
    const identity = new WorkloadIdentityManager({
      ca,
      trustDomain: cfg.node.trustDomain,
      ttlMs: cfg.certificates.ttlMs,
      rotateAtFraction: cfg.certificates.rotateAtFraction,
    });
    // CRLs before any listener: a file that does not parse stops the start (exit 1).
    const crl = cfg.ca.crlFile
      ? await openCrl({ path: cfg.ca.crlFile, roots: () => identity.rootsPem })
      : undefined;
    identity.revocation = crl;
    // Readiness means certificates exist: issue every local identity before binding.
    await Promise.all(cfg.workloads.map((w) => identity.material(w.identity)));
    const l7 = new L7Wiring({
      dev: opts.dev,
      nodeName: cfg.node.name,
      trustDomain: cfg.node.trustDomain,
      nodeMetadata: cfg.node.metadata,
    });
    await l7.loadFor(cfg); // the filter host loads only when some service has filters
    const snapshot = await l7.prepare(snapshotFromConfig(cfg, l7.chainsFor));
    const proxy = new NodeProxy({ snapshot, identity, filters: l7.resolver() });
    l7.setServiceDialer(proxy.dialService); // proxy-wasm callouts to services travel the mesh
    const agent = new NodeAgent(cfg, identity, proxy, l7);
    agent.crl = crl;
    if (crl) agent.cleanups.push(() => crl.close());
    agent.xdsToken = xdsToken;
    agent.xdsRoots = xdsRoots;
    try {
      await proxy.start();
      await agent.serveAdmin();
      await agent.startInpod();
    } catch (err) {
      await agent.shutdown(0);
      throw err;
    }
    agent.installSignals();
    if (opts.xds) await agent.startXds(opts.xds, ca);
    else if (opts.configPath) agent.watchConfig(opts.configPath);
    const gc = gcSetting();
    if (gc?.reexec !== undefined) {
      log.warn("running on Bun's collector defaults: could not restart with weft's", {
        reexec: gc.reexec,
      });
    }
    log.info("ready", {
      node: cfg.node.name,
      admin: agent.servers[0]?.port
        ? `${cfg.listeners.admin.replace(/:\d+$/, "")}:${agent.servers[0].port}`
        : "",
      metrics: agent.addr(1, cfg.listeners.metrics),
      readiness: agent.addr(2, cfg.listeners.readiness),
      socks5: cfg.listeners.socks5,
      listeners: proxy.stats().listeners,
      version: snapshot.version,
      gc,
    });
    // An xDS node's real start-up is its first sync: the JIT policy is reset once it is applied
    // (startXds), or after XDS_JIT_HOLD_MS when the control plane does not answer.
    settleAfterStart(opts.xds ? { holdJitMs: XDS_JIT_HOLD_MS } : {});
    releaseMemoryAfterBursts();
    return agent;
  }

  /** In-pod capture: the pod channel and re-enrollment of the pods recorded before a restart. */
  private async startInpod(): Promise<void> {
    const c = this.config.inpod;
    if (!c) return;
    const { PodAgent } = await import("../inpod/mod.ts");
    this.pods = new PodAgent(this.proxy, {
      socketPath: c.socket,
      stateDir: c.stateDir,
      removeGraceMs: c.removeGraceMs,
      outboundPort: OUTBOUND_CAPTURE_PORT,
      inboundPort: INBOUND_CAPTURE_PORT,
    });
    await this.pods.start();
  }

  private addr(i: number, configured: string): string {
    const s = this.servers[i];
    return s ? `${configured.replace(/:\d+$/, "")}:${s.port}` : "";
  }

  private async serveAdmin(): Promise<void> {
    const src = this.adminSource();
    const bound: { at?: BoundAddress } = {}; // known once the admin server listens
    const admin = await serveOn(this.config.listeners.admin, adminApp(src, () => bound.at));
    bound.at = { host: admin.hostname, port: admin.port };
    this.servers.push(admin);
    for (const o of offLoopback(this.config.listeners)) {
      log.warn(`${o.path.slice("listeners.".length).toUpperCase()} EXPOSED OFF LOOPBACK`, o);
    }
    const { metrics, readiness } = this.config.listeners;
    this.servers.push(await servePlainHttp(metrics, routesHandler(metricsRoutes())));
    this.servers.push(await servePlainHttp(readiness, routesHandler(readinessRoutes(src))));
  }

  /** Configuration from a control plane: every applied xDS response is one snapshot swap. */
  private async startXds(address: string, ca: LeafIssuer): Promise<void> {
    const cfg = this.config;
    const base = snapshotFromConfig(cfg, this.l7.chainsFor);
    const { XdsClient, controlPlaneIdentity } = await import("../xds/mod.ts");
    let tls;
    if (cfg.xds.tls) {
      const agentId = `spiffe://${cfg.node.trustDomain}/ns/${cfg.node.rootNamespace}/sa/weft-node`;
      const leaf = await ca.issueLeaf(agentId);
      tls = { rootsPem: leaf.rootsPem, certChainPem: leaf.chainPem, keyPem: leaf.keyPem };
    } else if (this.xdsRoots) tls = { rootsPem: this.xdsRoots };
    const client = new XdsClient({
      server: address,
      nodeId: cfg.node.name,
      nodeMetadata: { NAME: cfg.node.name },
      ...(this.xdsToken && this.xdsRoots ? { token: this.xdsToken } : {}),
      mode: cfg.xds.mode,
      // The first-party converters come with the whole filter host (jco and its WASI shim):
      // loaded only once the control plane sends an RBAC or HTTPFault config.
      loadFilterChecks: async () => (await import("./filter_checks.ts")).registerXdsFilterChecks(),
      base: {
        node: base.node,
        rootNamespace: base.rootNamespace,
        outboundTrafficPolicy: base.outboundTrafficPolicy,
        timeouts: base.timeouts,
        limits: base.limits,
        capture: base.capture,
      },
      ...(tls
        ? {
          tls,
          serverIdentity: cfg.xds.serverIdentity ?? controlPlaneIdentity(cfg.node.trustDomain),
        }
        : {}),
    });
    this.xdsClient = client;
    let chain = Promise.resolve();
    client.onSnapshot((snap) => {
      this.xdsPending++;
      chain = chain.then(() => this.apply(snap)).then(() => {
        // The initial sync applied: the normal JIT policy from here (held since start-up,
        // settleAfterStart's holdJitMs) and its garbage (decoded responses, translation) back to
        // the OS once: the node is idle from here on a quiet mesh.
        if (!this.xdsSettled && client.synced) {
          this.xdsSettled = true;
          settleAfterStart();
        }
        this.xdsApplied = true;
      }).finally(() => this.xdsPending--).catch((err) =>
        log.error("snapshot not applied; the last good one keeps serving", {
          error: errorMessage(err),
        })
      );
    });
    client.start();
    log.info("xds started", { server: address, mode: cfg.xds.mode, tls: tls !== undefined });
  }

  private installSignals(): void {
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      this.cleanups.push(onSignal(sig, () => this.quit(sig)));
    }
  }

  /** Apply a new snapshot (from xDS or a config edit); the data path swaps it atomically. */
  async apply(snapshot: Snapshot): Promise<void> {
    // Certificates first, so the HBONE listeners of new local workloads can present them.
    await Promise.all(snapshot.workloads.map((w) => this.identity.material(w.identity)));
    const prepared = await this.l7.prepare(snapshot);
    await this.proxy.update(prepared);
    log.info("snapshot applied", { version: snapshot.version });
  }

  private watchConfig(path: string): void {
    // Watch the directory, not the file: editors and tests replace files by rename.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const name = basename(path);
    const watcher = watch(dirname(path), (_ev, file) => {
      if (file !== null && String(file) !== name) return;
      clearTimeout(timer);
      timer = setTimeout(() => this.scheduleReload(path), 100);
    });
    watcher.on("error", (err) => log.warn("config watch failed", { error: errorMessage(err) }));
    this.cleanups.push(() => watcher.close(), () => clearTimeout(timer));
  }

  /** Reloads run one at a time, in edit order; `reloadConfig` never rejects. */
  private scheduleReload(path: string): void {
    this.reloading = this.reloading.then(() => this.reloadConfig(path)).then(() => {});
  }

  /** Apply an edited config file. Any failure (invalid file, a plugin that cannot load, a
   * pluginConfig the filter refuses, certificates) is logged with its cause and counted, and the
   * last good config keeps serving. Resolves with whether the edit was applied; never rejects. */
  async reloadConfig(path: string): Promise<boolean> {
    try {
      const { loadConfig } = await import("./cli.ts");
      const problems: string[] = [];
      const cfg = await loadConfig(path, { problems });
      if (!cfg) {
        configReloads.inc({ result: "invalid" });
        // The problems ride in the record (stderr stays one JSON object per line); capped, as a
        // mutated file can name thousands.
        log.warn("config update rejected; keeping the last good config", {
          path,
          problems: problems.slice(0, 50),
          problemCount: problems.length,
        });
        return false;
      }
      await Promise.all(cfg.workloads.map((w) => this.identity.material(w.identity)));
      await this.l7.loadFor(cfg);
      await this.apply(snapshotFromConfig(cfg, this.l7.chainsFor));
      this.config = cfg;
      configReloads.inc({ result: "success" });
      return true;
    } catch (err) {
      configReloads.inc({ result: "failed" });
      log.error("config update failed; keeping the last good config", {
        path,
        code: errorCode(err),
        error: errorMessage(err),
      });
      return false;
    }
  }

  quit(reason: string): void {
    if (this.quitting) return;
    this.quitting = true;
    log.info("draining", { reason, drainMs: this.config.timeouts.drainMs });
    void this.shutdown(this.config.timeouts.drainMs).then(() => this.resolveDone(0), (err) => {
      log.error("shutdown failed", { error: errorMessage(err) });
      this.resolveDone(1);
    });
  }

  private async shutdown(drainMs: number): Promise<void> {
    for (const c of this.cleanups) c();
    await this.pods?.close();
    await this.xdsClient?.close();
    await this.proxy.drain(drainMs);
    await Promise.all(this.servers.map((s) => s.close()));
    this.servers = [];
    await this.l7.close();
    await this.identity.close();
    log.info("stopped", {});
  }

  private adminSource(): AdminSource {
    return {
      configDump: () => this.configDump(),
      readiness: () => {
        const waiting: string[] = [];
        if (!this.proxy.ready) waiting.push("listeners");
        if (
          this.xdsClient && !(this.xdsClient.synced && this.xdsApplied && this.xdsPending === 0)
        ) {
          waiting.push("xds");
        }
        const certs = this.identity.certificates();
        if (
          this.config.workloads.some((w) =>
            !certs.some((c) => c.identity === w.identity && c.state === "Available")
          )
        ) {
          waiting.push("certificates");
        }
        return { ready: waiting.length === 0, waitingFor: waiting };
      },
      quit: (reason) => this.quit(reason),
      reloadFilter: (name) => this.l7.reload(name),
    };
  }

  configDump(): Record<string, unknown> {
    const s = this.proxy.snapshot;
    return {
      version: s.version,
      node: {
        ...s.node,
        uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
        rssBytes: rssBytes(),
        gc: gcSetting(),
      },
      workloads: s.workloads,
      services: s.services,
      policies: s.policies,
      certificates: this.identity.certificates(),
      crl: this.crl?.summary(),
      connections: this.proxy.connections(200),
      proxy: this.proxy.stats(),
      pods: this.config.inpod ? this.proxy.enrolledPods() : undefined,
      xds: this.xdsClient
        ? {
          connected: this.xdsClient.connected,
          synced: this.xdsClient.synced,
          streams: this.xdsClient.streams,
        }
        : undefined,
      filters: this.l7.summary(),
      config: this.config,
      // counted, not rendered: rendering every metric on each call only to count its TYPE lines
      metricsFamilies: metrics.familyCount,
    };
  }
}
