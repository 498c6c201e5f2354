import { meshDocs } from "../../tests/support/istio_manifests.ts";

/** A synthetic mesh for benchmarks, as JSON (which is YAML too): `services` services ×
 * `perService` workloads spread over `nodes` nodes (10 000 workloads with the defaults). */
export function bigMeshJson(services = 1000, perService = 10, nodes = 100, v2 = 10): string {
  const workloads = [];
  let n = 0;
  for (let s = 0; s < services; s++) {
    for (let i = 0; i < perService; i++, n++) {
      workloads.push({
        name: `w${n}`,
        namespace: `ns${s % 20}`,
        serviceAccount: `sa${s}`,
        address: `127.${1 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`,
        node: `node-${n % nodes}`,
        labels: { app: `svc${s}`, version: `v${1 + (i % 2)}` },
      });
    }
  }
  const svcs = [];
  for (let s = 0; s < services; s++) {
    const http = s % 2 === 0;
    svcs.push({
      name: `svc${s}`,
      namespace: `ns${s % 20}`,
      vips: [`127.200.${s >> 8}.${s & 255}`],
      ports: [{ port: 80, targetPort: 8080, protocol: http ? "HTTP" : "TCP" }],
      ...(http
        ? {
          subsets: [{ name: "v1", labels: { version: "v1" } }, {
            name: "v2",
            labels: { version: "v2" },
          }],
          http: [{
            route: [{ destination: { subset: "v1" }, weight: 100 - v2 }, {
              destination: { subset: "v2" },
              weight: v2,
            }],
          }],
        }
        : {}),
    });
  }
  return JSON.stringify({ kind: "List", items: meshDocs({ workloads, services: svcs }) });
}
