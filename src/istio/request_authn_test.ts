/** RequestAuthentication validation: Istio's forms accepted and defaulted, every bad value
 * refused with its path (never thrown, never ignored). */
import assert from "node:assert/strict";
import { loadIstioDocuments } from "./mod.ts";

const JWKS = JSON.stringify({ keys: [{ kty: "RSA", n: "AQAB", e: "AQAB", kid: "k" }] });

const doc = (spec: string, api = "security.istio.io/v1") =>
  `apiVersion: ${api}
kind: RequestAuthentication
metadata: {name: ra, namespace: default}
spec: ${spec}`;

function load(text: string) {
  return loadIstioDocuments([{ file: "ra.yaml", text }]);
}

Deno.test("RequestAuthentication: Istio's fields parse, with Istio's defaults", () => {
  for (const api of ["security.istio.io/v1", "security.istio.io/v1beta1"]) {
    const r = load(doc(
      `{selector: {matchLabels: {app: api}}, jwtRules: [
        {issuer: "https://issuer.example", jwksUri: "https://issuer.example/jwks.json"},
        {issuer: other, audiences: [a, b], jwks: '${JWKS}', fromHeaders: [{name: X-Jwt, prefix: "T "}],
         fromParams: [tok], fromCookies: [session], forwardOriginalToken: true,
         outputPayloadToHeader: X-Payload, outputClaimToHeaders: [{header: X-Sub, claim: sub}],
         timeout: 2s}]}`,
      api,
    ));
    assert.deepEqual(r.problems, []);
    const [ra] = r.resources.requestAuthentications;
    assert.deepEqual(ra!.selector, { app: "api" });
    const [a, b] = ra!.jwtRules;
    assert.equal(a!.issuer, "https://issuer.example");
    assert.deepEqual(a!.fromHeaders, []);
    assert.equal(a!.forwardOriginalToken, false);
    assert.equal(a!.timeoutMs, 5000);
    assert.deepEqual(b!.audiences, ["a", "b"]);
    assert.deepEqual(b!.fromHeaders, [{ name: "x-jwt", prefix: "T " }]);
    assert.deepEqual(b!.fromCookies, ["session"]);
    assert.equal(b!.outputPayloadToHeader, "x-payload");
    assert.deepEqual(b!.outputClaimToHeaders, [{ header: "x-sub", claim: "sub" }]);
    assert.equal(b!.timeoutMs, 2000);
    assert.equal(b!.forwardOriginalToken, true);
  }
  const t = load(doc(`{targetRefs: [{kind: Service, name: api}], jwtRules: []}`));
  assert.deepEqual(t.problems, []);
  assert.deepEqual(t.resources.requestAuthentications[0]!.targetServices, ["api"]);
});

Deno.test("RequestAuthentication: every problem is reported with its path", () => {
  const r = load(doc(`{selector: {matchLabels: {app: x}}, targetRefs: [{kind: Service, name: s}],
    jwksRules: [], jwtRules: [
      {audiences: [""], jwksUri: "ftp://x/jwks"},
      {issuer: i, jwks: "{not json", fromHeaders: [{prefix: "B "}], fromParams: [""],
       outputClaimToHeaders: [{header: "bad header", claim: "a b"}], timeout: 0s,
       forwardOriginalToken: "yes", extra: 1},
      {issuer: j}]}`));
  const want = [
    /spec\.jwksRules: unknown field/,
    /spec\.targetRefs: is mutually exclusive with spec\.selector/,
    /spec\.jwtRules\[0\]\.issuer: is required/,
    /spec\.jwtRules\[0\]\.audiences\[0\]: must not be empty/,
    /spec\.jwtRules\[0\]\.jwksUri: must be an http or https URL/,
    /spec\.jwtRules\[1\]\.extra: unknown field/,
    /spec\.jwtRules\[1\]\.jwks: must be a JSON Web Key Set/,
    /spec\.jwtRules\[1\]\.fromHeaders\[0\]\.name: is required/,
    /spec\.jwtRules\[1\]\.fromParams\[0\]: must not be empty/,
    /spec\.jwtRules\[1\]\.outputClaimToHeaders\[0\]\.header: must be a header name/,
    /spec\.jwtRules\[1\]\.outputClaimToHeaders\[0\]\.claim: must be a claim name/,
    /spec\.jwtRules\[1\]\.timeout: must be greater than 0/,
    /spec\.jwtRules\[1\]\.forwardOriginalToken: must be true or false/,
    /spec\.jwtRules\[2\]: needs jwks or jwksUri/,
  ];
  for (const re of want) {
    assert.ok(r.problems.some((p) => re.test(p)), `${re}\n${r.problems.join("\n")}`);
  }
  assert.ok(r.problems.every((p) => p.startsWith("ra.yaml#0 RequestAuthentication default/ra: ")));
  assert.equal(r.resources.requestAuthentications.length, 0);
  assert.match(load(doc("{}", "security.istio.io/v2")).problems[0]!, /apiVersion: must be one of/);
});
