import { join } from "node:path";
import { assert, assertEquals } from "../../tests/support/assert.ts";
import { parseConfigText, validateConfig } from "./config.ts";
import { DEFAULT_CONFIG_YAML } from "./default_config.ts";
import { snapshotFromConfig } from "./snapshot_builder.ts";

Deno.test("config: the embedded default validates and builds a snapshot", () => {
  const r = parseConfigText(DEFAULT_CONFIG_YAML);
  assert(r.ok, JSON.stringify(!r.ok && r.problems));
  const s = snapshotFromConfig(r.config);
  assertEquals(s.node.hbonePort, 15008);
  assertEquals(s.services[0]!.endpoints[0]!.hboneAddress, "127.0.1.1:15008");
  assertEquals(
    s.services[0]!.endpoints[0]!.identity,
    "spiffe://cluster.local/ns/default/sa/local-app",
  );
  assertEquals(s.workloads[0]!.identity, "spiffe://cluster.local/ns/default/sa/local-app");
  assert(Object.isFrozen(r.config.workloads[0]));
});

Deno.test("config: defaults fill every field", () => {
  const r = validateConfig({});
  assert(r.ok);
  assertEquals(r.config.timeouts, {
    connectMs: 10_000,
    idleMs: 3_600_000,
    drainMs: 5_000,
    requestHeadersMs: 10_000,
    tlsHandshakeMs: 10_000,
    upstreamIdleMs: 3_600_000,
  });
  const short = validateConfig({ timeouts: { upstreamIdle: "250ms" } });
  assert(short.ok);
  assertEquals(short.config.timeouts.upstreamIdleMs, 250);
  assertEquals(r.config.limits.poolMaxStreamsPerConnection, 100);
  assertEquals(r.config.limits.maxPendingHandshakes, 256);
  assertEquals(r.config.listeners.admin, "127.0.0.1:15000");
  assertEquals(r.config.listeners.allowNonLoopback, false);
  assertEquals(r.config.outboundTrafficPolicy, "ALLOW_ANY");
});

Deno.test("config: every problem is reported with its path", () => {
  const r = parseConfigText(`
node: { name: "Bad Name", hbonePort: 70000 }
timeouts: { connect: tenseconds }
workloads:
  - name: a
    address: not-an-ip
  - name: a
    address: 127.0.1.2
    mtlsMode: MAYBE
services:
  - name: echo
    ports: [{ port: 0 }]
    endpoints: [{ address: 127.0.1.3, hboneAddress: "nope" }]
authorizationPolicies:
  - metadata: { name: p }
    spec:
      action: PERMIT
      rules:
        - from: [{ source: { ipBlocks: ["10.0.0.0/99"] } }]
          when: [{ key: "request.bogus", values: ["x"] }]
  - { name: flat, action: ALLOW }
bogus: 1
`);
  assert(!r.ok);
  const want = [
    "bogus: unknown field",
    "node.name: must be a DNS-1123 name",
    "node.hbonePort: must be an integer 1-65535",
    "timeouts.connect: must be a duration",
    "workloads[0].address: must be an IP address",
    "workloads[1].mtlsMode: must be one of STRICT, PERMISSIVE",
    "workloads[1]: duplicate name",
    "services[0].ports[0].port: must be an integer 1-65535",
    'services[0].endpoints[0].hboneAddress: must be "ip:port"',
    "authorizationPolicies[0].spec.action: must be one of ALLOW, DENY, AUDIT, CUSTOM",
    "authorizationPolicies[0].spec.rules[0].from[0].source.ipBlocks[0]: must be an IP or CIDR",
    "authorizationPolicies[0].spec.rules[0].when[0].key: unknown condition key",
    "authorizationPolicies[1]: must be an AuthorizationPolicy as Istio writes it",
  ];
  for (const w of want) {
    assert(r.problems.some((p) => p.startsWith(w)), `missing "${w}" in\n${r.problems.join("\n")}`);
  }
});

Deno.test("config: YAML syntax errors are reported, not thrown", () => {
  const r = parseConfigText("node: [unclosed");
  assert(!r.ok);
  assert(r.problems[0]!.startsWith("(yaml):"));
});

Deno.test("config: Kubernetes-shaped AuthorizationPolicy with dry-run annotation", () => {
  const r = validateConfig({
    authorizationPolicies: [{
      metadata: {
        name: "deny-other",
        namespace: "default",
        annotations: { "istio.io/dry-run": "true" },
      },
      spec: { action: "DENY", rules: [{ from: [{ source: { namespaces: ["other"] } }] }] },
    }],
  });
  assert(r.ok, JSON.stringify(!r.ok && r.problems));
  const p = r.config.authorizationPolicies[0]!;
  assertEquals([p.name, p.action, p.dryRun], ["deny-other", "DENY", true]);
});

Deno.test("config: VirtualService routes and faults are checked", () => {
  const r = validateConfig({
    services: [{
      name: "echo",
      ports: [{ port: 80, protocol: "HTTP" }],
      subsets: [{ name: "v1", labels: { version: "v1" } }],
      http: [{
        match: [{ uri: { prefix: "/", exact: "/x" } }],
        route: [{ destination: { subset: "v3" }, weight: 10 }],
        fault: { abort: { percentage: { value: 200 } } },
      }],
    }],
  });
  assert(!r.ok);
  for (
    const w of [
      "services[0].http[0].match[0].uri: set exactly one",
      "services[0].http[0].fault.abort: set exactly one",
      "services[0].http[0].fault.abort.percentage.value: must be a number 0-100",
    ]
  ) {
    assert(r.problems.some((p) => p.startsWith(w)), `missing "${w}" in\n${r.problems.join("\n")}`);
  }
});

Deno.test("config: Istio objects inline (resources) and from configDir attach to weft.yaml's services", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weft-config-dir-" });
  try {
    await Deno.writeTextFile(
      join(dir, "routes.yaml"),
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo }
spec: { host: echo, subsets: [{ name: v1, labels: { version: v1 } }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo }
spec:
  hosts: [echo]
  http:
    - match: [{ headers: { end-user: { exact: jason } } }]
      fault: { abort: { httpStatus: 500, percent: 100 } }
      route: [{ destination: { host: echo, subset: v1 } }]
    - route: [{ destination: { host: echo, subset: v1 } }]
`,
    );
    const r = parseConfigText(
      `
services:
  - name: echo
    ports: [{ port: 80, protocol: HTTP }]
    endpoints: [{ address: 127.0.1.3, labels: { app: echo, version: v1 } }]
resources:
  - apiVersion: extensions.istio.io/v1alpha1
    kind: WasmPlugin
    metadata: { name: hdr }
    spec:
      selector: { matchLabels: { app: echo } }
      url: file:///plugins/hdr.wasm
      match: [{ mode: CLIENT }]
  - apiVersion: security.istio.io/v1
    kind: PeerAuthentication
    metadata: { name: strict }
    spec: { mtls: { mode: STRICT } }
configDir: ${dir}
`,
    );
    assert(r.ok, JSON.stringify(!r.ok && r.problems));
    const echo = r.config.services[0]!;
    assertEquals(echo.subsets.map((s) => s.name), ["v1"]);
    assertEquals(echo.http.length, 2);
    assertEquals(echo.plugins.map((p) => [p.name, p.direction, p.type]), [
      ["hdr", "outbound", "proxy-wasm"],
    ]);
    assertEquals(r.config.authorizationPolicies.map((p) => [p.name, p.action]), [
      ["converted_peer_authentication_strict", "DENY"],
    ]);
    const bad = parseConfigText(
      `resources: [{ apiVersion: v1, kind: Pod, metadata: { name: p } }]`,
    );
    assert(!bad.ok);
    assert(bad.problems.some((p) => /standalone weft.yaml takes/.test(p)), bad.problems.join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: plugins are scoped by service; duplicates in one scope are an error", () => {
  const plugin = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    url: "file:///p.wasm",
    type: "proxy-wasm",
    ...extra,
  });
  const bad = validateConfig({
    services: [{ name: "a", ports: [80], plugins: [plugin("probe"), plugin("probe")] }],
  });
  assert(!bad.ok);
  assert(
    bad.problems.some((p) =>
      p.startsWith("services[0].plugins[1].name") && p.includes("services[0].plugins[0]")
    ),
    bad.problems.join("\n"),
  );
  const good = validateConfig({
    services: [
      {
        name: "a",
        ports: [80],
        plugins: [plugin("probe", {
          pluginName: "root-a",
          vmConfig: { env: [{ name: "MODE", value: "x" }] },
          clusters: { authz: "127.0.0.1:9000", svc: { service: "b", port: 80 } },
          maxMemoryBytes: 1 << 20,
          callBudgetMs: 20,
          pluginConfig: { who: "a" },
        })],
      },
      { name: "b", ports: [80], plugins: [plugin("probe", { pluginConfig: { who: "b" } })] },
    ],
  });
  assert(good.ok, good.ok ? "" : good.problems.join("\n"));
  // Same name in two services: two filters, told apart by scope.
  const snap = snapshotFromConfig(good.config);
  const scopes = snap.services.map((s) => s.inboundFilters[0]?.scope);
  assertEquals(scopes, ["default/a/inbound", "default/b/inbound"]);
  assertEquals(snap.services[0]!.inboundFilters[0]!.runtime?.rootId, "root-a");
  const refs = good.config.services.map((s) => s.plugins[0]!);
  assertEquals(refs[0]!.pluginName, "root-a");
  assertEquals(refs[0]!.env, { MODE: "x" });
  assertEquals(refs[0]!.clusters["svc"], { service: "b", port: 80 });
  const bad2 = validateConfig({
    services: [{ name: "a", ports: [80], plugins: [plugin("p", { clusters: { x: "nope" } })] }],
  });
  assert(!bad2.ok && bad2.problems.some((p) => p.startsWith("services[0].plugins[0].clusters.x")));
});

Deno.test("config: plugin bodies: true/false, buffered or streamed; anything else is an error", () => {
  const withBodies = (bodies: unknown) =>
    validateConfig({
      services: [{
        name: "a",
        ports: [80],
        plugins: [{ name: "p", url: "file:///p.wasm", type: "proxy-wasm", bodies }],
      }],
    });
  const modes = [[true, "buffered"], [false, "none"], ["streamed", "streamed"], [
    "buffered",
    "buffered",
  ]] as const;
  for (const [v, want] of modes) {
    const r = withBodies(v);
    assert(r.ok, r.ok ? "" : r.problems.join("\n"));
    assertEquals(r.config.services[0]!.plugins[0]!.bodies, want);
    const runtime = snapshotFromConfig(r.config).services[0]!.inboundFilters[0]!.runtime;
    assertEquals(runtime?.bodies, want === "none" ? undefined : want);
  }
  const bad = withBodies("chunky");
  assert(!bad.ok && bad.problems.some((p) => p.startsWith("services[0].plugins[0].bodies")));
});

Deno.test("config: a VirtualService's routes (resources) are parsed once, problems name the VirtualService", () => {
  const r = parseConfigText(`
services:
  - name: echo
    ports: [{ port: 80, protocol: HTTP }]
    endpoints: [{ address: 127.0.1.3, labels: { app: echo, version: v1 } }]
resources:
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: { name: echo-routes }
    spec:
      hosts: [echo]
      http:
        - route: [{ destination: { host: echo }, weight: -1 }]
`);
  assert(!r.ok);
  assert(
    r.problems.length === 1 &&
      r.problems[0]!.includes("VirtualService default/echo-routes: spec.http[0].route[0].weight"),
    r.problems.join("\n"),
  );
  // S17: an undefined subset is accepted, as Istio (a warning; 503 NC at request time).
  const undefinedSubset = parseConfigText(`
services:
  - name: echo
    ports: [{ port: 80, protocol: HTTP }]
    http:
      - route: [{ destination: { host: echo, subset: v9 } }]
`);
  assert(undefinedSubset.ok, JSON.stringify(!undefinedSubset.ok && undefinedSubset.problems));
  const ok = parseConfigText(`
services:
  - name: echo
    ports: [{ port: 80, protocol: HTTP }]
    subsets: [{ name: v1, labels: { version: v1 } }]
    http:
      - route: [{ destination: { host: echo.other, subset: v1 } }]
`);
  assert(ok.ok, JSON.stringify(!ok.ok && ok.problems));
  assertEquals(
    ok.config.services[0]!.http[0]!.route[0]!.destination.host,
    "echo.other.svc.cluster.local",
  );
});

Deno.test("config: node.metadata is Envoy's node metadata (a Struct), checked", () => {
  const ok = validateConfig({
    node: { name: "n", metadata: { WORKLOAD_NAME: "sleep", LABELS: { app: "sleep" }, N: 3 } },
  });
  assert(ok.ok);
  assertEquals(ok.config.node.metadata["WORKLOAD_NAME"], "sleep");
  for (const metadata of ["x", { A: NaN }, { A: () => 1 }]) {
    const bad = validateConfig({ node: { name: "n", metadata } });
    assert(!bad.ok && bad.problems.some((p) => p.startsWith("node.metadata")), String(metadata));
  }
});

Deno.test("config: xds.address is host:port, a DNS name as --xds and WEFT_XDS_ADDRESS take", () => {
  for (const address of ["127.0.0.1:15010", "weft-control-plane.istio-system.svc:15010"]) {
    const ok = validateConfig({ xds: { address } });
    assert(ok.ok, `${address}: ${JSON.stringify(!ok.ok && ok.problems)}`);
    assertEquals(ok.config.xds.address, address);
  }
  for (const address of ["nope", "cp:0x1", "Bad_Host:15010", "cp:99999", ":15010"]) {
    const bad = validateConfig({ xds: { address } });
    assert(!bad.ok && bad.problems.some((p) => p.startsWith("xds.address: ")), address);
  }
});

Deno.test("config: a YAML alias bomb is refused at parse, not walked or stringified", () => {
  // 100 aliases (js-yaml's maxAliases) still make 10^9 values once expanded: node.metadata and
  // pluginConfig are free-form, so without a bound validation walks them all and a proxy-wasm
  // filter's JSON of them runs out of memory.
  const lines = ["node:", "  metadata:", "    A0: &a0 [x, x, x, x, x, x, x, x, x, x]"];
  for (let i = 1; i < 9; i++) {
    lines.push(`    A${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(", ")}]`);
  }
  const t0 = performance.now();
  const r = parseConfigText(lines.join("\n"));
  assert(!r.ok, "refused");
  assert(r.problems.some((p) => p.startsWith("(yaml): ") && /alias/.test(p)), r.problems.join());
  assert(performance.now() - t0 < 2000, "bounded work");
});

Deno.test("config: default retries on every service's routes; MeshConfig defaultHttpRetryPolicy from resources or meshConfig", () => {
  const svc = (http?: unknown) => ({
    name: "web",
    vips: ["127.10.9.1"],
    ports: [{ port: 80, protocol: "HTTP" }],
    endpoints: [{ address: "127.0.9.1", tunnel: "NONE" }],
    ...(http ? { http } : {}),
  });
  const routesOf = (raw: Record<string, unknown>) => {
    const r = validateConfig(raw);
    assert(r.ok, JSON.stringify(!r.ok && r.problems));
    return snapshotFromConfig(r.config).services[0]!.routes;
  };
  // No VirtualService: Istio's default route, its retries marked as the default.
  const plain = routesOf({ services: [svc()] });
  assertEquals(plain?.length, 1);
  assertEquals(plain![0]!.retries?.attempts, 2);
  assertEquals(plain![0]!.retries?.retryOn, [
    "connect-failure",
    "refused-stream",
    "unavailable",
    "cancelled",
  ]);
  assertEquals([plain![0]!.defaultRetries, plain![0]!.retries?.previousHosts], [true, true]);
  const mesh = {
    apiVersion: "weft.dev/v1alpha1",
    kind: "MeshConfig",
    metadata: { name: "mesh" },
    spec: { defaultHttpRetryPolicy: { attempts: 4, retryOn: "5xx" } },
  };
  const fromDoc = routesOf({ services: [svc()], resources: [mesh] });
  assertEquals([fromDoc![0]!.retries?.attempts, fromDoc![0]!.retries?.retryOn], [4, ["5xx"]]);
  // Off mesh-wide: nothing applies, so no route policy at all.
  assertEquals(
    routesOf({ services: [svc()], meshConfig: { defaultHttpRetryPolicy: { attempts: 0 } } }),
    undefined,
  );
  const both = validateConfig({
    services: [svc()],
    resources: [mesh],
    meshConfig: { defaultHttpRetryPolicy: { attempts: 1 } },
  });
  assert(!both.ok && both.problems.some((p) => p.startsWith("meshConfig.defaultHttpRetryPolicy")));
});

Deno.test("config: the traffic split leaves out match blocks for ports the service does not serve (S10 port)", async () => {
  const { firstPartyChains } = await import("./first_party_refs.ts");
  const r = validateConfig({
    services: [{
      name: "web",
      vips: ["127.10.9.1"],
      ports: [{ port: 80, protocol: "HTTP" }],
      endpoints: [{ address: "127.0.9.1", tunnel: "NONE", labels: { v: "2" } }],
      subsets: [{ name: "v2", labels: { v: "2" } }],
      http: [
        { match: [{ port: 81 }], route: [{ destination: { host: "web", subset: "v2" } }] },
        {
          match: [{ port: 81 }, { port: 80, uri: { prefix: "/a" } }],
          route: [{ destination: { host: "web" } }],
        },
        { route: [{ destination: { host: "web" } }] },
      ],
    }],
  });
  assert(r.ok, JSON.stringify(!r.ok && r.problems));
  const split = firstPartyChains(r.config.services[0]!, r.config).outbound.at(-1)!.config as {
    routes: { name: string; match?: unknown[] }[];
  };
  // The port-81-only route is gone; the second keeps only its port-80 block.
  assertEquals(split.routes.map((x) => x.match), [[{ uri: { prefix: "/a" } }], undefined]);
});

Deno.test("config: ca.crlFile is an optional path, reported with its path when wrong", () => {
  const none = validateConfig({});
  assert(none.ok);
  assertEquals(none.config.ca.crlFile, undefined);
  const set = validateConfig({ ca: { crlFile: "/etc/weft/crl/ca.crl" } });
  assert(set.ok);
  assertEquals(set.config.ca.crlFile, "/etc/weft/crl/ca.crl");
  for (const bad of ["", 5]) {
    const r = validateConfig({ ca: { crlFile: bad } });
    assert(!r.ok && r.problems.some((p) => p.startsWith("ca.crlFile")), JSON.stringify(r));
  }
});
