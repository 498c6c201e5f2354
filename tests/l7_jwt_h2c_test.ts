/** jwt_authn before the authz plugin on an h2c downstream (weft's HttpProxy, in process): a
 * verified token reaches requestPrincipals, a bad one gets Envoy's 401, and a gRPC request gets
 * the 401 as grpc-status 16 (UNAUTHENTICATED), trailers-only. */
import http2 from "node:http2";
import { Buffer } from "node:buffer";
import { parseAllDocuments } from "yaml";
import { assertEquals, assertMatch } from "./support/assert.ts";
import {
  authorizationPolicyFromIstio,
  authzConfigFromPolicies,
} from "../src/filters/first_party/mod.ts";
import { Checker, parseJwtRules, Problems } from "../src/istio/mod.ts";
import { JwtAuthnFilter } from "../src/filters/jwt/jwt_authn_filter.ts";
import { loadPlugin, prepare } from "../plugins/_common/plugin_harness.ts";
import { AUTHZ_SOURCES } from "../plugins/authz/build.ts";
import { startL7 } from "./support/l7_harness.ts";
import { closeSession, h2Call } from "./support/h2c_client.ts";

await prepare("authz", AUTHZ_SOURCES);

const b64 = (b: Uint8Array | string) => Buffer.from(b).toString("base64url");

Deno.test("l7 jwt_authn over h2c: 200 with a principal, 403 without a token, 401 (and gRPC 16) for a bad one", async () => {
  const kp = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const jwk = { ...(await crypto.subtle.exportKey("jwk", kp.publicKey)), kid: "k" };
  const sign = async (payload: object) => {
    const s = `${b64(JSON.stringify({ alg: "ES256", kid: "k" }))}.${b64(JSON.stringify(payload))}`;
    const sig = await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      kp.privateKey,
      new TextEncoder().encode(s),
    );
    return `${s}.${b64(new Uint8Array(sig))}`;
  };
  const problems = new Problems();
  const rules = parseJwtRules(new Checker(problems), "jwtRules", [
    { issuer: "https://h2.example", jwks: JSON.stringify({ keys: [jwk] }) },
  ]);
  assertEquals(problems.list, []);
  const jwt = await JwtAuthnFilter.create("h2c-jwt", "FAIL_CLOSE", rules);
  const authz = await loadPlugin(
    "authz",
    AUTHZ_SOURCES,
    authzConfigFromPolicies(
      parseAllDocuments(`
metadata: {name: p, namespace: default}
spec: {rules: [{from: [{source: {requestPrincipals: ["https://h2.example/alice"]}}]}]}`)
        .map((d) => authorizationPolicyFromIstio(d.toJS())),
    ),
    "h2c-jwt-authz",
  );
  const h = await startL7([jwt, authz]);
  const s = http2.connect(h.url);
  try {
    const now = Math.floor(Date.now() / 1000);
    const call = (token: string | undefined, headers: Record<string, string> = {}) =>
      h2Call(s, "/x", {
        method: "GET",
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
      });
    let r = await call(await sign({ iss: "https://h2.example", sub: "alice", exp: now + 60 }));
    assertEquals(r.status, 200, r.body);
    assertEquals(JSON.parse(r.body).headers.authorization, undefined);
    r = await call(await sign({ iss: "https://h2.example", sub: "bob", exp: now + 60 }));
    assertEquals([r.status, r.body], [403, "RBAC: access denied"]);
    r = await call(undefined);
    assertEquals(r.status, 403);
    const expired = await sign({ iss: "https://h2.example", sub: "alice", exp: now - 100 });
    r = await call(expired);
    assertEquals([r.status, r.body], [401, "Jwt is expired"]);
    assertMatch(
      String(r.headers["www-authenticate"]),
      /^Bearer realm="http:\/\/[^"]+\/x", error="invalid_token"$/,
    );
    r = await call(expired, { "content-type": "application/grpc" });
    assertEquals([r.status, r.headers["grpc-status"]], [200, "16"]);
  } finally {
    await closeSession(s);
    await h.close();
    jwt.close();
  }
});
