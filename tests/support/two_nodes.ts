/**
 * The two-node shape of the L7 mesh tests, written as weft.yaml: node-b hosts the server
 * workloads (it captures no service VIPs; Istio YAML from `dir`/istio), node-a hosts the client
 * workload `sleep` at ip(2) and captures the VIPs; both issue from one auto-mode CA state dir, so
 * their leaves chain to one root and the hop between them is HBONE over mTLS. withNodesAB starts
 * B, then A, and stops both, even on failure.
 */
import { stringify } from "yaml";
import { join } from "node:path";
import { LISTENERS, startWeft, type WeftProc } from "./weft_proc.ts";

function ca(dir: string): Record<string, unknown> {
  return { mode: "auto", stateDir: join(dir, "ca") };
}

/** Node B: `extra` entries replace or add top-level fields. */
export function nodeBConfig(
  dir: string,
  workloads: readonly unknown[],
  services: readonly unknown[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    node: { name: "node-b" },
    ca: ca(dir),
    listeners: { ...LISTENERS, captureServiceVips: false },
    workloads,
    services,
    configDir: join(dir, "istio"),
    ...extra,
  };
}

/** Node A with the client `sleep` at ip(2) as its default source workload. */
export function nodeAConfig(
  dir: string,
  ip: (host: number) => string,
  services: readonly unknown[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    node: { name: "node-a", defaultSourceWorkload: "sleep" },
    ca: ca(dir),
    listeners: LISTENERS,
    workloads: [{ name: "sleep", namespace: "default", serviceAccount: "sleep", address: ip(2) }],
    services,
    ...extra,
  };
}

/** An Istio AuthorizationPolicy for node B: DENY every path under /admin. */
export const DENY_ADMIN_YAML = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-admin
  namespace: default
spec:
  action: DENY
  rules:
    - to:
        - operation:
            paths: ["/admin*"]
`;

/** Node B's Istio YAML (`dir`/istio/<name>, one file per entry). */
export async function writeIstio(dir: string, files: Record<string, string>): Promise<void> {
  await Deno.mkdir(join(dir, "istio"), { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(join(dir, "istio", name), text);
  }
}

/** Writes `dir`/a.yaml and b.yaml, starts node B, then node A (each ready; `timeoutMs` each,
 * 120 s unless given), runs `check` and stops both, even on failure. */
export async function withNodesAB(
  dir: string,
  nodeA: Record<string, unknown>,
  nodeB: Record<string, unknown>,
  opts: { env?: Record<string, string>; runtime?: string | undefined; timeoutMs?: number },
  check: (a: WeftProc, b: WeftProc) => Promise<void>,
): Promise<void> {
  await Deno.writeTextFile(join(dir, "a.yaml"), stringify(nodeA));
  await Deno.writeTextFile(join(dir, "b.yaml"), stringify(nodeB));
  const { runtime, ...rest } = opts;
  const how = { timeoutMs: 120_000, ...rest, ...(runtime ? { runtime } : {}) };
  const procs: WeftProc[] = [];
  try {
    procs.push(await startWeft(["run", "--config", join(dir, "b.yaml")], how));
    procs.push(await startWeft(["run", "--config", join(dir, "a.yaml")], how));
    const [b, a] = procs as [WeftProc, WeftProc];
    await check(a, b);
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}
