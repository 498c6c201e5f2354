/** Envoy jwt_authn as the control plane writes it for RequestAuthentication, read back by a node:
 * the same rules (Istio's fields); what a node could only run loosened is refused. */
import assert from "node:assert/strict";
import { Checker, parseJwtRules, Problems } from "../../istio/mod.ts";
import { Writer } from "../wire.ts";
import { decodeJwtAuthn, encodeJwtAuthn } from "./jwt_authn.ts";

const JWKS = JSON.stringify({ keys: [{ kty: "EC", crv: "P-256", x: "a", y: "b" }] });

function rules(raw: unknown) {
  const p = new Problems();
  const r = parseJwtRules(new Checker(p), "r", raw);
  assert.deepEqual(p.list, []);
  return r;
}

Deno.test("jwt_authn xDS: istiod's shape round-trips to the same rules (one and several)", () => {
  const one = rules([{ issuer: "https://a", jwksUri: "https://a/jwks", timeout: "2s" }]);
  const many = rules([
    { issuer: "https://a", jwksUri: "https://a/jwks" },
    {
      issuer: "b",
      audiences: ["x", "y"],
      jwks: JWKS,
      fromHeaders: [{ name: "x-t", prefix: "T " }],
      fromParams: ["t"],
      fromCookies: ["c"],
      forwardOriginalToken: true,
      outputPayloadToHeader: "x-p",
      outputClaimToHeaders: [{ header: "x-s", claim: "sub" }],
    },
    ...Array.from({ length: 10 }, (_, i) => ({ issuer: `i${i}`, jwks: JWKS })),
  ]);
  for (const rs of [one, many]) {
    const back = decodeJwtAuthn(encodeJwtAuthn(rs)).jwtRules;
    assert.deepEqual(rules(back), rs);
  }
});

Deno.test("jwt_authn xDS: a config weft would run loosened is refused", () => {
  // A rule requiring a token (no allow_missing): refusing it beats making the token optional.
  const w = new Writer();
  w.tag(1, 2).fork().tag(1, 2).string("p").tag(2, 2).fork().tag(1, 2).string("i").tag(4, 2)
    .fork().tag(3, 2).string(JWKS).join().join().join();
  w.tag(2, 2).fork().tag(1, 2).fork().tag(1, 2).string("/").join();
  w.tag(2, 2).fork().tag(1, 2).string("p").join().join();
  assert.throws(() => decodeJwtAuthn(w.finish()), /a missing token allowed/);
  // An unknown provider field (require_expiration).
  const x = new Writer();
  x.tag(1, 2).fork().tag(1, 2).string("p").tag(2, 2).fork().tag(1, 2).string("i").tag(20, 0)
    .bool(true).join().join();
  assert.throws(() => decodeJwtAuthn(x.finish()), /field 20: not supported/);
});

Deno.test("jwt_authn xDS: istiod's payload metadata (`payload`, space-delimited permission/scope)", () => {
  const bytes = encodeJwtAuthn(rules([{ issuer: "https://a", jwks: JWKS }]));
  const has = (sub: number[]) => bytes.some((_, i) => sub.every((b, j) => bytes[i + j] === b));
  const text = (s: string) => [...new TextEncoder().encode(s)];
  // payload_in_metadata (9) = "payload"; normalize_payload_in_metadata (18) {permission, scope}.
  assert.ok(has([0x4a, 7, ...text("payload")]));
  assert.ok(has([0x92, 0x01, 19, 0x0a, 10, ...text("permission"), 0x0a, 5, ...text("scope")]));
  assert.equal(decodeJwtAuthn(bytes).jwtRules.length, 1);
  // Another set of space-delimited claims would be matched differently: refused.
  const w = new Writer();
  w.tag(1, 2).fork().tag(1, 2).string("p").tag(2, 2).fork().tag(1, 2).string("i").tag(4, 2)
    .fork().tag(3, 2).string(JWKS).join().tag(18, 2).fork().tag(1, 2).string("scope").join()
    .join().join();
  assert.throws(() => decodeJwtAuthn(w.finish()), /only istiod's default \[permission, scope\]/);
});
