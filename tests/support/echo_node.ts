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
