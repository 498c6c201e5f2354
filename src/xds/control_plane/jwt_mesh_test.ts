/** The control plane and JWT fields: a RequestAuthentication and the JWT `when` keys are accepted
 * into the mesh (build_rbac_test.ts checks their RBAC encoding). */
import assert from "node:assert/strict";
import { loadIstioDocuments } from "../../istio/mod.ts";
import { meshFromResources } from "./mesh.ts";

const load = (text: string) => {
  const r = loadIstioDocuments([{ file: "m.yaml", text }]);
  assert.deepEqual(r.problems, []);
  return r.resources;
};

Deno.test("control plane: RequestAuthentication accepted; claims/audiences/presenter when keys accepted", () => {
  const ok = meshFromResources(load(`apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra, namespace: default}
spec: {jwtRules: [{issuer: i, jwksUri: "https://i/jwks"}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: default}
spec: {rules: [{from: [{source: {requestPrincipals: ["i/*"]}}], when: [{key: request.auth.principal, values: ["i/a"]}]}]}`));
  assert.equal(ok.requestAuthentications.length, 1);
  const claims = meshFromResources(load(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: default}
spec: {rules: [{when: [{key: "request.auth.claims[groups]", values: [admin]},
  {key: request.auth.audiences, values: [web]}, {key: request.auth.presenter, values: [app]}]}]}`));
  assert.equal(claims.authorizationPolicies.length, 1);
  assert.throws(
    () =>
      meshFromResources(load(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: default}
spec: {rules: [{when: [{key: "request.auth.claims[a[b]", values: [x]}]}]}`)),
    /spec\.rules\[0\]\.when\[0\]\.key: "request\.auth\.claims\[a\[b\]": a claim name with "\[" is not served/,
  );
});
