/**
 * The control plane names each workload's network and its network's east-west gateway (a
 * Service labelled `topology.istio.io/network` with the HBONE port 15008), in the Address
 * resource (Workload.network 4, network_gateway 19) and in EDS endpoint metadata; a node reads
 * both back onto its endpoints (double HBONE, hbone.md §9).
 */
import assert from "node:assert/strict";
import { BASE } from "../_test_fixtures.ts";
import { applyResources } from "../apply.ts";
import { ResourceStore } from "../store.ts";
import { Translator } from "../translate.ts";
import { ADDRESS, CLUSTER, ENDPOINT, LISTENER, ROUTE } from "../type_urls.ts";
import { buildNode } from "./build.ts";
import { parseMesh } from "./mesh.ts";
import { addressType } from "../resources/address.ts";

const MESH = (gatewayIp: string) => `
apiVersion: v1
kind: Pod
metadata: { name: local, namespace: default, labels: { app: echo } }
spec: { nodeName: node-a, serviceAccountName: echo }
status: { podIP: 127.0.8.1 }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: remote, namespace: default }
spec: { address: 10.2.0.7, network: n2, serviceAccount: echo, labels: { app: echo } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: nogw, namespace: default }
spec: { address: 10.3.0.7, network: n3, serviceAccount: echo, labels: { app: echo } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext, namespace: default }
spec:
  hosts: [ext.example.com]
  addresses: [127.10.0.10]
  ports: [{ number: 80, name: tcp, protocol: TCP }]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{ address: 10.2.0.8, network: n2, serviceAccount: ext }]
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec:
  clusterIPs: [127.10.0.9]
  selector: { app: echo }
  ports: [{ name: tcp-80, port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata:
  name: eastwest
  namespace: istio-system
  labels: { topology.istio.io/network: n2 }
spec:
  clusterIPs: [${gatewayIp}]
  selector: { app: eastwest }
  ports: [{ name: tls-hbone, port: 15008, targetPort: 15008 }]
`;

function nodeView(gatewayIp: string) {
  const b = buildNode(parseMesh(MESH(gatewayIp)), "node-a");
  const store = new ResourceStore();
  for (const t of [ADDRESS, LISTENER, CLUSTER, ENDPOINT, ROUTE]) {
    const r = applyResources(
      store,
      t,
      [...b.get(t)!.values()].map((x) => ({ name: undefined, version: x.version, any: x.any })),
      () => true,
    );
    assert.deepEqual(r.errors, [], t);
  }
  return new Translator(BASE).build(store, "1");
}

Deno.test("control plane: workloads carry their network and its east-west gateway to the node", () => {
  const snap = nodeView("192.0.2.80");
  const echo = snap.services.find((s) => s.name === "echo")!;
  const by = new Map(echo.endpoints.map((e) => [e.workload, e]));
  assert.equal(by.get("local")!.network, undefined);
  assert.equal(by.get("local")!.networkGateway, undefined);
  assert.equal(by.get("remote")!.network, "n2");
  assert.deepEqual(by.get("remote")!.networkGateway, {
    destination: { kind: "address", network: "n2", ip: "192.0.2.80" },
    hboneMtlsPort: 15008,
  });
  assert.equal(by.get("nogw")!.network, "n3", "a network without a gateway: no gateway");
  assert.equal(by.get("nogw")!.networkGateway, undefined);
  // A ServiceEntry endpoint of another network gets that network's gateway too.
  const ext = snap.services.find((s) => s.hostname === "ext.example.com")!;
  assert.equal(ext.endpoints[0]!.network, "n2");
  assert.equal(ext.endpoints[0]!.networkGateway?.hboneMtlsPort, 15008);
  // A gateway address edit reaches the workloads of that network.
  const moved = nodeView("192.0.2.81").services.find((s) => s.name === "echo")!;
  const remote = moved.endpoints.find((e) => e.workload === "remote")!;
  assert.equal(
    remote.networkGateway?.destination.kind === "address" && remote.networkGateway.destination.ip,
    "192.0.2.81",
  );
});

Deno.test("control plane: the Address resource carries Workload.network (4) and network_gateway (19)", () => {
  const b = buildNode(parseMesh(MESH("192.0.2.80")), "node-a");
  const values = [...b.get(ADDRESS)!.values()].map((x) => addressType.decode(x.any).value);
  const remote = values.find((v) => v.kind === "workload" && v.workload.name === "remote");
  assert.ok(remote?.kind === "workload");
  assert.equal(remote.network, "n2");
  assert.deepEqual(remote.networkGateway, {
    destination: { kind: "address", network: "n2", ip: "192.0.2.80" },
    hboneMtlsPort: 15008,
  });
  const local = values.find((v) => v.kind === "workload" && v.workload.name === "local");
  assert.ok(local?.kind === "workload" && local.network === "" && !local.networkGateway);
});
