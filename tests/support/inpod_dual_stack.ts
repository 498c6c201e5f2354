/**
 * A dual-stack in-pod mesh (root only): tests/support/topology.ts's two node namespaces and pods,
 * plus IPv6 on every link (ULA fd00:<x>::/48, `nodad` so addresses are usable at once), weft on
 * Bun in each node with in-pod capture, and pods enrolled through `weft cni` with both addresses
 * in the CNI prevResult. Pods, each with an HTTP app on 8080 on each address: node 1 `client`
 * (enrolled, PERMISSIVE); node 2 `server` (enrolled, STRICT) and `outsider` (not in the mesh). Each enrolled pod's IPv6
 * address is a workload entry of its own (same service account, so the same identity). Services:
 * `web` (VIP 10.<x>.200.10:80) and `web6` (VIP [fd00:<x>:200::10]:80), both → server:8080.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { buildTopology, type PodNs, type Topology } from "./topology.ts";
import { bunPath } from "./inpod_mesh.ts";
import {
  ensurePluginsBuilt,
  MAIN,
  ROOT,
  startWeft,
  weftBin,
  weftCommand,
  type WeftProc,
} from "./weft_proc.ts";

export const APP_PORT = 8080;

export interface DualPod extends PodNs {
  readonly ip6: string;
  readonly gateway6: string;
}

export interface DualStackMesh {
  readonly topo: Topology;
  /** The runtime of the node agents. */
  readonly runtime: "bun" | "deno";
  /** Each node's IPv6 address on the wire between them. */
  readonly wire6: readonly string[];
  readonly agents: WeftProc[];
  readonly vip: string;
  readonly vip6: string;
  pod(name: string): DualPod;
  cni(pod: DualPod, command: "ADD" | "DEL" | "CHECK"): Promise<{ code: number; stdout: string }>;
  curl(pod: DualPod, url: string): Promise<{ code: number; body: string }>;
  /** Stop node n's agent and start it again (it re-enrolls its pods from its state file). */
  restartAgent(node: number): Promise<WeftProc>;
  close(): Promise<void>;
}

async function ipIn(topo: Topology, ns: string, args: string[]): Promise<void> {
  const r = await topo.run(ns, ["ip", ...args]);
  if (r.code !== 0) throw new Error(`ip ${args.join(" ")} in ${ns}: ${r.stderr.trim()}`);
}

/** IPv6 on the topology's links, mirroring its IPv4 plan (node wire /64, pods /128 via the node). */
async function addIpv6(topo: Topology, prefix: string): Promise<DualPod[]> {
  const [n1, n2] = topo.nodes as [Topology["nodes"][0], Topology["nodes"][0]];
  for (const n of [n1, n2]) {
    const r = await topo.run(n.ns, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    if (r.code !== 0) throw new Error(`ipv6 forwarding in ${n.ns}: ${r.stderr}`);
  }
  await ipIn(topo, n1.ns, ["addr", "add", `${prefix}::1/64`, "dev", "wire0", "nodad"]);
  await ipIn(topo, n2.ns, ["addr", "add", `${prefix}::2/64`, "dev", "wire0", "nodad"]);
  await ipIn(topo, n1.ns, ["route", "add", `${prefix}:2::/64`, "via", `${prefix}::2`]);
  await ipIn(topo, n2.ns, ["route", "add", `${prefix}:1::/64`, "via", `${prefix}::1`]);
  const perNode = new Map<number, number>();
  const pods: DualPod[] = [];
  for (const p of topo.pods) {
    const k = (perNode.get(p.node) ?? 0) + 1;
    perNode.set(p.node, k);
    const nodeNs = topo.nodes[p.node - 1]!.ns;
    const ip6 = `${prefix}:${p.node}::${10 + k}`;
    const gateway6 = `${prefix}:${p.node}::1`;
    await ipIn(topo, nodeNs, ["addr", "add", `${gateway6}/128`, "dev", `p${k}`, "nodad"]);
    await ipIn(topo, nodeNs, ["route", "add", `${ip6}/128`, "dev", `p${k}`]);
    await ipIn(topo, p.ns, ["addr", "add", `${ip6}/128`, "dev", "eth0", "nodad"]);
    await ipIn(topo, p.ns, ["route", "add", `${gateway6}/128`, "dev", "eth0"]);
    await ipIn(topo, p.ns, ["route", "add", "default", "via", gateway6, "dev", "eth0"]);
    pods.push({ ...p, ip6, gateway6 });
  }
  return pods;
}

interface Wl {
  readonly name: string;
  readonly sa: string;
  readonly address: string;
  readonly node: number;
  readonly mtlsMode: string;
}

function nodeConfig(n: number, dir: string, all: Wl[], vip: string, vip6: string): string {
  const ep = (w: Wl) => ({
    workload: w.name,
    serviceAccount: w.sa,
    address: w.address,
    node: `node${w.node}`,
  });
  const service = (name: string, v: string, eps: Wl[]) => ({
    name,
    namespace: "default",
    hostname: `${name}.default.svc.cluster.local`,
    vips: [v],
    ports: [{ port: 80, targetPort: APP_PORT }],
    endpoints: eps.map(ep),
  });
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
    workloads: all.filter((w) => w.node === n).map((w) => ({
      name: w.name,
      namespace: "default",
      serviceAccount: w.sa,
      address: w.address,
      ports: [APP_PORT],
      mtlsMode: w.mtlsMode,
    })),
    services: [
      service("web", vip, all.filter((w) => w.name === "server")),
      service("web6", vip6, all.filter((w) => w.name === "server-v6")),
      // Every enrolled pod address is reachable over HBONE.
      { ...service("pods", "", all), vips: [], ports: [{ port: APP_PORT, targetPort: APP_PORT }] },
    ],
  });
}

/** The mesh with its node agents on `runtime` (Bun, or WEFT_BIN when set; Deno from source). */
export async function startDualStackMesh(
  runtime: "bun" | "deno" = "bun",
): Promise<DualStackMesh> {
  const bun = bunPath();
  if (!bun) throw new Error("bun is required for in-pod capture (deno task setup installs it)");
  const topo = await buildTopology([["client"], ["server", "outsider"]]);
  const dir = await mkdtemp(join(tmpdir(), "weft-inpod6-"));
  const agents: WeftProc[] = [];
  let restart: DualStackMesh["restartAgent"] = () => Promise.reject(new Error("not started"));
  const close = async (): Promise<void> => {
    await Promise.all(agents.map((a) => a.stop().catch(() => 0)));
    await topo.destroy();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const x = Number(topo.pod("client").ip.split(".")[1]);
    const prefix = `fd00:${x.toString(16)}`;
    const pods = await addIpv6(topo, prefix);
    const pod = (name: string): DualPod => pods.find((p) => p.name === name)!;
    const vip = `10.${x}.200.10`;
    const vip6 = `${prefix}:200::10`;
    const wl = (name: string, p: DualPod, mtlsMode: string): Wl[] => [
      { name, sa: name, address: p.ip, node: p.node, mtlsMode },
      { name: `${name}-v6`, sa: name, address: p.ip6, node: p.node, mtlsMode },
    ];
    const all = [
      ...wl("client", pod("client"), "PERMISSIVE"),
      ...wl("server", pod("server"), "STRICT"),
    ];
    const weft = (argv: readonly string[]): [string, string[]] =>
      runtime === "deno"
        ? [Deno.execPath(), ["run", "-A", MAIN, ...argv]]
        : weftCommand(argv, weftBin() ? undefined : bun);
    if (runtime === "deno" || !weftBin()) await ensurePluginsBuilt();
    const start = (n: number): Promise<WeftProc> =>
      startWeft(["run", "--config", join(dir, `node${n}.yaml`)], {
        command: (argv) => {
          const [program, args] = weft(argv);
          return ["ip", ["netns", "exec", topo.nodes[n - 1]!.ns, program, ...args]];
        },
      });
    for (const n of [1, 2]) {
      await writeFile(join(dir, `node${n}.yaml`), nodeConfig(n, dir, all, vip, vip6));
      agents.push(await start(n)); // node 1 first: it creates the shared dev CA
    }
    restart = async (n) => {
      await agents[n - 1]!.stop();
      agents[n - 1] = await start(n);
      return agents[n - 1]!;
    };
    // The pods' unmodified app: one server per address (each reports the peer it saw).
    for (const name of ["client", "server", "outsider"]) {
      for (const ip of [pod(name).ip, pod(name).ip6]) {
        await topo.serve(pod(name).ns, [
          bun,
          join(ROOT, "tests/support/pod_http_server.ts"),
          name,
          ip,
          String(APP_PORT),
        ]);
      }
    }
    return {
      topo,
      runtime,
      wire6: [`${prefix}::1`, `${prefix}::2`],
      agents,
      vip,
      vip6,
      pod,
      restartAgent: (n) => restart(n),
      cni: async (p, command) => {
        const conf = {
          cniVersion: "1.0.0",
          name: "weft-test",
          type: "weft-cni",
          zdsSocket: join(dir, `n${p.node}`, "zds.sock"),
          prevResult: {
            cniVersion: "1.0.0",
            interfaces: [{ name: "eth0", sandbox: p.netnsPath }],
            ips: [
              { address: `${p.ip}/32`, gateway: p.gateway, interface: 0 },
              { address: `${p.ip6}/128`, gateway: p.gateway6, interface: 0 },
            ],
          },
        };
        const [program, args] = weft(["cni"]);
        const r = await topo.run(topo.nodes[p.node - 1]!.ns, [program, ...args], {
          stdin: JSON.stringify(conf),
          env: {
            CNI_COMMAND: command,
            CNI_CONTAINERID: `ctr-${p.name}`,
            CNI_NETNS: p.netnsPath,
            CNI_IFNAME: "eth0",
            CNI_PATH: "/opt/cni/bin",
            CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${p.name};K8S_POD_UID=uid-${p.name}`,
          },
        });
        return { code: r.code, stdout: r.stdout };
      },
      curl: async (p, url) => {
        const r = await topo.run(p.ns, ["curl", "-sS", "-g", "--max-time", "5", url]);
        return { code: r.code, body: r.code === 0 ? r.stdout : r.stderr };
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
