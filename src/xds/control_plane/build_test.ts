/** The node view as istiod shapes it for ztunnel: every workload and service as an Address. */
import assert from "node:assert/strict";
import { fromBinary } from "@bufbuild/protobuf";
import { IstioAddressSchema, ListenerSchema, TcpProxySchema } from "../proto.ts";
import { ADDRESS, LISTENER } from "../type_urls.ts";
import { meshYaml } from "../_test_fixtures.ts";
import { buildNode } from "./build.ts";
import { parseMesh } from "./mesh.ts";
import { convertPeerAuthentication } from "../../istio/mod.ts";
import { authorizeL4 } from "../../core/mod.ts";
import type { Snapshot, Workload } from "../../core/mod.ts";

Deno.test("control plane: every node gets every workload and service as Address resources", () => {
  const addresses = buildNode(parseMesh(meshYaml(10)), "node-a").get(ADDRESS)!;
  assert.deepEqual([...addresses.keys()].sort(), [
    "cluster.local//Pod/default/db-1",
    "cluster.local//Pod/default/echo-1",
    "cluster.local//Pod/default/echo-2",
    "default/db.default.svc.cluster.local",
    "default/echo.default.svc.cluster.local",
  ]);
  const w = fromBinary(
    IstioAddressSchema,
    addresses.get("cluster.local//Pod/default/echo-2")!.any.value,
  );
  assert.equal(w.type.case, "workload");
  if (w.type.case !== "workload") return;
  assert.equal(w.type.value.node, "node-b");
  assert.deepEqual(Object.keys(w.type.value.services), ["default/echo.default.svc.cluster.local"]);
  assert.deepEqual(w.type.value.authorizationPolicies, ["default/echo-allow"]);
  assert.strictEqual(buildNode(parseMesh(meshYaml(10)), "node-b").size > 0, true);
});

Deno.test("PeerAuthentication STRICT refuses peers without a mesh identity, port-level PERMISSIVE opens", () => {
  const mesh = parseMesh(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: strict, namespace: default }
spec:
  selector: { matchLabels: { app: db } }
  mtls: { mode: STRICT }
  portLevelMtls: { "9090": { mode: PERMISSIVE } }
`);
  const policies = mesh.authorizationPolicies;
  assert.equal(policies.length, 1);
  const wl = { namespace: "default", labels: { app: "db" } } as unknown as Workload;
  const snap = { policies, rootNamespace: "istio-system" } as unknown as Snapshot;
  const at = (principal: string | undefined, port: number) =>
    authorizeL4(snap, wl, {
      sourcePrincipal: principal,
      sourceIp: "10.0.0.1",
      destinationIp: "10.0.0.2",
      destinationPort: port,
    }).allowed;
  assert.equal(at(undefined, 5432), false, "plaintext refused");
  assert.equal(at("spiffe://cluster.local/ns/default/sa/x", 5432), true, "mTLS allowed");
  assert.equal(at(undefined, 9090), true, "port-level PERMISSIVE");
  assert.deepEqual(
    convertPeerAuthentication({
      kind: "PeerAuthentication",
      meta: { name: "p", namespace: "default", labels: {}, annotations: {} },
      selector: undefined,
      mode: "PERMISSIVE",
      portLevelMtls: {},
    }),
    [],
  );
});

Deno.test("VirtualService tcp routes become a weighted tcp_proxy; MESH_EXTERNAL endpoints are not HBONE", () => {
  const mesh = parseMesh(`${meshYaml(10)}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: db }
spec: { host: db, subsets: [{ name: a, labels: { app: db } }, { name: b, labels: { app: db } }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db }
spec:
  hosts: [db]
  tcp:
    - match: [{ port: 5432 }]
      route:
        - { destination: { host: db, subset: a }, weight: 70 }
        - { destination: { host: db, subset: b }, weight: 30 }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext }
spec:
  hosts: [api.example.com]
  addresses: [192.0.2.10]
  ports: [{ number: 443, protocol: TLS, name: tls }]
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints: [{ address: 192.0.2.11 }]
`);
  const b = buildNode(mesh, "node-a");
  const l = fromBinary(
    ListenerSchema,
    b.get(LISTENER)!.get("db.default.svc.cluster.local:5432")!.any.value,
  );
  const tp = fromBinary(
    TcpProxySchema,
    (l.filterChains[0]!.filters[0]!.configType.value as { value: Uint8Array }).value,
  );
  assert.equal(tp.clusterSpecifier.case, "weightedClusters");
  if (tp.clusterSpecifier.case === "weightedClusters") {
    assert.deepEqual(tp.clusterSpecifier.value.clusters.map((c) => [c.name, c.weight]), [
      ["outbound|5432|a|db.default.svc.cluster.local", 70],
      ["outbound|5432|b|db.default.svc.cluster.local", 30],
    ]);
  }
  const ext = fromBinary(
    IstioAddressSchema,
    b.get(ADDRESS)!.get("cluster.local//Pod/default/ext-0")!.any.value,
  );
  assert.equal(ext.type.case === "workload" && ext.type.value.tunnelProtocol, 0);
});
