/**
 * The redirection istio-cni installs in each ambient pod, owned by weft and written as nftables
 * (one weft-owned table inside the pod's network namespace, applied with `nsenter --net=<netns>
 * nft -f -`):
 *   outbound TCP → 15001, except loopback, the node's own addresses, port 15008 and packets
 *   carrying weft's socket mark 0x539;
 *   inbound TCP → 15006, except port 15008 (HBONE) and marked packets.
 * Exclusion of weft's own connections: a socket mark, as ztunnel's. Every connection weft makes
 * for a pod (HBONE to 15008 elsewhere, passthrough, delivery to the pod's app) is created inside
 * the pod's namespace with SO_MARK 0x539 set before connect, and both chains accept marked
 * packets first. A mark rather than a uid exclusion, because the app and weft may share a uid
 * (root), and rather than destination exclusions, which would also let the app bypass capture.
 */
import { spawn } from "node:child_process";
import { WeftError } from "../core/mod.ts";

export const INPOD_TABLE = "weft_inpod";
export const WEFT_MARK = 0x539;

export interface PodRuleOptions {
  readonly outboundPort: number;
  readonly inboundPort: number;
  readonly hbonePort: number;
  /** Addresses of the node (the pod's gateway): traffic to them is not captured. */
  readonly nodeAddresses: readonly string[];
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** The nft script for one pod (idempotent: it replaces the table if present). */
export function podRules(o: PodRuleOptions): string {
  const nodes = o.nodeAddresses.filter((a) => IPV4.test(a));
  const mark = `0x${WEFT_MARK.toString(16)}`;
  return [
    `table ip ${INPOD_TABLE} {}`,
    `delete table ip ${INPOD_TABLE}`,
    `table ip ${INPOD_TABLE} {`,
    `  chain prerouting {`,
    `    type nat hook prerouting priority dstnat; policy accept;`,
    `    meta mark ${mark} accept`,
    `    iifname "lo" accept`,
    `    tcp dport ${o.hbonePort} accept`,
    `    meta l4proto tcp redirect to :${o.inboundPort}`,
    `  }`,
    `  chain output {`,
    `    type nat hook output priority -100; policy accept;`,
    `    meta mark ${mark} accept`,
    `    oifname "lo" accept`,
    ...(nodes.length ? [`    ip daddr { ${nodes.join(", ")} } accept`] : []),
    `    tcp dport ${o.hbonePort} accept`,
    `    meta l4proto tcp redirect to :${o.outboundPort}`,
    `  }`,
    `}`,
    "",
  ].join("\n");
}

function run(netns: string, args: string[], stdin?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn("nsenter", [`--net=${netns}`, "nft", ...args], {
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
      else reject(new WeftError("nft_failed", `Cannot run nft in ${netns}: ${err.trim()}`));
    });
    p.stdin.end(stdin ?? "");
  });
}

export async function applyPodRules(netns: string, o: PodRuleOptions): Promise<void> {
  await run(netns, ["-f", "-"], podRules(o));
}

/** Delete weft's table from the pod; a missing table or namespace is not an error. */
export async function removePodRules(netns: string): Promise<void> {
  try {
    await run(netns, ["delete", "table", "ip", INPOD_TABLE]);
  } catch (e) {
    const msg = String((e as Error).message);
    if (!/No such file|does not exist|reference count|No such/i.test(msg)) throw e;
  }
}

/** Whether weft's table exists in the pod (CNI CHECK, tests). */
export async function hasPodRules(netns: string): Promise<boolean> {
  const out = await run(netns, ["list", "tables"]);
  return out.split("\n").some((l) => l.trim() === `table ip ${INPOD_TABLE}`);
}
