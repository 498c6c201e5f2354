/**
 * Two weft node agents on Bun, each in its node namespace, with in-pod capture on, and pods
 * enrolled through the real `weft cni` command (tests, demo:pods and bench:inpod share it).
 * Pods: node 1 `client` (enrolled); node 2 `server` (enrolled, STRICT, an HTTP app on 8080) and
 * `outsider` (not in the mesh). Service `web` has the virtual address 10.<x>.200.10:80.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { primaryConfFile } from "../../src/inpod/mod.ts";
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
  /** Installs the CNI plugin on node n for its agent's socket (tests/container_inpod_test.ts:
   * the image's `weft cni install`, as the DaemonSet's init container runs it) and returns the
   * node's CNI dirs. Pods are then set up as a container runtime runs a chained plugin: the
   * first network config's weft entry, executed from binDir by its `type` with no arguments.
   * By default `weft cni` runs as the agents run. */
  readonly installCni?: (
    node: number,
    socket: string,
  ) => Promise<{ readonly binDir: string; readonly confDir: string }>;
}

/** What a CNI runtime runs for weft's entry on a node: libcni execs `<binDir>/<type>` with no
 * arguments and the entry, plus the list's name and cniVersion, as the network config. */
async function chainedPlugin(
  cni: { readonly binDir: string; readonly confDir: string },
): Promise<{ program: string; conf: Record<string, unknown> }> {
  const file = primaryConfFile(await readdir(cni.confDir));
  if (!file) throw new Error(`no network config in ${cni.confDir}`);
  const list = JSON.parse(await readFile(join(cni.confDir, file), "utf8"));
  const weft = (list.plugins as { type: string }[]).filter((p) => p.type === "weft-cni");
  if (weft.length !== 1) throw new Error(`${file}: ${weft.length} weft-cni entries`);
  return {
    program: join(cni.binDir, weft[0]!.type),
    conf: { ...weft[0], cniVersion: list.cniVersion, name: list.name },
  };
}

export async function startInpodMesh(opts: InpodMeshOptions = {}): Promise<InpodMesh> {
  const bun = bunPath();
  if (!bun) throw new Error("bun is required for in-pod capture (deno task setup installs it)");
  const extra = Array.from({ length: opts.extraClients ?? 0 }, (_, i) => `client${i + 2}`);
  const topo = await buildTopology([["client", ...extra], ["server", "outsider"]]);
  const dir = await mkdtemp(join(tmpdir(), "weft-inpod-"));
  const agents: WeftProc[] = [];
  const nodeCni: { readonly binDir: string; readonly confDir: string }[] = [];
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
    for (const n of opts.installCni ? [1, 2] : []) {
      nodeCni[n] = await opts.installCni!(n, join(dir, `n${n}`, "zds.sock"));
    }
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
      const installed = nodeCni[pod.node] ? await chainedPlugin(nodeCni[pod.node]!) : undefined;
      const conf = {
        ...(installed?.conf ?? {
          cniVersion: "1.0.0",
          name: "weft-test",
          type: "weft-cni",
          zdsSocket: join(dir, `n${pod.node}`, "zds.sock"),
        }),
        prevResult: {
          cniVersion: "1.0.0",
          interfaces: [{ name: "eth0", sandbox: pod.netnsPath }],
          ips: [{ address: `${pod.ip}/32`, gateway: pod.gateway, interface: 0 }],
        },
      };
      const [program, args] = installed ? [installed.program, []] : weft(["cni"]);
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
