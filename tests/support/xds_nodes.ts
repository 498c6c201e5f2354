/**
 * A real `weft control-plane` serving a mesh file and `weft run` nodes that take everything from
 * it over xDS (ca.mode xds), for integration tests and the demo. Only node names listed in
 * `capture` bind the service VIPs (they share one loopback).
 */
import { stringify } from "yaml";
import { join } from "node:path";
import { meshManifests } from "./istio_manifests.ts";
import { LISTENERS, startWeft, type WeftProc } from "./weft_proc.ts";

export interface XdsMesh {
  /** The control plane process (a new one after `restartControlPlane`). */
  readonly cp: WeftProc;
  readonly address: string;
  readonly nodes: readonly WeftProc[];
  /** Replace the mesh file atomically (the control plane watches it and pushes). */
  writeMesh(mesh: Record<string, unknown>): Promise<void>;
  /** Resolves once the node's /healthz/ready answers 200 (xDS synced and applied). */
  waitReady(p: WeftProc, timeoutMs?: number): Promise<void>;
  /** Stop the control plane with `signal` (SIGKILL: no GOAWAY; SIGTERM: a graceful shutdown
   * that cancels the open streams) and start a new one on the same address, mesh and CA. */
  restartControlPlane(signal: Deno.Signal, beforeStart?: () => Promise<void>): Promise<WeftProc>;
  stop(): Promise<void>;
}

/** The bearer token each test node presents to the CA service (its SHA-256 goes in the mesh). */
export function nodeToken(node: string): string {
  return `test-token-${node}`;
}

async function sha256Hex(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The mesh with every node's token registered (MeshConfig spec.nodeTokens). */
export async function withNodeTokens(
  mesh: Record<string, unknown>,
  nodes: readonly string[],
): Promise<Record<string, unknown>> {
  const tokens: Record<string, string> = {};
  for (const n of nodes) tokens[n] = await sha256Hex(nodeToken(n));
  return { ...mesh, nodeTokens: { ...tokens, ...(mesh.nodeTokens as object ?? {}) } };
}

export async function writeMeshFile(path: string, mesh: Record<string, unknown>): Promise<void> {
  // Compact test meshes become the Istio manifests the control plane reads.
  await Deno.writeTextFile(path + ".tmp", meshManifests(mesh));
  await Deno.rename(path + ".tmp", path);
}

export async function readyStatus(p: WeftProc): Promise<number> {
  try {
    const r = await fetch(`http://${p.ready.readiness}/healthz/ready`);
    await r.body?.cancel();
    return r.status;
  } catch {
    return 0;
  }
}

export async function startXdsMesh(
  dir: string,
  mesh: Record<string, unknown>,
  nodes: readonly string[],
  capture: readonly string[],
  command?: (argv: readonly string[]) => [string, string[]],
  opts: {
    /** Runs the nodes (not the control plane) on another runtime (a bun binary). */
    nodeRuntime?: string;
    /** istiod's bootstrap shape: `--tls --client-auth token`; nodes verify the control plane
     * against the CA's root (xds.rootCertFile) and send their token. */
    tls?: boolean;
  } = {},
): Promise<XdsMesh> {
  const how = command ? { command } : {};
  const nodeHow = opts.nodeRuntime ? { runtime: opts.nodeRuntime } : how;
  const tlsArgs = opts.tls ? ["--tls", "--client-auth", "token"] : [];
  const meshPath = join(dir, "mesh.yaml");
  await writeMeshFile(meshPath, await withNodeTokens(mesh, nodes));
  const procs: WeftProc[] = [];
  const stop = async () => {
    await Promise.all(procs.map((p) => p.stop()));
  };
  try {
    const startCp = (address: string) =>
      startWeft(
        [
          "control-plane",
          "--config",
          meshPath,
          "--address",
          address,
          "--ca-dir",
          caDir,
          ...tlsArgs,
        ],
        how,
      );
    const caDir = join(dir, "ca");
    let cp = await startCp("127.0.0.1:0");
    procs.push(cp);
    const address = String(cp.ready.address);
    for (const name of nodes) {
      const cfgPath = join(dir, `${name}.yaml`);
      const listeners = { ...LISTENERS, captureServiceVips: capture.includes(name) };
      const tokenFile = join(dir, `${name}.token`);
      await Deno.writeTextFile(tokenFile, nodeToken(name));
      await Deno.writeTextFile(
        cfgPath,
        stringify({
          node: { name },
          ca: { mode: "xds" },
          listeners,
          xds: {
            address,
            tokenFile,
            ...(opts.tls ? { rootCertFile: join(caDir, "ca-cert.pem") } : {}),
          },
        }),
      );
      procs.push(await startWeft(["run", "--config", cfgPath], { ...nodeHow, timeoutMs: 120_000 }));
    }
    return {
      get cp() {
        return cp;
      },
      address,
      nodes: procs.slice(1),
      async restartControlPlane(signal, beforeStart) {
        await cp.stop(signal);
        await beforeStart?.();
        cp = await startCp(address);
        procs[0] = cp;
        return cp;
      },
      writeMesh: async (m) => writeMeshFile(meshPath, await withNodeTokens(m, nodes)),
      async waitReady(p, timeoutMs = 20_000) {
        const deadline = Date.now() + timeoutMs;
        while ((await readyStatus(p)) !== 200) {
          if (Date.now() > deadline) throw new Error("node never became ready");
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The client workload of the two-node tests: `sleep` at ip(2) on node-a. */
export function sleepOnNodeA(ip: (host: number) => string): Record<string, unknown> {
  return { name: "sleep", serviceAccount: "sleep", address: ip(2), node: "node-a" };
}

/** A server workload on node-b (service account `echo` unless given). */
export function onNodeB(
  name: string,
  address: string,
  labels: Record<string, string>,
  serviceAccount = "echo",
): Record<string, unknown> {
  return { name, serviceAccount, address, node: "node-b", labels };
}

/** A control plane serving `mesh` and two nodes, node-a (which captures the service VIPs) and
 * node-b: runs `check` once both are ready (xDS applied) and stops everything afterwards, even on
 * failure. */
export async function withTwoXdsNodes(
  dir: string,
  mesh: Record<string, unknown>,
  check: (x: XdsMesh) => Promise<void>,
): Promise<void> {
  const x = await startXdsMesh(dir, mesh, ["node-a", "node-b"], ["node-a"]);
  try {
    for (const n of x.nodes) await x.waitReady(n);
    await check(x);
  } finally {
    await x.stop();
  }
}
