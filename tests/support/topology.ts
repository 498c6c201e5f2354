/**
 * Nodes and pods as Linux network namespaces (root only), for in-pod capture tests:
 *   node i: namespace `<id>-n<i>`, wire veth `wire0` (10.<x>.0.<i>/24) to the other node,
 *           ip_forward on, a route to each other node's pod range via the wire;
 *   pod:    namespace `<id>-n<i>p<k>`, `eth0` with 10.<x>.<i>.<10+k>/32 and a default route via
 *           the node (10.<x>.<i>.1, on the node's side of each pod veth, Calico-style /32s).
 * The 10.<x>.0.0/16 range exists only inside these namespaces. Every name carries a random id,
 * so concurrent tests never collide; `destroy()` kills what was started and deletes every
 * namespace (which deletes their links), also after a failure.
 */
import { spawnSync } from "node:child_process";

export interface PodNs {
  readonly name: string;
  readonly ns: string;
  readonly node: number;
  readonly ip: string;
  readonly gateway: string;
  readonly netnsPath: string;
}

export interface Topology {
  readonly id: string;
  readonly nodes: readonly { readonly ns: string; readonly wireIp: string }[];
  readonly pods: readonly PodNs[];
  pod(name: string): PodNs;
  /** Run to completion inside `ns`. */
  run(
    ns: string,
    args: string[],
    opts?: { stdin?: string; env?: Record<string, string>; timeoutMs?: number },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Start a long-running process inside `ns` (killed by destroy); resolves once it has
   * printed its first line (its ready signal). */
  serve(ns: string, args: string[], timeoutMs?: number): Promise<Deno.ChildProcess>;
  addPod(node: number, name: string): Promise<PodNs>;
  destroy(): Promise<void>;
}

function have(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

/** Why namespace tests cannot run here, or undefined. */
export function topologyUnavailable(): string | undefined {
  if (Deno.build.os !== "linux") return "needs Linux network namespaces";
  if (Deno.uid() !== 0) return "needs root (network namespaces, nftables)";
  for (const cmd of ["ip", "nft", "nsenter", "curl"]) {
    if (!have(cmd)) return `needs \`${cmd}\` (deno task setup installs it)`;
  }
  const probe = `wtprobe-${crypto.randomUUID().slice(0, 8)}`;
  const add = spawnSync("ip", ["netns", "add", probe], { stdio: "ignore" });
  const nft = add.status === 0
    ? spawnSync("ip", ["netns", "exec", probe, "nft", "add", "table", "ip", "probe"], {
      stdio: "ignore",
    })
    : undefined;
  spawnSync("ip", ["netns", "del", probe], { stdio: "ignore" });
  if (add.status !== 0) return "cannot create network namespaces here";
  if (nft?.status !== 0) return "nftables does not work in a network namespace here";
  return undefined;
}

async function sh(args: string[], stdin?: string): Promise<string> {
  const p = new Deno.Command(args[0]!, {
    args: args.slice(1),
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const r = await p.output();
  const dec = new TextDecoder();
  if (!r.success) throw new Error(`${args.join(" ")}: ${dec.decode(r.stderr).trim()}`);
  return dec.decode(r.stdout);
}

export async function buildTopology(podsPerNode: readonly string[][]): Promise<Topology> {
  const id = `wt${crypto.randomUUID().slice(0, 6)}`;
  const x = 64 + Math.floor(Math.random() * 128);
  const namespaces: string[] = [];
  const children: Deno.ChildProcess[] = [];
  const nodes = podsPerNode.map((_, i) => ({
    ns: `${id}-n${i + 1}`,
    wireIp: `10.${x}.0.${i + 1}`,
  }));
  const pods: PodNs[] = [];
  const podCount = new Map<number, number>();
  const ipIn = (ns: string, ...a: string[]): Promise<string> => sh(["ip", "-n", ns, ...a]);

  const addPod = async (node: number, name: string): Promise<PodNs> => {
    const k = (podCount.get(node) ?? 0) + 1;
    podCount.set(node, k);
    const nodeNs = nodes[node - 1]!.ns;
    const ns = `${id}-n${node}p${k}`;
    const ip = `10.${x}.${node}.${10 + k}`;
    const gateway = `10.${x}.${node}.1`;
    await sh(["ip", "netns", "add", ns]);
    namespaces.push(ns);
    await ipIn(ns, "link", "set", "lo", "up");
    await ipIn(nodeNs, "link", "add", `p${k}`, "type", "veth", "peer", "name", "eth0", "netns", ns);
    await ipIn(nodeNs, "addr", "add", `${gateway}/32`, "dev", `p${k}`);
    await ipIn(nodeNs, "link", "set", `p${k}`, "up");
    await ipIn(nodeNs, "route", "add", `${ip}/32`, "dev", `p${k}`);
    await ipIn(ns, "addr", "add", `${ip}/32`, "dev", "eth0");
    await ipIn(ns, "link", "set", "eth0", "up");
    await ipIn(ns, "route", "add", gateway, "dev", "eth0");
    await ipIn(ns, "route", "add", "default", "via", gateway, "dev", "eth0");
    const pod: PodNs = { name, ns, node, ip, gateway, netnsPath: `/var/run/netns/${ns}` };
    pods.push(pod);
    return pod;
  };

  const destroy = async (): Promise<void> => {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
      await c.status.catch(() => {});
    }
    for (const ns of namespaces.reverse()) {
      spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
    }
  };

  try {
    for (const n of nodes) {
      await sh(["ip", "netns", "add", n.ns]);
      namespaces.push(n.ns);
      await ipIn(n.ns, "link", "set", "lo", "up");
      await sh(["ip", "netns", "exec", n.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
      await sh(["ip", "netns", "exec", n.ns, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"]);
    }
    // A wire between node 1 and each other node (two nodes: one veth pair).
    for (let i = 1; i < nodes.length; i++) {
      const a = nodes[0]!;
      const b = nodes[i]!;
      const ifa = `wire${i - 1}`;
      await ipIn(a.ns, "link", "add", ifa, "type", "veth", "peer", "name", "wire0", "netns", b.ns);
      await ipIn(a.ns, "addr", "add", `${a.wireIp}/24`, "dev", ifa);
      await ipIn(b.ns, "addr", "add", `${b.wireIp}/24`, "dev", "wire0");
      await ipIn(a.ns, "link", "set", ifa, "up");
      await ipIn(b.ns, "link", "set", "wire0", "up");
      await ipIn(a.ns, "route", "add", `10.${x}.${i + 1}.0/24`, "via", b.wireIp);
      await ipIn(b.ns, "route", "add", `10.${x}.1.0/24`, "via", a.wireIp);
    }
    for (const [i, names] of podsPerNode.entries()) {
      for (const name of names) await addPod(i + 1, name);
    }
  } catch (e) {
    await destroy();
    throw e;
  }

  return {
    id,
    nodes,
    pods,
    pod: (name) => {
      const p = pods.find((q) => q.name === name);
      if (!p) throw new Error(`no pod ${name}`);
      return p;
    },
    run: async (ns, args, opts = {}) => {
      const p = new Deno.Command("ip", {
        args: ["netns", "exec", ns, ...args],
        stdin: opts.stdin === undefined ? "null" : "piped",
        stdout: "piped",
        stderr: "piped",
        ...(opts.env ? { env: opts.env } : {}),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 20_000),
      }).spawn();
      if (opts.stdin !== undefined) {
        const w = p.stdin.getWriter();
        await w.write(new TextEncoder().encode(opts.stdin));
        await w.close();
      }
      const r = await p.output();
      const dec = new TextDecoder();
      return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
    },
    serve: async (ns, args, timeoutMs = 15_000) => {
      const c = new Deno.Command("ip", {
        args: ["netns", "exec", ns, ...args],
        stdin: "null",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      children.push(c);
      const reader = c.stdout.getReader();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const first = await Promise.race([
        reader.read(),
        new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), timeoutMs)),
      ]);
      clearTimeout(timer);
      if (!first || first.done) throw new Error(`${args.join(" ")} in ${ns} did not start`);
      // Keep draining so the child never blocks on a full pipe.
      (async () => {
        while (!(await reader.read().catch(() => ({ done: true }))).done) { /* drain */ }
      })();
      return c;
    },
    addPod,
    destroy,
  };
}

/** Namespaces of a topology still present (cleanup checks). */
export async function leftoverNamespaces(id: string): Promise<string[]> {
  const out = await sh(["ip", "netns", "list"]);
  return out.split("\n").map((l) => l.split(" ")[0]!).filter((n) => n.startsWith(id));
}
