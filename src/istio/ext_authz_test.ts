import assert from "node:assert/strict";
import { loadIstioDocuments, providerFor } from "./mod.ts";

const CONFIGMAP = `
apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
data:
  meshNetworks: "networks: {}"
  mesh: |-
    accessLogFile: /dev/stdout
    defaultConfig: { discoveryAddress: istiod.istio-system.svc:15012 }
    trustDomain: example.org
    extensionProviders:
    - name: opa
      envoyExtAuthzGrpc: { service: opa.opa.svc.cluster.local, port: 9191, timeout: 250ms }
    - name: oauth2
      envoyExtAuthzHttp:
        service: oauth2-proxy.auth.svc.cluster.local
        port: "4180"
        pathPrefix: /check
        failOpen: true
        statusOnError: "503"
        includeRequestHeadersInCheck: [Authorization, "x-ext-*"]
        includeAdditionalHeadersInCheck: { X-Added: yes }
        includeRequestBodyInCheck: { maxRequestBytes: 1024, allowPartialMessage: true }
        headersToUpstreamOnAllow: [x-user]
        headersToDownstreamOnDeny: [x-reason]
    - name: zipkin
      zipkin: { service: zipkin.istio-system.svc.cluster.local, port: 9411 }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext, namespace: default }
spec:
  action: CUSTOM
  provider: { name: opa }
  rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]
`;

Deno.test("ext_authz config: the istio ConfigMap's data.mesh gives the providers; CUSTOM keeps its provider", () => {
  const r = loadIstioDocuments([{ file: "istio.yaml", text: CONFIGMAP }]);
  // port "4180" is a string: MeshConfig's port is a uint32, so that is a problem with its path.
  assert.deepEqual(r.problems, [
    'istio.yaml#0 ConfigMap istio-system/istio: data.mesh.extensionProviders[1].envoyExtAuthzHttp.port: must be an integer 1-65535, got "4180"',
  ]);
  const fixed = CONFIGMAP.replace('port: "4180"', "port: 4180");
  const ok = loadIstioDocuments([{ file: "istio.yaml", text: fixed }]);
  assert.deepEqual(ok.problems, []);
  const mc = ok.resources.meshConfig!;
  assert.equal(mc.trustDomain, "example.org");
  assert.equal(mc.extensionProviders.length, 2); // zipkin: warned and skipped
  const [opa, oauth] = mc.extensionProviders;
  assert.deepEqual(
    [opa!.kind, opa!.service, opa!.port, opa!.timeoutMs, opa!.failOpen],
    ["grpc", "opa.opa.svc.cluster.local", 9191, 250, false],
  );
  assert.equal(oauth!.timeoutMs, 600_000); // istiod's default
  assert.deepEqual(oauth!.includeRequestHeadersInCheck, ["authorization", "x-ext-*"]);
  assert.deepEqual(oauth!.includeAdditionalHeadersInCheck, { "x-added": "yes" });
  assert.equal(oauth!.statusOnError, 503);
  assert.deepEqual(oauth!.includeRequestBodyInCheck, {
    maxRequestBytes: 1024,
    allowPartialMessage: true,
    packAsBytes: false,
  });
  const p = ok.resources.authorizationPolicies[0]!.policy;
  assert.equal(p.action, "CUSTOM");
  assert.equal(p.provider, "opa");
});

Deno.test("ext_authz config: bad providers and CUSTOM policies are problems with paths", () => {
  const text = `
apiVersion: weft.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh }
spec:
  extensionProviders:
  - name: a
    envoyExtAuthzHttp: { service: "bad host!", port: 0, pathPrefix: check, statusOnError: "abc", headersToUpstreamOnAllow: ["*"], bogus: 1 }
  - name: a
    envoyExtAuthzGrpc: { service: 127.0.0.1, port: 9000, pathPrefix: /x }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: c, namespace: default }
spec: { action: CUSTOM, rules: [{}] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: d, namespace: default }
spec: { action: DENY, provider: { name: a }, rules: [{}] }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: other, namespace: default }
data: { x: "1" }
`;
  const r = loadIstioDocuments([{ file: "m.yaml", text }]);
  const at = "m.yaml#0 MeshConfig default/mesh: spec.extensionProviders";
  assert.deepEqual(r.problems, [
    `${at}[0].envoyExtAuthzHttp.bogus: unknown field (known: service, port, timeout, pathPrefix, failOpen, clearRouteCache, statusOnError, includeHeadersInCheck, includeRequestHeadersInCheck, includeAdditionalHeadersInCheck, includeRequestBodyInCheck, headersToUpstreamOnAllow, headersToDownstreamOnDeny, headersToDownstreamOnAllow)`,
    `${at}[0].envoyExtAuthzHttp.service: must be a hostname, namespace/hostname or an IP address, got "bad host!"`,
    `${at}[0].envoyExtAuthzHttp.port: must be an integer 1-65535, got 0`,
    `${at}[0].envoyExtAuthzHttp.statusOnError: must be an HTTP status code such as "503"`,
    `${at}[0].envoyExtAuthzHttp.pathPrefix: must begin with "/" and hold a path only`,
    `${at}[0].envoyExtAuthzHttp.headersToUpstreamOnAllow[0]: a single wildcard ("*") is not supported`,
    `${at}[1].name: "a" is defined twice (istiod)`,
    `${at}[1].envoyExtAuthzGrpc.pathPrefix: unknown field (known: service, port, timeout, failOpen, clearRouteCache, statusOnError, includeRequestBodyInCheck)`,
    "m.yaml#1 AuthorizationPolicy default/c: spec.provider.name: is required with action CUSTOM (as in Istio)",
    "m.yaml#2 AuthorizationPolicy default/d: spec.provider: is only allowed with action CUSTOM (as in Istio)",
    `m.yaml#3 ConfigMap default/other: metadata.name: weft reads only Istio's mesh ConfigMap ("istio" or "istio-<revision>", MeshConfig in data.mesh)`,
  ]);
});

Deno.test("ext_authz config: one provider per workload, by name, as istiod's getExtAuthz", () => {
  const r = loadIstioDocuments([{ file: "istio.yaml", text: CONFIGMAP.replace('"4180"', "4180") }]);
  const ps = r.resources.meshConfig!.extensionProviders;
  assert.equal((providerFor(ps, ["opa", "opa"]) as { name: string }).name, "opa");
  assert.match(String(providerFor(ps, ["opa", "oauth2"])), /only 1 provider .* opa, oauth2/);
  assert.match(
    String(providerFor(ps, ["nope"])),
    /available providers are \[opa, oauth2\] but found "nope"/,
  );
});
