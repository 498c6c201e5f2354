/**
 * The redirection istio-cni installs in each ambient pod, owned by weft and written as nftables
 * (one weft-owned `inet` table inside the pod's network namespace, IPv4 and IPv6 alike, as
 * Istio's nftables backend does; applied with `nsenter --net=<netns> nft -f -`):
 *   outbound TCP → 15001, except loopback, the node's own addresses, port 15008 and packets
 *   carrying weft's socket mark 0x539;
 *   inbound TCP → 15006, except port 15008 (HBONE) and marked packets.
 * Exclusion of weft's own connections: a socket mark, as ztunnel's. Every connection weft makes
 * for a pod (HBONE to 15008 elsewhere, passthrough, delivery to the pod's app) is created inside
 * the pod's namespace with SO_MARK set before connect (0x539; 0x53a for a delivery that keeps
 * the client's IP), and both chains accept marked packets first. Replies to a 0x53a delivery are
 * routed back to weft by connmark and a local routing table (ip rule fwmark 0x53a lookup 133, for each family the pod has). A mark rather than a uid exclusion, because the app and weft may share a uid
 * (root), and rather than destination exclusions, which would also let the app bypass capture.
 */
import { spawn, spawnSync } from "node:child_process";
import { isIPv4, isIPv6 } from "node:net";
import { WeftError } from "../core/mod.ts";

export const INPOD_TABLE = "weft_inpod";
export const WEFT_MARK = 0x539;
/** Deliveries that keep the client's IP (IP_TRANSPARENT): their replies are routed back to weft
 * by connmark and the local table ROUTE_TABLE. */
export const TRANSPARENT_MARK = 0x53a;
export const ROUTE_TABLE = 133;

export interface PodRuleOptions {
  readonly outboundPort: number;
  readonly inboundPort: number;
  readonly hbonePort: number;
  /** Addresses of the node (the pod's gateways): traffic to them is not captured. */
  readonly nodeAddresses: readonly string[];
}

/** The nft script for one pod (idempotent: it replaces the table if present, and drops the
 * IPv4-only `ip` table of agents before IPv6 support). */
export function podRules(o: PodRuleOptions): string {
  const nodes4 = o.nodeAddresses.filter((a) => isIPv4(a));
  const nodes6 = o.nodeAddresses.filter((a) => isIPv6(a));
  const marks = `{ 0x${WEFT_MARK.toString(16)}, 0x${TRANSPARENT_MARK.toString(16)} }`;
  const tmark = `0x${TRANSPARENT_MARK.toString(16)}`;
  return [
    `table ip ${INPOD_TABLE} {}`,
    `delete table ip ${INPOD_TABLE}`,
    `table inet ${INPOD_TABLE} {}`,
    `delete table inet ${INPOD_TABLE}`,
    `table inet ${INPOD_TABLE} {`,
    `  chain prerouting {`,
    `    type nat hook prerouting priority dstnat; policy accept;`,
    `    meta mark ${marks} accept`,
    `    iifname "lo" accept`,
    `    tcp dport ${o.hbonePort} accept`,
    `    meta l4proto tcp redirect to :${o.inboundPort}`,
    `  }`,
    `  chain output {`,
    `    type nat hook output priority -100; policy accept;`,
    `    meta mark ${marks} accept`,
    `    oifname "lo" accept`,
    ...(nodes4.length ? [`    ip daddr { ${nodes4.join(", ")} } accept`] : []),
    ...(nodes6.length ? [`    ip6 daddr { ${nodes6.join(", ")} } accept`] : []),
    `    tcp dport ${o.hbonePort} accept`,
    `    meta l4proto tcp redirect to :${o.outboundPort}`,
    `  }`,
    // A delivery that kept the client's IP: remember it on the connection, and send the app's
    // replies (addressed to that client IP) back to weft's socket through the local table.
    `  chain route_output {`,
    `    type route hook output priority mangle; policy accept;`,
    `    meta mark ${tmark} ct mark set ${tmark}`,
    `    ct mark ${tmark} meta mark set ${tmark}`,
    `  }`,
    `}`,
    "",
  ].join("\n");
}

/** Policy routing for the transparent deliveries of one family, as `ip -batch` lines (run with
 * `ip -6` for IPv6: a batch line cannot carry the family option). */
export function podRoutes(op: "add" | "del", v: 4 | 6 = 4): string {
  const any = v === 4 ? "0.0.0.0/0" : "::/0";
  return `rule ${op} fwmark 0x${TRANSPARENT_MARK.toString(16)} lookup ${ROUTE_TABLE}\n` +
    `route ${op} local ${any} dev lo table ${ROUTE_TABLE}\n`;
}

const ipArgs = (v: 4 | 6, ...a: string[]): string[] => (v === 6 ? ["-6", ...a] : a);

function run(netns: string, args: string[], stdin?: string, tool = "nft"): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn("nsenter", [`--net=${netns}`, tool, ...args], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => out += d);
    p.stderr.on("data", (d) => err += d);
    p.on(
      "error",
      (e) =>
        reject(
          new WeftError("nft_failed", `Cannot run nft in ${netns}: ${e.message}`, { cause: e }),
        ),
    );
    p.on("close", (code) => {
      if (code === 0) resolve(out);
      else reject(new WeftError("nft_failed", `Cannot run ${tool} in ${netns}: ${err.trim()}`));
    });
    p.stdin.end(stdin ?? "");
  });
}

/** The pod's rules and, for each family in `families`, its policy route (IPv6 ones only for a
 * pod with an IPv6 address: a namespace with IPv6 disabled refuses them). */
export async function applyPodRules(
  netns: string,
  o: PodRuleOptions,
  families: readonly (4 | 6)[] = [4],
): Promise<void> {
  // Idempotent: drop what a previous enrollment left (absent is fine), then add.
  for (const v of [4, 6] as const) {
    await run(netns, ipArgs(v, "-force", "-batch", "-"), podRoutes("del", v), "ip").catch(() => "");
  }
  for (const v of families) await run(netns, ipArgs(v, "-batch", "-"), podRoutes("add", v), "ip");
  await run(netns, ["-f", "-"], podRules(o));
}

/** Delete weft's table (and an older agent's `ip` one) and routes from the pod; a missing table
 * or namespace is not an error. */
export async function removePodRules(netns: string): Promise<void> {
  for (const v of [4, 6] as const) {
    await run(netns, ipArgs(v, "-force", "-batch", "-"), podRoutes("del", v), "ip").catch(() => "");
  }
  for (const family of ["inet", "ip"]) {
    try {
      await run(netns, ["delete", "table", family, INPOD_TABLE]);
    } catch (e) {
      const msg = String((e as Error).message);
      if (!/No such file|does not exist|reference count|No such/i.test(msg)) throw e;
    }
  }
}

/** Whether weft's table exists in the pod (CNI CHECK, tests). */
export async function hasPodRules(netns: string): Promise<boolean> {
  const out = await run(netns, ["list", "tables"]);
  return out.split("\n").some((l) => l.trim() === `table inet ${INPOD_TABLE}`);
}

/** The tools the pod rules need, missing ones named (checked once at agent start). */
export function missingTools(): string[] {
  const probes: [string, string[]][] = [["nsenter", ["--version"]], ["nft", ["--version"]], [
    "ip",
    ["-V"],
  ]];
  return probes.filter(([cmd, args]) => spawnSync(cmd, args, { stdio: "ignore" }).status !== 0)
    .map(([cmd]) => cmd);
}
