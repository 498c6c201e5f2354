import { assert, assertEquals } from "../../tests/support/assert.ts";
import type { ExtAuthzFilterConfig } from "../filters/mod.ts";
import { validateConfig } from "./config.ts";
import { firstPartyChains } from "./first_party_refs.ts";

const workload = {
  name: "web",
  namespace: "default",
  serviceAccount: "web",
  address: "127.0.9.1",
  labels: { app: "web" },
};
const service = {
  name: "web",
  namespace: "default",
  vips: ["127.10.9.1"],
  ports: [{ port: 80, targetPort: 8080, protocol: "HTTP" }],
  endpoints: [{ workload: "web", address: "127.0.9.1" }],
};
const authzSvc = {
  name: "ext-authz",
  namespace: "foo",
  vips: ["127.10.9.2"],
  ports: [{ port: 9000, protocol: "HTTP" }],
  endpoints: [{ address: "127.0.9.2", tunnel: "NONE" }],
};
const custom = (provider: string, name = "ext") => ({
  metadata: { name, namespace: "default" },
  spec: {
    selector: { matchLabels: { app: "web" } },
    action: "CUSTOM",
    provider: { name: provider },
    rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }],
  },
});
const providers = [
  { name: "opa", envoyExtAuthzGrpc: { service: "ext-authz.foo.svc.cluster.local", port: 9000 } },
  { name: "ghost", envoyExtAuthzHttp: { service: "nowhere.svc.cluster.local", port: 80 } },
];

function extRef(raw: Record<string, unknown>) {
  const r = validateConfig(raw);
  assert(r.ok, JSON.stringify(!r.ok && r.problems));
  const chains = firstPartyChains(r.config.services[0]!, r.config);
  return { config: r.config, inbound: chains.inbound };
}

Deno.test("config: meshConfig.extensionProviders and a CUSTOM policy give the service an ext_authz filter, first", () => {
  const { config, inbound } = extRef({
    workloads: [workload],
    services: [service, authzSvc],
    meshConfig: { extensionProviders: providers },
    authorizationPolicies: [custom("opa"), {
      metadata: { name: "deny", namespace: "default" },
      spec: { action: "DENY", rules: [{ to: [{ operation: { paths: ["/x"] } }] }] },
    }],
  });
  assertEquals(config.extensionProviders.map((p) => p.name), ["opa", "ghost"]);
  assertEquals(inbound.map((r) => [r.type, r.phase]), [
    ["weft.ext_authz", "AUTHN"],
    ["weft.plugin.authz", "AUTHZ"],
  ]);
  const cfg = inbound[0]!.config as ExtAuthzFilterConfig;
  assertEquals([cfg.provider?.name, cfg.error], ["opa", undefined]);
  // The gate: the CUSTOM rules as DENY policies of the authz plugin; the authz filter has none.
  assertEquals(cfg.gate.policies.map((p) => [p.name, p.action]), [
    ["ns[default]-policy[ext]", "DENY"],
  ]);
  const authz = inbound[1]!.config as { policies: { name: string }[] };
  assertEquals(authz.policies.map((p) => p.name), ["ns[default]-policy[deny]"]);
});

Deno.test("config: a provider istiod cannot use denies the workload's requests (as istiod), not the config", () => {
  const cases: [unknown[], RegExp][] = [
    [[custom("nope")], /available providers are \[opa, ghost\] but found "nope"/],
    [[custom("opa"), custom("ghost", "ext2")], /only 1 provider can be used per workload/],
    [[custom("ghost")], /could not find service nowhere\.svc\.cluster\.local/],
  ];
  for (const [policies, why] of cases) {
    const { inbound } = extRef({
      workloads: [workload],
      services: [service, authzSvc],
      meshConfig: { extensionProviders: providers },
      authorizationPolicies: policies,
    });
    const cfg = inbound[0]!.config as ExtAuthzFilterConfig;
    assertEquals(cfg.provider, undefined);
    assert(why.test(cfg.error ?? ""), cfg.error);
  }
});

Deno.test("config: extensionProviders problems carry their path; one place only", () => {
  const bad = validateConfig({
    meshConfig: { extensionProviders: [{ name: "a", envoyExtAuthzHttp: { service: "x" } }] },
  });
  assert(!bad.ok);
  assertEquals(bad.problems, [
    "meshConfig.extensionProviders[0].envoyExtAuthzHttp.port: is required",
  ]);
  const both = validateConfig({
    meshConfig: { extensionProviders: providers },
    resources: [{
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "istio", namespace: "istio-system" },
      data: {
        mesh: "extensionProviders: [{name: b, envoyExtAuthzGrpc: {service: 127.0.0.1, port: 1}}]",
      },
    }],
  });
  assert(!both.ok);
  assertEquals(both.problems, [
    "meshConfig.extensionProviders: also set by a MeshConfig in resources/configDir: set them in one place",
  ]);
});
