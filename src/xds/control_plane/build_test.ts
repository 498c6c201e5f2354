/** The node view as istiod shapes it for ztunnel: every workload and service as an Address. */
import assert from "node:assert/strict";
import { create, equals, fromBinary, toJson } from "@bufbuild/protobuf";
import {
  ClusterLoadAssignmentSchema,
  IstioAddressSchema,
  ListenerSchema,
  TcpProxySchema,
} from "../proto.ts";
import { ADDRESS, AUTHORIZATION, CLUSTER, ENDPOINT, LISTENER, ROUTE } from "../type_urls.ts";
import { ResourceStore } from "../store.ts";
import { applyResources } from "../apply.ts";
import { Translator } from "../translate.ts";
import { BASE } from "../_test_fixtures.ts";
import { meshYaml } from "../_test_fixtures.ts";
import { buildNode, lbEndpointBytes, workloadAddressBytes } from "./build.ts";
import { LbEndpointSchema } from "../gen/envoy/config/endpoint/v3/endpoint_components_pb.ts";
import { parseMesh, parseMeshSources } from "./mesh.ts";
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

Deno.test("PeerAuthentication: istiod's precedence, STRICT refuses peers without an identity", () => {
  const pod = (name: string, app: string) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: default, labels: { app: ${app} } }
spec: { nodeName: node-a }
status: { podIP: 10.1.0.${name.length} }
---`;
  const mesh = parseMesh(`${pod("db", "db")}${pod("legacy", "legacy")}${pod("web-1", "web")}
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: STRICT } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: legacy, namespace: default }
spec: { selector: { matchLabels: { app: legacy } }, mtls: { mode: PERMISSIVE } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: web, namespace: default }
spec:
  selector: { matchLabels: { app: web } }
  mtls: { mode: UNSET }
  portLevelMtls: { "9090": { mode: PERMISSIVE } }
`);
  const bound = Object.fromEntries([...mesh.policyBindings].map(([w, n]) => [w.name, n]));
  assert.equal(bound["legacy"], undefined, "workload-level PERMISSIVE opens the mesh-wide STRICT");
  assert.ok(bound["db"] && bound["web-1"] && bound["db"][0] !== bound["web-1"][0]);
  const addresses = buildNode(mesh, "node-a").get(ADDRESS)!;
  const db = fromBinary(
    IstioAddressSchema,
    addresses.get("cluster.local//Pod/default/db")!.any.value,
  );
  assert.deepEqual(db.type.case === "workload" && db.type.value.authorizationPolicies, bound["db"]);
  const wl = {
    namespace: "default",
    labels: { "weft.dev/bound-by-name": "true" },
  } as unknown as Workload;
  const at = (name: string, principal: string | undefined, port: number) =>
    authorizeL4(
      {
        policies: mesh.authorizationPolicies.filter((p) =>
          `${p.namespace}/${p.name}` === bound[name]![0]
        ),
        rootNamespace: "istio-system",
      } as unknown as Snapshot,
      wl,
      {
        sourcePrincipal: principal,
        sourceIp: "10.0.0.1",
        destinationIp: "10.0.0.2",
        destinationPort: port,
      },
    ).allowed;
  assert.equal(at("db", undefined, 5432), false, "plaintext refused");
  assert.equal(at("db", "spiffe://cluster.local/ns/default/sa/x", 5432), true, "mTLS allowed");
  assert.equal(at("web-1", undefined, 9090), true, "port-level PERMISSIVE");
  assert.equal(at("web-1", undefined, 8080), false, "other ports inherit STRICT");
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
  subjectAltNames: [spiffe://cluster.local/ns/ext/sa/api]
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
  // ServiceEntry subjectAltNames → the WDS Service's subject_alt_names (ztunnel's upstream_sans).
  const extSvc = fromBinary(
    IstioAddressSchema,
    b.get(ADDRESS)!.get("default/api.example.com")!.any.value,
  );
  assert.deepEqual(
    extSvc.type.case === "service" && extSvc.type.value.subjectAltNames,
    ["spiffe://cluster.local/ns/ext/sa/api"],
  );
});

Deno.test("ClusterLoadAssignment assembled from cached endpoint bytes decodes as Envoy expects", () => {
  const b = buildNode(parseMesh(meshYaml(10)), "node-a");
  const any = b.get(ENDPOINT)!.get("outbound|80|v2|echo.default.svc.cluster.local")!.any;
  const cla = fromBinary(ClusterLoadAssignmentSchema, any.value);
  assert.equal(cla.clusterName, "outbound|80|v2|echo.default.svc.cluster.local");
  assert.equal(cla.endpoints.length, 1);
  const loc = cla.endpoints[0]!;
  assert.ok(loc.locality !== undefined, "locality present (gRPC clients need it)");
  assert.equal(loc.loadBalancingWeight, 1);
  assert.equal(loc.lbEndpoints.length, 1);
  const ep = loc.lbEndpoints[0]!;
  assert.equal(ep.hostIdentifier.case, "endpoint");
  if (ep.hostIdentifier.case !== "endpoint") return;
  const sa = ep.hostIdentifier.value.address?.address;
  assert.equal(sa?.case === "socketAddress" && sa.value.address, "127.0.2.2");
  assert.equal(
    sa?.case === "socketAddress" && sa.value.portSpecifier.case === "portValue" &&
      sa.value.portSpecifier.value,
    8080,
  );
  const md = ep.metadata?.filterMetadata["weft"];
  assert.match(JSON.stringify(md), /"hbone":"127\.0\.2\.2:15008"/);
  assert.match(JSON.stringify(md), /"identity":"spiffe:\/\/cluster.local\/ns\/default\/sa\/echo"/);
});

Deno.test("Address workloads written by hand decode equal to protobuf-es messages", () => {
  const mesh = parseMesh(meshYaml(10));
  const w = mesh.workloads.find((x) => x.name === "echo-1")!;
  const services = {
    "default/echo.default.svc.cluster.local": { ports: [{ servicePort: 80, targetPort: 8080 }] },
  };
  const got = fromBinary(
    IstioAddressSchema,
    workloadAddressBytes(mesh, w, services, ["default/p"]),
  );
  const want = create(IstioAddressSchema, {
    type: {
      case: "workload",
      value: {
        uid: "cluster.local//Pod/default/echo-1",
        name: "echo-1",
        namespace: "default",
        addresses: [new Uint8Array([127, 0, 2, 1])],
        tunnelProtocol: 1,
        trustDomain: "cluster.local",
        serviceAccount: "echo",
        node: "node-a",
        canonicalName: "echo",
        canonicalRevision: "v1",
        workloadName: "echo-1",
        services,
        authorizationPolicies: ["default/p"],
      },
    },
  });
  assert.ok(equals(IstioAddressSchema, got, want), JSON.stringify(toJson(IstioAddressSchema, got)));
});

Deno.test("LbEndpoints written by hand decode equal to protobuf-es messages", () => {
  const mesh = parseMesh(meshYaml(10));
  const w = mesh.workloads.find((x) => x.name === "echo-2")!;
  const got = fromBinary(LbEndpointSchema, lbEndpointBytes(mesh, w, 8080));
  const want = create(LbEndpointSchema, {
    hostIdentifier: {
      case: "endpoint",
      value: {
        address: {
          address: {
            case: "socketAddress",
            value: { address: "127.0.2.2", portSpecifier: { case: "portValue", value: 8080 } },
          },
        },
      },
    },
    metadata: {
      filterMetadata: {
        weft: {
          workload: "echo-2",
          namespace: "default",
          node: "node-b",
          hbone: "127.0.2.2:15008",
          identity: "spiffe://cluster.local/ns/default/sa/echo",
          labels: { app: "echo", version: "v2" },
        },
      },
    },
  });
  assert.ok(equals(LbEndpointSchema, got, want), JSON.stringify(toJson(LbEndpointSchema, got)));
});

Deno.test("an incremental rebuild equals a build from scratch, and a route edit reuses every Address", () => {
  const split = (text: string) => {
    const docs = text.split(/^---\s*$/m).filter((d) => d.trim());
    return {
      pods: docs.filter((d) => /kind: Pod\b/.test(d)).join("---\n"),
      rest: docs.filter((d) => !/kind: Pod\b/.test(d)).join("---\n"),
    };
  };
  const cache = new Map();
  const sources = (weight: number, pods = split(meshYaml(weight)).pods) => [
    { file: "pods.yaml", text: pods },
    { file: "rest.yaml", text: split(meshYaml(weight)).rest },
  ];
  const versions = (r: ReturnType<typeof buildNode>) =>
    [...r].map(([t, m]) => [t, [...m].map(([n, b]) => [n, b.version])]);
  const fresh = (s: ReturnType<typeof sources>) =>
    versions(buildNode(parseMeshSources(s.map((x) => ({ ...x }))), ""));
  const b1 = buildNode(parseMeshSources(sources(10), cache), "");
  const s2 = sources(30);
  const b2 = buildNode(parseMeshSources(s2, cache), "", b1);
  assert.strictEqual(b2.get(ADDRESS), b1.get(ADDRESS)); // only the route changed
  assert.notDeepEqual(versions(b2), versions(b1));
  assert.deepEqual(versions(b2), fresh(s2));
  // A workload's labels change: it leaves subset v2 and the Address resources are rebuilt.
  const s3 = sources(30, split(meshYaml(30)).pods.replace("version: v2", "version: v1"));
  const b3 = buildNode(parseMeshSources(s3, cache), "", b2);
  assert.notStrictEqual(b3.get(ADDRESS), b2.get(ADDRESS));
  assert.deepEqual(versions(b3), fresh(s3));
  assert.notDeepEqual(versions(b3), versions(b2));
  // Back: the index and selections of an earlier workload set are not served stale.
  const b4 = buildNode(parseMeshSources(s2, cache), "", b3);
  assert.deepEqual(versions(b4), fresh(s2));
});

Deno.test("control plane: VirtualService sourceLabels matches are dropped as istiod's waypoint routes drop them", () => {
  const text = `apiVersion: v1
kind: Service
metadata: { name: r, namespace: ns }
spec: { clusterIPs: [10.0.0.1], selector: { app: r }, ports: [{ name: http, port: 80 }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: ns }
spec:
  hosts: [r]
  http:
    - match: [{ sourceLabels: { app: canary } }]
      route: [{ destination: { host: r, port: { number: 81 } } }]
    - match: [{ sourceLabels: { app: canary }, uri: { prefix: /a } }, { uri: { prefix: /b } }]
      route: [{ destination: { host: r, port: { number: 82 } } }]
    - route: [{ destination: { host: r } }]`;
  const mesh = parseMesh(text);
  const http = mesh.services.find((s) => s.name === "r")!.http;
  // The first route had only a sourceLabels block: gone; the second keeps its other block.
  assert.equal(http.length, 2);
  assert.deepEqual(http[0]!.match.map((m) => m.uri), [{ prefix: "/b" }]);
  assert.equal(http[1]!.match.length, 0);
  assert.deepEqual(
    mesh.warnings.filter((w) => w.includes("sourceLabels")).map((w) => w.split(":")[1]),
    [" spec.http[0].match[0].sourceLabels", " spec.http[1].match[0].sourceLabels"],
  );
});

Deno.test("an incremental rebuild equals a build from scratch when services come and go and inbound listeners appear", () => {
  const docs = meshYaml(10).split(/^---\s*$/m).filter((d) => d.trim());
  const isDb = (d: string) => /kind: Service\b/.test(d) && /name: db\b/.test(d);
  const httpPolicy = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: get-only, namespace: default }
spec: { selector: { matchLabels: { app: echo } }, rules: [{ to: [{ operation: { methods: [GET] } }] }] }`;
  const variants = [
    docs.join("---\n"),
    docs.filter((d) => !isDb(d)).join("---\n"), // a service goes
    [...docs, httpPolicy].join("---\n"), // it comes back; an HTTP policy: inbound listeners
    docs.join("---\n"), // the policy goes: its inbound listeners too
  ];
  const sorted = (r: ReturnType<typeof buildNode>) =>
    [...r].map(([t, m]) => [t, [...m].map(([n, b]) => `${n}@${b.version}`).sort()]);
  const cache = new Map();
  let prev: ReturnType<typeof buildNode> | undefined;
  for (const [i, text] of variants.entries()) {
    const built = buildNode(parseMeshSources([{ file: "m.yaml", text }], cache), "", prev);
    const fresh = buildNode(parseMeshSources([{ file: "m.yaml", text }]), "");
    assert.deepEqual(sorted(built), sorted(fresh), `variant ${i}`);
    const names = [...built.get(LISTENER)!.keys()];
    assert.equal(names.some((n) => n.startsWith("inbound|")), i === 2, `variant ${i}`);
    assert.equal(names.some((n) => n.startsWith("db.")), i !== 1, `variant ${i}`);
    prev = built;
  }
  assert.ok([...prev!.get(LISTENER)!.keys()].every((n) => !n.startsWith("inbound|")));
});

Deno.test("AuthorizationPolicy targetRefs: enforced by the service's inbound L7 listener only, never as an L4 Authorization", () => {
  const yaml = `${meshYaml(10)}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: echo-by-ref, namespace: default }
spec:
  targetRefs: [{ kind: Service, group: "", name: echo }]
  rules: [{ from: [{ source: { namespaces: [default] } }] }]
`;
  const mesh = parseMesh(yaml);
  const node = buildNode(mesh, "node-b");
  assert.ok(!node.get(AUTHORIZATION)?.has("default/echo-by-ref"), "no L4 Authorization for it");
  assert.ok(node.get(AUTHORIZATION)?.has("default/echo-allow"), "selector policies stay L4 too");
  // The RBAC policy ids sit in the listener's bytes as protobuf strings.
  const text = (b: { any: { value: Uint8Array } }) => new TextDecoder().decode(b.any.value);
  const holding = [...(node.get(LISTENER)?.entries() ?? [])]
    .filter(([, b]) => text(b).includes("ns[default]-policy[echo-by-ref]-rule[0]"));
  // echo has a workload on each node: each node's inbound listener for it carries the policy.
  assert.deepEqual(holding.map(([name]) => name).sort(), [
    "inbound|node-a|echo.default.svc.cluster.local",
    "inbound|node-b|echo.default.svc.cluster.local",
  ]);
  const nodeA = buildNode(mesh, "node-a");
  assert.ok(!nodeA.get(AUTHORIZATION)?.has("default/echo-by-ref"));
});

Deno.test("AuthorizationPolicy targetRefs on a TCP service: an L4 Authorization bound to its workloads", () => {
  const yaml = `${meshYaml(10)}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: db-by-ref, namespace: default }
spec:
  targetRefs: [{ kind: Service, group: "", name: db }]
  action: DENY
  rules: [{ from: [{ source: { notNamespaces: [default] } }] }]
`;
  const node = buildNode(parseMesh(yaml), "node-b");
  assert.ok(node.get(AUTHORIZATION)?.has("default/db-by-ref"));
  const db = fromBinary(
    IstioAddressSchema,
    node.get(ADDRESS)!.get("cluster.local//Pod/default/db-1")!.any.value,
  );
  assert.ok(
    db.type.case === "workload" &&
      db.type.value.authorizationPolicies.includes("default/db-by-ref"),
  );
  const echo = fromBinary(
    IstioAddressSchema,
    node.get(ADDRESS)!.get("cluster.local//Pod/default/echo-2")!.any.value,
  );
  assert.ok(
    echo.type.case === "workload" &&
      !echo.type.value.authorizationPolicies.includes("default/db-by-ref"),
  );
});

Deno.test("AuthorizationPolicy `{*}`/`{**}` paths: the inbound listener's RBAC holds Envoy URI templates the node reads back", () => {
  const yaml = `${meshYaml(10)}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: tpl, namespace: default }
spec:
  selector: { matchLabels: { app: echo } }
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/api/{*}/items", "/files/{**}"] } }] }]
`;
  const node = buildNode(parseMesh(yaml), "node-b");
  const listener = node.get(LISTENER)!.get("inbound|node-b|echo.default.svc.cluster.local")!;
  const text = new TextDecoder().decode(listener.any.value);
  assert.ok(text.includes("/api/*/items") && text.includes("/files/**"), "as pathTemplate");
  assert.ok(text.includes("envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig"));
  // The node's decoder and converter take it back to Istio's form.
  const store = new ResourceStore();
  for (const t of [LISTENER, CLUSTER, ENDPOINT, ROUTE]) {
    const r = applyResources(
      store,
      t,
      [...node.get(t)!.values()].map((x) => ({ name: undefined, version: x.version, any: x.any })),
      () => true,
    );
    assert.deepEqual(r.errors, [], t);
  }
  const echo = new Translator({ ...BASE, node: { ...BASE.node, name: "node-b" } }).build(store, "1")
    .services.find((x) => x.name === "echo")!;
  // The node's proto3 JSON of the RBAC (the authz filter converts it: rbac_config_plugin_test).
  const deny = JSON.stringify(echo.inboundFilters[0]!.config);
  assert.match(deny, /"pathTemplate":"\/api\/\*\/items"/);
  assert.match(deny, /"pathTemplate":"\/files\/\*\*"/);
});
