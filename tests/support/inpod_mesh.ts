/**
 * Two weft node agents on Bun, each in its node namespace, with in-pod capture on, and pods
 * enrolled through the real `weft cni` command (tests, demo:pods and bench:inpod share it).
 * Pods: node 1 `client` (enrolled); node 2 `server` (enrolled, STRICT, an HTTP app on 8080) and
 * `outsider` (not in the mesh). Service `web` has the virtual address 10.<x>.200.10:80.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { buildTopology, type PodNs, type Topology } from "./topology.ts";
import {
  ensurePluginsBuilt,
  ROOT,
  startWeft,
  weftBin,
  weftCommand,
  type WeftProc,
} from "./weft_proc.ts";

export const APP_PORT = 8080;

export function bunPath(): string | undefined {
  const local = join(ROOT, ".weft/tools/node_modules/.bin/bun");
  if (spawnSync("test", ["-x", local]).status === 0) return local;
  return spawnSync("sh", ["-c", "command -v bun"], { encoding: "utf8" }).stdout.trim() ||
    undefined;
}

export interface InpodMesh {
  readonly topo: Topology;
  readonly dir: string;
  readonly vip: string;
  readonly agents: WeftProc[];
  /** Run `weft cni` for a pod (ADD, DEL, CHECK) in its node's namespace. */
  cni(pod: PodNs, command: "ADD" | "DEL" | "CHECK"): Promise<{ code: number; stdout: string }>;
  /** curl inside a pod; returns the body or throws with curl's error. */
  curl(pod: PodNs, url: string, extra?: string[]): Promise<{ code: number; body: string }>;
  restartAgent(node: number): Promise<WeftProc>;
  /** Rewrite node 2's config with these policies (the agent reloads it live). */
  setPolicies(policies: unknown[]): Promise<void>;
  close(): Promise<void>;
}

interface Wl {
  name: string;
  sa: string;
  pod: PodNs;
  mtlsMode?: string;
}

function nodeConfig(
  n: number,
  dir: string,
  local: Wl[],
  all: Wl[],
  vip: string,
  policies: unknown[],
): string {
  return stringify({
    node: { name: `node${n}` },
    ca: { mode: "auto", stateDir: join(dir, "ca") },
    listeners: {
      admin: "127.0.0.1:15000",
      metrics: "127.0.0.1:15020",
      readiness: "127.0.0.1:15021",
      socks5: "",
      captureServiceVips: false,
    },
    timeouts: { connect: "2s", drain: "1s" },
    inpod: { socket: join(dir, `n${n}`, "zds.sock"), stateDir: join(dir, `n${n}`, "state") },
    workloads: local.map((w) => ({
      name: w.name,
      namespace: "default",
      serviceAccount: w.sa,
      address: w.pod.ip,
      ports: [APP_PORT],
      mtlsMode: w.mtlsMode ?? "PERMISSIVE",
    })),
    services: [{
      name: "web",
      namespace: "default",
      hostname: "web.default.svc.cluster.local",
      vips: [vip],
      ports: [{ port: 80, targetPort: APP_PORT }],
      endpoints: all.filter((w) => w.name === "server").map((w) => ({
        workload: w.name,
        serviceAccount: w.sa,
        address: w.pod.ip,
        node: `node${w.pod.node}`,
      })),
    }, {
      // Every enrolled pod is reachable by its IP over HBONE.
      name: "pods",
      namespace: "default",
      hostname: "pods.default.svc.cluster.local",
      ports: [{ port: APP_PORT, targetPort: APP_PORT }],
      endpoints: all.map((w) => ({
        workload: w.name,
        serviceAccount: w.sa,
        address: w.pod.ip,
        node: `node${w.pod.node}`,
      })),
    }],
    authorizationPolicies: policies,
  });
}

export interface InpodMeshOptions {
  readonly extraClients?: number;
  /** How to start node n's agent on the namespace at `nodeNetns`, with its config and state
   * under `dir` (tests/container_inpod_test.ts: a container of the image on that namespace);
   * by default weft on Bun, or WEFT_BIN, under `ip netns exec`. */
  readonly agentCommand?: (
    node: number,
    nodeNetns: string,
    dir: string,
  ) => (argv: readonly string[]) => [string, string[]];
  /** The `weft` executable that runs as the CNI plugin (by default as the agents run). */
  readonly cniBin?: string;
}

export async function startInpodMesh(opts: InpodMeshOptions = {}): Promise<InpodMesh> {
  const bun = bunPath();
  if (!bun) throw new Error("bun is required for in-pod capture (deno task setup installs it)");
  const extra = Array.from({ length: opts.extraClients ?? 0 }, (_, i) => `client${i + 2}`);
  const topo = await buildTopology([["client", ...extra], ["server", "outsider"]]);
  const dir = await mkdtemp(join(tmpdir(), "weft-inpod-"));
  const agents: WeftProc[] = [];
  const x = topo.pod("client").ip.split(".")[1];
  const vip = `10.${x}.200.10`;
  const wl: Wl[] = [
    { name: "client", sa: "client", pod: topo.pod("client") },
    ...extra.map((n) => ({ name: n, sa: "client", pod: topo.pod(n) })),
    { name: "server", sa: "server", pod: topo.pod("server"), mtlsMode: "STRICT" },
  ];
  const cfgPath = (n: number): string => join(dir, `node${n}.yaml`);
  const writeCfg = (n: number, policies: unknown[]): Promise<void> =>
    writeFile(
      cfgPath(n),
      nodeConfig(n, dir, wl.filter((w) => w.pod.node === n), wl, vip, policies),
    );
  // weft on Bun (the shipped runtime), or the shipped binary when WEFT_BIN names it.
  const weft = (argv: readonly string[]): [string, string[]] =>
    weftCommand(argv, weftBin() ? undefined : bun);
  const inNode = (n: number, argv: readonly string[]): [string, string[]] => {
    const [program, args] = weft(argv);
    return ["ip", ["netns", "exec", topo.nodes[n - 1]!.ns, program, ...args]];
  };
  const start = (n: number): Promise<WeftProc> =>
    startWeft(["run", "--config", cfgPath(n)], {
      command: opts.agentCommand?.(n, `/var/run/netns/${topo.nodes[n - 1]!.ns}`, dir) ??
        ((argv) => inNode(n, argv)),
    });
  const close = async (): Promise<void> => {
    await Promise.all(agents.map((a) => a.stop().catch(() => 0)));
    await topo.destroy();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    if (!weftBin() && !opts.agentCommand) await ensurePluginsBuilt();
    await writeCfg(1, []);
    await writeCfg(2, []);
    agents.push(await start(1)); // node 1 creates the shared dev CA first
    agents.push(await start(2));
    await topo.serve(topo.pod("server").ns, [
      bun,
      join(ROOT, "tests/support/pod_http_server.ts"),
      "server",
      topo.pod("server").ip,
      String(APP_PORT),
    ]);
    await topo.serve(topo.pod("outsider").ns, [
      bun,
      join(ROOT, "tests/support/pod_http_server.ts"),
      "outsider",
      topo.pod("outsider").ip,
      String(APP_PORT),
    ]);
  } catch (e) {
    await close();
    throw e;
  }
  const mesh: InpodMesh = {
    topo,
    dir,
    vip,
    agents,
    cni: async (pod, command) => {
      const uid = `uid-${topo.id}-${pod.name}`;
      const conf = {
        cniVersion: "1.0.0",
        name: "weft-test",
        type: "weft-cni",
        zdsSocket: join(dir, `n${pod.node}`, "zds.sock"),
        prevResult: {
          cniVersion: "1.0.0",
          interfaces: [{ name: "eth0", sandbox: pod.netnsPath }],
          ips: [{ address: `${pod.ip}/32`, gateway: pod.gateway, interface: 0 }],
        },
      };
      const [program, args] = opts.cniBin ? [opts.cniBin, ["cni"]] : weft(["cni"]);
      const r = await topo.run(topo.nodes[pod.node - 1]!.ns, [program, ...args], {
        stdin: JSON.stringify(conf),
        env: {
          CNI_COMMAND: command,
          CNI_CONTAINERID: `ctr-${pod.name}`,
          CNI_NETNS: pod.netnsPath,
          CNI_IFNAME: "eth0",
          CNI_PATH: "/opt/cni/bin",
          CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name};K8S_POD_UID=${uid}`,
        },
      });
      return { code: r.code, stdout: r.stdout };
    },
    curl: async (pod, url, extraArgs = []) => {
      const r = await topo.run(pod.ns, [
        "curl",
        "-sS",
        "--max-time",
        "5",
        ...extraArgs,
        url,
      ]);
      return { code: r.code, body: r.code === 0 ? r.stdout : r.stderr };
    },
    restartAgent: async (n) => {
      await agents[n - 1]!.stop();
      const p = await start(n);
      agents[n - 1] = p;
      return p;
    },
    setPolicies: (policies) => writeCfg(2, policies),
    close,
  };
  return mesh;
}
