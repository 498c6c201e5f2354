/** The control plane and JWT fields: a RequestAuthentication is accepted into the mesh, a JWT
 * `when` key it cannot carry over xDS is refused with its path (never silently dropped). */
import assert from "node:assert/strict";
import { loadIstioDocuments } from "../../istio/mod.ts";
import { meshFromResources } from "./mesh.ts";

const load = (text: string) => {
  const r = loadIstioDocuments([{ file: "m.yaml", text }]);
  assert.deepEqual(r.problems, []);
  return r.resources;
};

Deno.test("control plane: RequestAuthentication accepted; claims/audiences/presenter when keys refused", () => {
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
  assert.throws(
    () =>
      meshFromResources(load(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: default}
spec: {rules: [{when: [{key: "request.auth.claims[groups]", values: [admin]}]}]}`)),
    /AuthorizationPolicy default\/p: spec\.rules\[0\]\.when\[0\]\.key: "request\.auth\.claims\[groups\]" is not served over xDS/,
  );
});
