/** Translation onto core Snapshots: warming order, last-warm listeners, filter mapping. */
import assert from "node:assert/strict";
import { create, fromBinary } from "@bufbuild/protobuf";
import { type Any, anyPack } from "@bufbuild/protobuf/wkt";
import { BASE, compactMeshYaml, meshYaml } from "./_test_fixtures.ts";
import { meshManifestsFromYaml } from "../../tests/support/istio_manifests.ts";
import { applyResources, removeResources } from "./apply.ts";
import { buildNode } from "./control_plane/build.ts";
import { parseMesh } from "./control_plane/mesh.ts";
import {
  DeltaDiscoveryResponseSchema,
  HttpConnectionManagerSchema,
  HTTPFaultSchema,
  IstioAddressSchema,
  ListenerSchema,
  NodeSchema,
  RBACSchema,
  RouteConfigurationSchema,
  RouterSchema,
  TcpProxySchema,
  TypedExtensionConfigSchema,
} from "./proto.ts";
import { registerFilterConfigCheck, WeftError } from "../core/mod.ts";
import { FILTER_TYPES } from "./resources/http_filters.ts";
import { ResourceStore } from "./store.ts";
import { AdsStreamProtocol, ProtocolState } from "./protocol.ts";
import type { ExtensionValue } from "./resources/extension_config.ts";
import { Translator } from "./translate.ts";
import { ADDRESS, CLUSTER, ENDPOINT, EXTENSION_CONFIG, LISTENER, ROUTE } from "./type_urls.ts";

const SHA = "b".repeat(64);
const mesh = parseMesh(
  meshManifestsFromYaml(
    compactMeshYaml(10).replace(
      "authorizationPolicies:",
      `  - name: plug
    ports: [{ port: 81, protocol: HTTP }]
    selector: { app: echo }
    plugins:
      - { name: late, url: "https://x/late.wasm", phase: STATS, pluginConfig: {} }
      - { name: hdr, url: "file:///p/hdr.wasm", sha256: "${SHA}", phase: AUTHN, failStrategy: FAIL_OPEN, pluginConfig: { k: 1 } }
authorizationPolicies:`,
    ),
  ),
);
const built = buildNode(mesh, "node-a");
const put = (store: ResourceStore, t: string, only?: (n: string) => boolean) =>
  applyResources(
    store,
    t,
    [...built.get(t)!].filter(([n]) => !only || only(n)).map(([, b]) => ({
      name: undefined,
      version: b.version,
      any: b.any,
    })),
    () => true,
  );

Deno.test("translate: a listener is served only once its routes, clusters, endpoints and ECDS are warm", () => {
  const store = new ResourceStore();
  const tr = new Translator(BASE);
  put(store, LISTENER);
  assert.equal(tr.build(store, "1").services.length, 0);
  put(store, CLUSTER);
  assert.deepEqual(tr.build(store, "2").services.map((s) => s.name), [], "EDS still missing");
  put(store, ENDPOINT);
  assert.deepEqual(tr.build(store, "3").services.map((s) => s.name), ["db"], "TCP needs no RDS");
  put(store, ROUTE);
  assert.deepEqual(
    tr.build(store, "4").services.map((s) => s.name).sort(),
    ["db", "echo"],
    "plug waits for ECDS",
  );
  put(store, EXTENSION_CONFIG);
  const snap = tr.build(store, "5");
  const plug = snap.services.find((s) => s.name === "plug")!;
  assert.deepEqual(plug.outboundFilters.map((f) => [f.type, f.url, f.sha256, f.failPolicy]), [
    [FILTER_TYPES.component, "file:///p/hdr.wasm", SHA, "FAIL_OPEN"],
    [FILTER_TYPES.component, "https://x/late.wasm", undefined, "FAIL_CLOSE"],
  ]);
  assert.deepEqual(plug.outboundFilters[0]!.config, { k: 1 });
  assert.ok(Object.isFrozen(snap) && Object.isFrozen(snap.services));

  // An update that needs an unknown route keeps the last warm translation serving.
  removeResources(store, ROUTE, ["echo.default.svc.cluster.local:80"]);
  const s6 = tr.build(store, "6");
  assert.ok(s6.services.some((s) => s.name === "echo"), "last warm echo still served");
  removeResources(store, LISTENER, ["echo.default.svc.cluster.local:80"]);
  assert.ok(
    !tr.build(store, "7").services.some((s) => s.name === "echo"),
    "removed listener is gone",
  );
});

Deno.test("translate: inline RBAC becomes the authz filter, order preserved, router ends the chain", () => {
  const store = new ResourceStore();
  put(store, CLUSTER);
  put(store, ENDPOINT);
  put(store, ROUTE);
  const hcm = create(HttpConnectionManagerSchema, {
    routeSpecifier: {
      case: "rds",
      value: {
        routeConfigName: "echo.default.svc.cluster.local:80",
        configSource: { configSourceSpecifier: { case: "ads", value: {} } },
      },
    },
    httpFilters: [
      {
        name: "envoy.filters.http.rbac",
        configType: {
          case: "typedConfig",
          value: anyPack(RBACSchema, create(RBACSchema, { rules: { action: 1, policies: {} } })),
        },
      },
      {
        name: "envoy.filters.http.router",
        configType: { case: "typedConfig", value: anyPack(RouterSchema, create(RouterSchema)) },
      },
    ],
  });
  const l = create(ListenerSchema, {
    name: "echo.default.svc.cluster.local:80",
    apiListener: { apiListener: anyPack(HttpConnectionManagerSchema, hcm) },
  });
  const r = applyResources(store, LISTENER, [{
    name: undefined,
    version: "1",
    any: anyPack(ListenerSchema, l),
  }], () => true);
  assert.deepEqual(r.errors, []);
  const echo = new Translator(BASE).build(store, "1").services.find((s) => s.name === "echo")!;
  assert.deepEqual(echo.outboundFilters.map((f) => f.type), [
    FILTER_TYPES.authz,
    FILTER_TYPES.trafficSplit,
  ]);
  assert.deepEqual(echo.outboundFilters[0]!.config, { rules: { action: "DENY" } });
  // Router not last → rejected.
  hcm.httpFilters.reverse();
  const bad = applyResources(store, LISTENER, [{
    name: undefined,
    version: "2",
    any: anyPack(
      ListenerSchema,
      create(ListenerSchema, {
        name: l.name,
        apiListener: { apiListener: anyPack(HttpConnectionManagerSchema, hcm) },
      }),
    ),
  }], () => true);
  assert.match(bad.errors[0]!, /comes after the router/);
});

Deno.test("translate: after initial_fetch_timeout a listener serves without what never came", () => {
  let clock = 0;
  const store = new ResourceStore();
  const tr = new Translator(BASE, 100, () => clock);
  for (const t of [LISTENER, CLUSTER, ENDPOINT, ROUTE]) put(store, t);
  put(store, EXTENSION_CONFIG, (n) => n.endsWith(".late"));
  assert.ok(!tr.build(store, "1").services.some((s) => s.name === "plug"), "still warming");
  assert.equal(tr.nextDeadline(), 100);
  clock = 100;
  const plug = tr.build(store, "2").services.find((s) => s.name === "plug")!;
  assert.deepEqual(plug.outboundFilters.map((f) => [f.name, f.type]), [
    ["extensions.istio.io/wasmplugin/default.hdr", FILTER_TYPES.fault],
    ["default.late", FILTER_TYPES.component],
  ]);
  assert.deepEqual((plug.outboundFilters[0]!.config as { abort: unknown }).abort, {
    httpStatus: 500,
    percentage: { numerator: 100, denominator: "HUNDRED" },
  });
  assert.equal(tr.nextDeadline(), 100, "still tracked until the config arrives");
  put(store, EXTENSION_CONFIG);
  const warm = tr.build(store, "3").services.find((s) => s.name === "plug")!;
  assert.equal(warm.outboundFilters[0]!.type, FILTER_TYPES.component);
  assert.equal(tr.nextDeadline(), undefined);
});

Deno.test("ECDS default_config: at once without warming, else after initial_fetch_timeout; never without a default", () => {
  const RBAC_URL = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC";
  const denyAll = anyPack(RBACSchema, create(RBACSchema, { rules: {} }));
  const listener = (withoutWarming: boolean, dflt: Any | undefined) =>
    anyPack(
      ListenerSchema,
      create(ListenerSchema, {
        name: "echo.default.svc.cluster.local:80",
        apiListener: {
          apiListener: anyPack(
            HttpConnectionManagerSchema,
            create(HttpConnectionManagerSchema, {
              routeSpecifier: {
                case: "rds",
                value: {
                  routeConfigName: "echo.default.svc.cluster.local:80",
                  configSource: { configSourceSpecifier: { case: "ads", value: {} } },
                },
              },
              httpFilters: [
                {
                  name: "extensions.istio.io/wasmplugin/default.gone",
                  configType: {
                    case: "configDiscovery",
                    value: {
                      configSource: { configSourceSpecifier: { case: "ads", value: {} } },
                      ...(dflt ? { defaultConfig: dflt } : {}),
                      applyDefaultConfigWithoutWarming: withoutWarming,
                      typeUrls: [RBAC_URL],
                    },
                  },
                },
                {
                  name: "envoy.filters.http.router",
                  configType: {
                    case: "typedConfig",
                    value: anyPack(RouterSchema, create(RouterSchema)),
                  },
                },
              ],
            }),
          ),
        },
      }),
    );
  for (const withoutWarming of [true, false]) {
    let clock = 0;
    const store = new ResourceStore();
    for (const t of [CLUSTER, ENDPOINT, ROUTE]) put(store, t);
    const r = applyResources(store, LISTENER, [
      { name: undefined, version: "1", any: listener(withoutWarming, denyAll) },
    ], () => true);
    assert.deepEqual(r.errors, []);
    const tr = new Translator(BASE, 100, () => clock);
    const echo = () => tr.build(store, String(clock)).services.find((s) => s.name === "echo");
    if (!withoutWarming) {
      assert.equal(echo(), undefined, "warming until initial_fetch_timeout");
      clock = 100;
    }
    assert.deepEqual(echo()!.outboundFilters.map((f) => f.type)[0], FILTER_TYPES.authz);
    // Istio's FAIL_CLOSE stand-in: ALLOW rules with no policy deny everything.
    assert.deepEqual(echo()!.outboundFilters[0]!.config, { rules: {} });
  }
  const store = new ResourceStore();
  const bad = applyResources(store, LISTENER, [
    { name: undefined, version: "1", any: listener(true, undefined) },
  ], () => true);
  assert.match(bad.errors[0]!, /apply_default_config_without_warming needs default_config/);
  const wrongType = applyResources(store, LISTENER, [
    {
      name: undefined,
      version: "1",
      any: listener(true, anyPack(RouterSchema, create(RouterSchema))),
    },
  ], () => true);
  assert.match(wrongType.errors[0]!, /not in type_urls/);
});

Deno.test("translate: Istio Address services get endpoints from the workloads naming them", () => {
  const store = new ResourceStore();
  const ip = (s: string) => new Uint8Array(s.split(".").map(Number));
  const workload = (name: string, addr: string, node: string, status = 0, tunnelPort = 0) =>
    anyPack(
      IstioAddressSchema,
      create(IstioAddressSchema, {
        type: {
          case: "workload",
          value: {
            uid: `c//Pod/default/${name}`,
            name,
            namespace: "default",
            addresses: [ip(addr)],
            tunnelProtocol: 1,
            serviceAccount: "ratings",
            node,
            status,
            capacity: 2,
            ...(tunnelPort ? { applicationTunnel: { protocol: 1, port: tunnelPort } } : {}),
            services: {
              "default/ratings.default.svc.cluster.local": {
                ports: [{ servicePort: 9080, targetPort: 9080 }],
              },
            },
          },
        },
      }),
    );
  const service = anyPack(
    IstioAddressSchema,
    create(IstioAddressSchema, {
      type: {
        case: "service",
        value: {
          name: "ratings",
          namespace: "default",
          hostname: "ratings.default.svc.cluster.local",
          addresses: [{ network: "", address: ip("127.10.9.1") }],
          ports: [{ servicePort: 9080, targetPort: 9080, appProtocol: 1 }],
          subjectAltNames: ["spiffe://cluster.local/ns/default/sa/ratings-v2"],
        },
      },
    }),
  );
  const r = applyResources(store, ADDRESS, [
    { name: undefined, version: "1", any: service },
    { name: undefined, version: "1", any: workload("r1", "127.0.9.1", "node-a", 0, 15088) },
    { name: undefined, version: "1", any: workload("r2", "127.0.9.2", "node-b") },
    { name: undefined, version: "1", any: workload("r3", "127.0.9.3", "node-b", 1) },
  ], () => true);
  assert.deepEqual(r.errors, []);
  const snap = new Translator(BASE).build(store, "1");
  const ratings = snap.services.find((s) => s.name === "ratings")!;
  assert.deepEqual(ratings.vips, ["127.10.9.1"]);
  // subject_alt_names: identities its endpoints may present besides their own (hbone.md §4).
  assert.deepEqual(ratings.subjectAltNames, ["spiffe://cluster.local/ns/default/sa/ratings-v2"]);
  assert.deepEqual(ratings.ports, [{
    port: 9080,
    targetPort: 9080,
    protocol: "HTTP",
    name: "http-9080",
  }]);
  assert.deepEqual(ratings.endpoints.map((e) => [e.address, e.hboneAddress, e.node, e.weight]), [
    ["127.0.9.1", "127.0.9.1:15008", "node-a", 2],
    ["127.0.9.2", "127.0.9.2:15008", "node-b", 2],
  ], "unhealthy r3 is left out");
  assert.deepEqual(
    snap.workloads.map((w) => w.name),
    ["r1"],
    "only this node's workloads are local",
  );
  // application_tunnel {protocol PROXY, port} reaches the data path (hbone.md §8).
  assert.deepEqual(snap.workloads[0]!.applicationTunnel, { protocol: "PROXY", port: 15088 });
});

Deno.test("translate: an ECDS config of a type the listener does not allow counts as missing", () => {
  const store = new ResourceStore();
  for (const t of [LISTENER, CLUSTER, ENDPOINT, ROUTE]) put(store, t);
  put(store, EXTENSION_CONFIG, (n) => n.endsWith(".late"));
  const rbacAsHdr = anyPack(
    TypedExtensionConfigSchema,
    create(TypedExtensionConfigSchema, {
      name: "extensions.istio.io/wasmplugin/default.hdr",
      typedConfig: anyPack(RBACSchema, create(RBACSchema)),
    }),
  );
  const r = applyResources(store, EXTENSION_CONFIG, [
    { name: undefined, version: "x", any: rbacAsHdr },
  ], () => true);
  assert.deepEqual(r.errors, []);
  const snap = new Translator(BASE).build(store, "1");
  assert.ok(!snap.services.some((s) => s.name === "plug"), "type_urls allow only Wasm");
});

Deno.test("ECDS: an update of a type the listener's type_urls exclude is NACKed; the last good config stays", () => {
  const sent: unknown[] = [];
  const state = new ProtocolState(new ResourceStore());
  const p = new AdsStreamProtocol(
    "delta",
    create(NodeSchema, { id: "node-a" }),
    state,
    (m) => sent.push(m),
  );
  p.start();
  const res = (t: string) =>
    [...built.get(t)!].map(([name, b]) => ({ name, version: b.version, resource: b.any }));
  p.onDelta(
    create(DeltaDiscoveryResponseSchema, {
      typeUrl: LISTENER,
      nonce: "1",
      resources: res(LISTENER),
    }),
  );
  const hdr = "extensions.istio.io/wasmplugin/default.hdr";
  const good = p.onDelta(create(DeltaDiscoveryResponseSchema, {
    typeUrl: EXTENSION_CONFIG,
    nonce: "2",
    resources: res(EXTENSION_CONFIG),
  }));
  assert.equal(good.nack, undefined);
  const wasmType = state.store.get<ExtensionValue>(EXTENSION_CONFIG, hdr)!.typeUrl;
  const rbacAsHdr = anyPack(
    TypedExtensionConfigSchema,
    create(TypedExtensionConfigSchema, {
      name: hdr,
      typedConfig: anyPack(RBACSchema, create(RBACSchema)),
    }),
  );
  const bad = p.onDelta(create(DeltaDiscoveryResponseSchema, {
    typeUrl: EXTENSION_CONFIG,
    nonce: "3",
    resources: [{ name: hdr, version: "x", resource: rbacAsHdr }],
  }));
  assert.match(bad.nack!, /is not one of the type_urls/);
  assert.equal(state.store.get<ExtensionValue>(EXTENSION_CONFIG, hdr)!.typeUrl, wasmType);
});

Deno.test("translate: a per-route fault (Istio's placement) is the route's own, not a filter", () => {
  const store = new ResourceStore();
  for (const t of [LISTENER, CLUSTER, ENDPOINT]) put(store, t);
  const rc = fromBinary(
    RouteConfigurationSchema,
    built.get(ROUTE)!.get("echo.default.svc.cluster.local:80")!.any.value,
  );
  rc.virtualHosts[0]!.routes[0]!.typedPerFilterConfig = {
    "envoy.filters.http.fault": anyPack(
      HTTPFaultSchema,
      create(HTTPFaultSchema, {
        abort: { errorType: { case: "httpStatus", value: 418 }, percentage: { numerator: 100 } },
      }),
    ),
  };
  applyResources(store, ROUTE, [{
    name: undefined,
    version: "1",
    any: anyPack(RouteConfigurationSchema, rc),
  }], () => true);
  const echo = new Translator(BASE).build(store, "1").services.find((s) => s.name === "echo")!;
  // The listener's fault filter is empty (control plane) and the route carries the fault.
  assert.deepEqual(echo.outboundFilters.filter((f) => f.type === FILTER_TYPES.fault), []);
  assert.deepEqual(echo.routes?.[0]?.fault, {
    abort: { httpStatus: 418, perMillion: 1_000_000 },
  });
});

function translateMesh(yaml: string) {
  const b = buildNode(parseMesh(meshManifestsFromYaml(yaml)), "node-a");
  const store = new ResourceStore();
  const errors: string[] = [];
  for (const t of [LISTENER, CLUSTER, ENDPOINT, ROUTE]) {
    const r = applyResources(
      store,
      t,
      [...b.get(t)!.values()].map((x) => ({ name: undefined, version: x.version, any: x.any })),
      () => true,
    );
    errors.push(...r.errors);
  }
  return { errors, snap: new Translator(BASE).build(store, "1") };
}

const RATINGS = (first: string) => `
workloads: [{ name: r1, address: 127.0.8.1, node: node-a, labels: { app: ratings, version: v1 } }]
services:
  - name: ratings
    ports: [{ port: 9080, protocol: HTTP }]
    subsets: [{ name: v1, labels: { version: v1 } }]
    http:
      - match: [${first}]
        fault: { abort: { httpStatus: 500, percentage: { value: 100 } } }
        route: [{ destination: { subset: v1 } }]
      - route: [{ destination: { subset: v1 } }]
`;

Deno.test("translate: a fault on a matched route (headers or path) applies with that route", () => {
  for (
    const first of ["{ headers: { end-user: { exact: jason } } }", "{ uri: { prefix: /admin } }"]
  ) {
    const { errors, snap } = translateMesh(RATINGS(first));
    assert.deepEqual(errors, []);
    const svc = snap.services[0]!;
    assert.deepEqual(svc.outboundFilters.filter((f) => f.type === FILTER_TYPES.fault), []);
    assert.deepEqual(svc.routes?.map((r) => r.fault), [
      { abort: { httpStatus: 500, perMillion: 1_000_000 } },
      undefined,
    ]);
    assert.equal(svc.routes?.[0]?.match[0]?.headers !== undefined, first.includes("headers"));
  }
});

Deno.test("translate: VirtualService matches (uri, headers) reach the traffic-split config", () => {
  const m = parseMesh(meshManifestsFromYaml(`
workloads: [{ name: r1, address: 127.0.8.1, node: node-a, labels: { app: reviews, version: v1 } }]
services:
  - name: reviews
    ports: [{ port: 9080, protocol: HTTP }]
    subsets: [{ name: v1, labels: { version: v1 } }]
    http:
      - match: [{ uri: { prefix: /reviews }, headers: { End-User: { exact: jason } } }]
        route: [{ destination: { subset: v1 } }]
      - route: [{ destination: { subset: v1 }, weight: 1 }]
`));
  const b = buildNode(m, "node-a");
  const store = new ResourceStore();
  for (const t of [LISTENER, CLUSTER, ENDPOINT, ROUTE]) {
    applyResources(
      store,
      t,
      [...b.get(t)!.values()].map((x) => ({ name: undefined, version: x.version, any: x.any })),
      () => true,
    );
  }
  const svc = new Translator(BASE).build(store, "1").services[0]!;
  assert.deepEqual(svc.outboundFilters.at(-1)!.config, {
    noMatch: "notFound",
    routes: [
      {
        name: "route-0",
        match: [{ uri: { prefix: "/reviews" }, headers: { "end-user": { exact: "jason" } } }],
        route: [{ service: "reviews.default.svc.cluster.local", subset: "v1", weight: 1 }],
      },
      {
        name: "route-1",
        route: [{ service: "reviews.default.svc.cluster.local", subset: "v1", weight: 1 }],
      },
    ],
  });
});

Deno.test("ECDS: a filter config its kind cannot convert is rejected at decode (NACK reason)", () => {
  // Filter kinds register their checks in core (the app registers the first-party converters).
  registerFilterConfigCheck(FILTER_TYPES.authz, () => {
    throw new WeftError("config_invalid", "Cannot convert Envoy RBAC config: test rejection");
  });
  try {
    const store = new ResourceStore();
    const rbac = anyPack(
      TypedExtensionConfigSchema,
      create(TypedExtensionConfigSchema, {
        name: "extensions.istio.io/wasmplugin/default.rbac",
        typedConfig: anyPack(RBACSchema, create(RBACSchema, { rules: { action: 0 } })),
      }),
    );
    const r = applyResources(store, EXTENSION_CONFIG, [
      { name: undefined, version: "x", any: rbac },
    ], () => true);
    assert.equal(r.changed, false);
    assert.equal(r.errors.length, 1);
    assert.match(r.errors[0]!, /default\.rbac|resources\[0\]/);
    assert.match(r.errors[0]!, /test rejection/);
  } finally {
    registerFilterConfigCheck(FILTER_TYPES.authz, () => {});
  }
});

Deno.test("inbound L7 authorization: RBAC listener per node of an HTTP service, only with HTTP conditions", () => {
  const l7 = parseMesh(meshManifestsFromYaml(
    compactMeshYaml(10).replace(
      "authorizationPolicies:",
      `authorizationPolicies:
  - name: get-only
    namespace: default
    selector: { app: echo }
    rules: [{ to: [{ operation: { methods: ["GET"], paths: ["/a*"] } }] }]
  - name: deny-hdr
    namespace: istio-system
    action: DENY
    rules: [{ when: [{ key: "request.headers[x-block]", values: ["yes"] }] }]`,
    ),
  ));
  const listeners = buildNode(l7, "node-a").get(LISTENER)!;
  const inbound = [...listeners.keys()].filter((n) => n.startsWith("inbound|")).sort();
  // echo has workloads on node-a and node-b; db is TCP: no inbound chain.
  assert.deepEqual(inbound, [
    "inbound|node-a|echo.default.svc.cluster.local",
    "inbound|node-b|echo.default.svc.cluster.local",
  ]);
  const lst = fromBinary(ListenerSchema, listeners.get(inbound[0]!)!.any.value);
  assert.equal(lst.trafficDirection, 1);
  const fc = lst.filterChains[0]!.filters[0]!.configType;
  assert.equal(fc.case, "typedConfig");
  const hcm = fromBinary(HttpConnectionManagerSchema, (fc.value as { value: Uint8Array }).value);
  assert.deepEqual(hcm.httpFilters.map((f) => f.name), [
    "envoy.filters.http.rbac",
    "envoy.filters.http.rbac",
    "envoy.filters.http.router",
  ]);
  const rbac = (i: number) => {
    const c = hcm.httpFilters[i]!.configType;
    return fromBinary(RBACSchema, (c.value as { value: Uint8Array }).value);
  };
  // DENY before ALLOW (Istio's order); Istio's policy names; L4 rules of the workload included.
  assert.equal(rbac(0).rules?.action, 1);
  assert.deepEqual(Object.keys(rbac(0).rules!.policies), [
    "ns[istio-system]-policy[deny-hdr]-rule[0]",
  ]);
  assert.equal(rbac(1).rules?.action, 0);
  assert.deepEqual(Object.keys(rbac(1).rules!.policies).sort(), [
    "ns[default]-policy[echo-allow]-rule[0]",
    "ns[default]-policy[get-only]-rule[0]",
  ]);

  // Node side: only node-a's inbound listener becomes echo's inbound chain on node-a.
  const store = new ResourceStore();
  for (const t of [CLUSTER, ENDPOINT, ROUTE, LISTENER, ADDRESS]) {
    const r = applyResources(
      store,
      t,
      [...buildNode(l7, "node-a").get(t)!].map(([, b]) => ({
        name: undefined,
        version: b.version,
        any: b.any,
      })),
      () => true,
    );
    assert.deepEqual(r.errors, []);
  }
  const snap = new Translator(BASE).build(store, "1");
  const echo = snap.services.find((s) => s.name === "echo")!;
  assert.deepEqual(echo.inboundFilters.map((f) => [f.name, f.type, f.phase]), [
    ["inbound-0.envoy.filters.http.rbac", FILTER_TYPES.authz, "AUTHZ"],
    ["inbound-1.envoy.filters.http.rbac", FILTER_TYPES.authz, "AUTHZ"],
  ]);
  assert.deepEqual(snap.services.find((s) => s.name === "db")!.inboundFilters, []);
  const onB = new Translator({ ...BASE, node: { ...BASE.node, name: "node-c" } }).build(store, "1");
  assert.deepEqual(onB.services.find((s) => s.name === "echo")!.inboundFilters, []);
  // L4-only policies keep today's L4 path: no inbound listener at all.
  const l4 = [...buildNode(parseMesh(meshYaml(10)), "node-a").get(LISTENER)!.keys()];
  assert.equal(l4.some((n) => n.startsWith("inbound|")), false);
});

Deno.test("inbound listener: without a node it is this node's; TCP or ECDS inbound chains are NACKed", () => {
  const hcm = (filters: { name: string; configType: never }[]) =>
    anyPack(
      HttpConnectionManagerSchema,
      create(HttpConnectionManagerSchema, {
        routeSpecifier: {
          case: "routeConfig",
          value: { virtualHosts: [{ name: "in", domains: ["*"] }] },
        },
        httpFilters: [
          ...filters,
          {
            name: "envoy.filters.http.router",
            configType: { case: "typedConfig", value: anyPack(RouterSchema, create(RouterSchema)) },
          },
        ],
      }),
    );
  const inbound = (name: string, last: Any) =>
    anyPack(
      ListenerSchema,
      create(ListenerSchema, {
        name,
        trafficDirection: 1,
        address: {
          address: {
            case: "socketAddress",
            value: { address: "0.0.0.0", portSpecifier: { case: "portValue", value: 8080 } },
          },
        },
        metadata: { filterMetadata: { weft: { hostname: "echo.default.svc.cluster.local" } } },
        filterChains: [{
          filters: [{ name: "last", configType: { case: "typedConfig", value: last } }],
        }],
      }),
    );
  const rbac = {
    name: "envoy.filters.http.rbac",
    configType: {
      case: "typedConfig",
      value: anyPack(RBACSchema, create(RBACSchema, { rules: { action: 1, policies: {} } })),
    },
  } as never;
  const ecds = {
    name: "ext",
    configType: {
      case: "configDiscovery",
      value: { configSource: { configSourceSpecifier: { case: "ads", value: {} } } },
    },
  } as never;
  const store = new ResourceStore();
  for (const t of [CLUSTER, ENDPOINT, ROUTE, LISTENER]) put(store, t);
  const apply = (any: Any) =>
    applyResources(store, LISTENER, [{ name: undefined, version: "1", any }], () => true).errors;
  assert.deepEqual(apply(inbound("in-ok", hcm([rbac]))), []);
  const echo = new Translator(BASE).build(store, "1").services.find((s) => s.name === "echo")!;
  assert.deepEqual(echo.inboundFilters.map((f) => f.type), [FILTER_TYPES.authz]);
  assert.match(apply(inbound("in-ecds", hcm([ecds])))[0] ?? "", /must be inline/);
  const tcp = anyPack(
    TcpProxySchema,
    create(TcpProxySchema, { clusterSpecifier: { case: "cluster", value: "c" } }),
  );
  assert.match(apply(inbound("in-tcp", tcp))[0] ?? "", /http_connection_manager/);
});

Deno.test("translate: an incremental build (cached fragments and Addresses) equals a fresh one", () => {
  const store = new ResourceStore();
  const tr = new Translator(BASE);
  for (const t of [ADDRESS, CLUSTER, ENDPOINT, LISTENER, ROUTE, EXTENSION_CONFIG]) put(store, t);
  const first = tr.build(store, "1");
  // Nothing changed: the same objects are served again.
  const again = tr.build(store, "2");
  assert.strictEqual(again.workloads, first.workloads);
  assert.deepEqual(again.services, first.services);
  // The route and the Address resources of a mesh with other weights and labels replace them.
  const other = buildNode(
    parseMesh(meshYaml(30).replace("version: v2", "version: v3")),
    "node-a",
  );
  for (const t of [ROUTE, ADDRESS]) {
    applyResources(
      store,
      t,
      [...other.get(t)!].map(([, b]) => ({ name: undefined, version: b.version, any: b.any })),
      () => true,
    );
  }
  const updated = tr.build(store, "3");
  const fresh = new Translator(BASE).build(store, "3");
  assert.deepEqual(updated, fresh);
  assert.notDeepEqual(updated.services, first.services);
});

Deno.test("translate: a ServiceEntry's subjectAltNames reach the node's service over xDS (LDS service and Address merged)", () => {
  const b = buildNode(
    parseMesh(`${meshYaml(10)}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api }
spec:
  hosts: [api.internal]
  addresses: [127.10.7.1]
  ports: [{ number: 8080, protocol: TCP, name: tcp }]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{ address: 127.0.7.1, serviceAccount: api, labels: { weft.dev/node: node-b } }]
  subjectAltNames: [spiffe://cluster.local/ns/default/sa/api-canary]
`),
    "node-a",
  );
  const store = new ResourceStore();
  for (const t of [ADDRESS, LISTENER, CLUSTER, ENDPOINT, ROUTE]) {
    const r = applyResources(
      store,
      t,
      [...b.get(t)!.values()].map((x) => ({ name: undefined, version: x.version, any: x.any })),
      () => true,
    );
    assert.deepEqual(r.errors, []);
  }
  const api = new Translator(BASE).build(store, "1").services.find((s) =>
    s.hostname === "api.internal"
  );
  assert.ok(api, "the ServiceEntry is a service of the node");
  assert.deepEqual(api.endpoints.map((e) => e.identity), [
    "spiffe://cluster.local/ns/default/sa/api",
  ]);
  assert.deepEqual(api.subjectAltNames, ["spiffe://cluster.local/ns/default/sa/api-canary"]);
});
