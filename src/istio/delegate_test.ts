/** VirtualService delegation (S12) as istiod merges it: matches ANDed (a conflicting delegate
 * route is dropped), the root route's policies inherited, names joined, destinations resolved in
 * the delegate's namespace, one level only; a missing delegate drops the route with a warning. */
import assert from "node:assert/strict";
import { loadIstioDocuments } from "./mod.ts";

const load = (text: string) => loadIstioDocuments([{ file: "vs.yaml", text }]);

const ROOT = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: root, namespace: front }
spec:
  hosts: [shop.front.svc.cluster.local]
  http:
    - name: api
      match: [{ uri: { prefix: /api } }]
      timeout: 3s
      delegate: { name: api-routes, namespace: team }
    - name: gone
      match: [{ uri: { prefix: /old } }]
      delegate: { name: missing }
    - route: [{ destination: { host: web } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api-routes, namespace: team }
spec:
  http:
    - name: v2
      match: [{ uri: { prefix: /api/v2 }, headers: { x-beta: { exact: "1" } } }]
      route: [{ destination: { host: api, subset: v2 } }]
      timeout: 1s
    - name: clash
      match: [{ uri: { prefix: /other } }]
      route: [{ destination: { host: api } }]
    - name: rest
      route: [{ destination: { host: api.team } }]
`;

Deno.test("delegate: the root route expands into the delegate's routes, merged as istiod does", () => {
  const { resources: r, problems } = load(ROOT);
  assert.deepEqual(problems, []);
  assert.equal(
    r.virtualServices.length,
    1,
    "the delegate VirtualService configures nothing itself",
  );
  const http = r.virtualServices[0]!.http;
  assert.deepEqual(http.map((h) => h.name), ["api-v2", "api-rest", undefined]);
  const [v2, rest] = http;
  assert.deepEqual(v2!.match[0]!.uri, { prefix: "/api/v2" });
  assert.deepEqual(v2!.match[0]!.headers, { "x-beta": { exact: "1" } });
  assert.equal(v2!.timeoutMs, 1000, "the delegate's own timeout wins");
  assert.equal(rest!.timeoutMs, 3000, "else the root's");
  assert.deepEqual(rest!.match[0]!.uri, { prefix: "/api" }, "no delegate match: the root's");
  assert.equal(v2!.route[0]!.destination.host, "api.team.svc.cluster.local");
  assert.equal(rest!.route[0]!.destination.host, "api.team.svc.cluster.local");
  assert.equal(v2!.delegate, undefined);
  assert.deepEqual(r.warnings, [
    "VirtualService front/root: spec.http[0].delegate: route 1 of VirtualService team/api-routes conflicts with the root's match; it is ignored",
    "VirtualService front/root: spec.http[1].delegate: VirtualService front/missing not found; the route is ignored",
  ]);
});

Deno.test("delegate: one level only, no route beside it, no tcp or gateways in a delegate", () => {
  const { problems } = load(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: d, namespace: team }
spec:
  gateways: [mesh]
  http:
    - delegate: { name: deeper }
  tcp: [{ route: [{ destination: { host: db } }] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: team }
spec:
  hosts: [x]
  http:
    - delegate: { name: d }
      route: [{ destination: { host: x } }]
`);
  const at = (p: string) => problems.some((x) => x.includes(p));
  for (
    const p of [
      "VirtualService team/d: spec.gateways",
      "VirtualService team/d: spec.tcp",
      "VirtualService team/d: spec.http[0].delegate",
      "VirtualService team/r: spec.http[0].delegate",
    ]
  ) assert(at(p), `${p}: ${problems.join("\n")}`);
});

Deno.test("delegate: one exported elsewhere is not used by a root in another namespace (exportTo)", () => {
  const delegate = (ns: string, exportTo: string) =>
    `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: d, namespace: ${ns} }
spec:
  exportTo: ${exportTo}
  http:
    - route: [{ destination: { host: secret } }]
`;
  const root = (ns: string, to: string) =>
    `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: ${ns} }
spec:
  hosts: [r.${ns}.svc.cluster.local]
  http:
    - delegate: { name: d, namespace: ${to} }
`;
  const { resources: r, problems } = load(
    delegate("team", '["."]') + delegate("other", '["front", "x"]') +
      delegate("open", '["*"]') + delegate("none", '["~"]') + root("front", "team") +
      root("team", "team") + root("x2", "other") + root("front2", "open") + root("f3", "none"),
  );
  assert.deepEqual(problems, []);
  const hostsOf = (ns: string) =>
    r.virtualServices.find((v) => v.meta.namespace === ns)!.http.map((h) =>
      h.route[0]?.destination.host
    );
  assert.deepEqual(hostsOf("front"), [], "team/d is exported to its own namespace only");
  assert.deepEqual(hostsOf("team"), ["secret.team.svc.cluster.local"]);
  assert.deepEqual(hostsOf("x2"), [], "other/d names front and x, not x2");
  assert.deepEqual(hostsOf("front2"), ["secret.open.svc.cluster.local"]);
  assert.deepEqual(hostsOf("f3"), []);
  assert.ok(
    (r.warnings ?? []).includes(
      "VirtualService front/r: spec.http[0].delegate: VirtualService team/d is not exported to namespace front; the route is ignored",
    ),
    (r.warnings ?? []).join("\n"),
  );
});
