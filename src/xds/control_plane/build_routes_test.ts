import assert from "node:assert/strict";
import { parseMesh } from "./mesh.ts";
import { routeConfig } from "./build_routes.ts";
import { routeValue } from "../resources/route.ts";
import { compactMeshYaml } from "../_test_fixtures.ts";
import { meshManifestsFromYaml } from "../../../tests/support/istio_manifests.ts";

const web = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  clusterIPs: [127.10.0.9]
  selector: { app: echo }
  ports: [{ name: http-80, port: 80, targetPort: 8080, appProtocol: http }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [web]
  http:
    - match: [{ uri: { prefix: /off } }]
      retries: { attempts: 0 }
      route: [{ destination: { host: web } }]
    - match: [{ uri: { prefix: /own } }]
      retries: { attempts: 4 }
      route: [{ destination: { host: web } }]
    - route: [{ destination: { host: web } }]
`;

function routesOf(mesh: string, host: string) {
  const m = parseMesh(mesh);
  const s = m.services.find((x) => x.name === host)!;
  return routeConfig(s, 80);
}

function policies(rc: ReturnType<typeof routeConfig>) {
  return rc.virtualHosts[0]!.routes.map((r) => {
    const rp = r.action.case === "route" ? r.action.value.retryPolicy : undefined;
    return rp && {
      retryOn: rp.retryOn,
      numRetries: rp.numRetries,
      codes: rp.retriableStatusCodes,
      hosts: rp.retryHostPredicate.map((p) => p.name),
      maxHostAttempts: rp.hostSelectionRetryMaxAttempts,
    };
  });
}

const ISTIO_DEFAULT = {
  retryOn: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
  numRetries: 2,
  codes: [],
  hosts: ["envoy.retry_host_predicates.previous_hosts"],
  maxHostAttempts: 5n,
};

Deno.test("control plane: every route carries Istio's retry policy, the default route built without a VirtualService too", () => {
  const base = meshManifestsFromYaml(compactMeshYaml(10));
  // echo's VirtualService sets no retries; db has none at all but is TCP; web's routes differ.
  assert.deepEqual(policies(routesOf(base, "echo")), [ISTIO_DEFAULT]);
  const mesh = `${base}\n---\n${web}`;
  assert.deepEqual(policies(routesOf(mesh, "web")), [
    undefined, // attempts: 0
    { ...ISTIO_DEFAULT, numRetries: 4 }, // attempts without retryOn: the default conditions
    ISTIO_DEFAULT,
  ]);
  // A node reads the default back as the mesh's default (it does not make the port L7 alone).
  const rules = routeValue(routesOf(mesh, "web"), "r").virtualHosts[0]!.rules;
  assert.deepEqual(rules.map((r) => r.policy?.defaultRetries), [undefined, undefined, true]);
  // A service without a VirtualService gets the default route with the default policy.
  const noVs = parseMesh(`${base}\n---\n${web.split("---")[0]}`);
  const plain = routeConfig(noVs.services.find((s) => s.name === "web")!, 80);
  assert.deepEqual(policies(plain), [ISTIO_DEFAULT]);
});

Deno.test("control plane: MeshConfig defaultHttpRetryPolicy replaces the default on routes without retries", () => {
  const base = meshManifestsFromYaml(compactMeshYaml(10)).replace(
    "  trustDomain: cluster.local\n",
    "  trustDomain: cluster.local\n  defaultHttpRetryPolicy:\n    attempts: 3\n    retryOn: 5xx,503\n    retryIgnorePreviousHosts: false\n",
  );
  assert.deepEqual(policies(routesOf(`${base}\n---\n${web}`, "web")), [
    undefined,
    { ...ISTIO_DEFAULT, numRetries: 4 }, // the route's own retries win whole
    {
      retryOn: "5xx,retriable-status-codes",
      numRetries: 3,
      codes: [503],
      hosts: [],
      maxHostAttempts: 5n,
    },
  ]);
  const off = base.replace(
    "    attempts: 3\n    retryOn: 5xx,503\n    retryIgnorePreviousHosts: false\n",
    "    attempts: 0\n",
  );
  assert.deepEqual(policies(routesOf(`${off}\n---\n${web}`, "web")), [
    undefined,
    { ...ISTIO_DEFAULT, numRetries: 4 },
    undefined,
  ]);
});

Deno.test("control plane: an HTTPRoute on a Service (GAMMA) becomes its routes, in Gateway API precedence", () => {
  const base = meshManifestsFromYaml(compactMeshYaml(10));
  const route = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r, namespace: default }
spec:
  parentRefs: [{ kind: Service, name: web, port: 80 }]
  rules:
    - matches: [{ path: { value: /a } }]
      backendRefs: [{ name: web, port: 80, weight: 3 }, { name: echo, port: 80 }]
    - matches: [{ path: { type: Exact, value: /a/b } }]
      backendRefs: [{ name: web, port: 80 }]
    - matches: [{ path: { value: /none } }]
`;
  const rc = routesOf(`${base}\n---\n${web.split("---")[0]}\n---\n${route}`, "web");
  const rs = rc.virtualHosts[0]!.routes;
  const path = (r: (typeof rs)[number]) => r.match?.pathSpecifier;
  assert.deepEqual(rs.map((r) => [path(r)?.case, r.action.case]), [
    ["path", "route"], // the exact match first
    ["safeRegex", "directResponse"], // then the longer prefix (/none: no backends, 500)
    ["safeRegex", "route"], // /a as whole path elements
  ]);
  const w = rs[2]!.action.case === "route" ? rs[2]!.action.value.clusterSpecifier : undefined;
  assert.deepEqual(
    w?.case === "weightedClusters" ? w.value.clusters.map((c) => [c.name, c.weight]) : [],
    [["outbound|80||web.default.svc.cluster.local", 3], [
      "outbound|80||echo.default.svc.cluster.local",
      1,
    ]],
  );
});
