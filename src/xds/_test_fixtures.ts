/** Shared fixtures for src/xds tests: a bootstrap base and a small mesh file. */
import type { SnapshotBase } from "./translate.ts";
import { meshManifestsFromYaml } from "../../tests/support/istio_manifests.ts";

export const BASE: SnapshotBase = {
  node: { name: "node-a", hbonePort: 15008, trustDomain: "cluster.local", network: "" },
  rootNamespace: "istio-system",
  outboundTrafficPolicy: "ALLOW_ANY",
  timeouts: { connectMs: 1000, idleMs: 60000, drainMs: 1000 },
  limits: { maxConnections: 100, poolMaxStreamsPerConnection: 100, poolIdleMs: 1000 },
} as unknown as SnapshotBase;

/** The mesh as Istio manifests (Pods, Services, DestinationRule, VirtualService, policy). */
export function meshYaml(v2weight: number): string {
  return meshManifestsFromYaml(compactMeshYaml(v2weight));
}

/** The same mesh in the compact test form (tests/support/istio_manifests.ts). */
export function compactMeshYaml(v2weight: number): string {
  return `
trustDomain: cluster.local
workloads:
  - { name: echo-1, namespace: default, serviceAccount: echo, address: 127.0.2.1, node: node-a, labels: { app: echo, version: v1 } }
  - { name: echo-2, namespace: default, serviceAccount: echo, address: 127.0.2.2, node: node-b, labels: { app: echo, version: v2 } }
  - { name: db-1, namespace: default, address: 127.0.3.1, node: node-b, labels: { app: db } }
services:
  - name: echo
    vips: [127.10.0.1]
    ports: [{ port: 80, targetPort: 8080, protocol: HTTP }]
    subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
    http:
      - route:
          - { destination: { subset: v1 }, weight: ${100 - v2weight} }
          - { destination: { subset: v2 }, weight: ${v2weight} }
        fault: { abort: { httpStatus: 503, percentage: { value: 10 } } }
  - name: db
    vips: [127.10.0.2]
    ports: [{ port: 5432, protocol: TCP }]
authorizationPolicies:
  - name: echo-allow
    namespace: default
    selector: { app: echo }
    rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/sleep"] } }] }]
`;
}
