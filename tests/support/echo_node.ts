/**
 * weft.yaml for the route tests' one node: the client workload `sleep` at ip(2) and an HTTP
 * service `echo` on VIP ip(100):80 → `targetPort`; each test gives the service's endpoints,
 * subsets and routes (`service`) and any other top-level entries (`extra`).
 */
import { join } from "node:path";
import { LISTENERS } from "./weft_proc.ts";

export function echoNodeConfig(
  dir: string,
  ip: (host: number) => string,
  targetPort: number,
  service: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    node: { name: "node-a" },
    ca: { mode: "auto", stateDir: join(dir, "ca") },
    listeners: LISTENERS,
    workloads: [{ name: "sleep", namespace: "default", serviceAccount: "sleep", address: ip(2) }],
    services: [{
      name: "echo",
      namespace: "default",
      vips: [ip(100)],
      ports: [{ port: 80, targetPort, protocol: "HTTP" }],
      ...service,
    }],
    ...extra,
  };
}

/** The route tests' node with three HTTP services on plain TCP: `echo` (VIP ip(100)) and `svc-a`
 * (ip(101)) on the workload at ip(3), `svc-b` (ip(102)) on the one at ip(4); `resources` are the
 * Istio / Gateway API documents that route `echo`. */
export function threeServiceNodeConfig(
  dir: string,
  ip: (host: number) => string,
  targetPort: number,
  resources: readonly unknown[],
): Record<string, unknown> {
  const svc = (name: string, vip: string, address: string) => ({
    name,
    namespace: "default",
    vips: [vip],
    ports: [{ port: 80, targetPort, protocol: "HTTP" }],
    endpoints: [{ address, tunnel: "NONE" }],
  });
  return {
    node: { name: "node-a" },
    ca: { mode: "auto", stateDir: join(dir, "ca") },
    listeners: LISTENERS,
    workloads: [{ name: "sleep", namespace: "default", serviceAccount: "sleep", address: ip(2) }],
    services: [
      svc("echo", ip(100), ip(3)),
      svc("svc-a", ip(101), ip(3)),
      svc("svc-b", ip(102), ip(4)),
    ],
    resources,
  };
}
