/**
 * RequestAuthentication + AuthorizationPolicy through real weft processes: client → node A → HBONE
 * mTLS → node B (jwt_authn, then the authz plugin) → an HTTP workload that echoes what it got.
 * Keys are made and tokens signed here with WebCrypto; one issuer's JWKS is inline, one is served
 * by an HTTP server on loopback (jwksUri), one jwksUri is unreachable (istiod's fake JWKS: every
 * token of that issuer gets 401). Runs on Deno, and on Bun when installed.
 */
import { createServer, type Server } from "node:http";
import { assert, assertEquals } from "./support/assert.ts";
import { bunPath } from "./support/weft_proc.ts";
import { withTwoNodes } from "./support/two_node_http.ts";

const enc = new TextEncoder();
const b64url = (b: Uint8Array | string): string =>
  btoa(String.fromCharCode(...(typeof b === "string" ? enc.encode(b) : b)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

interface Signer {
  readonly jwk: JsonWebKey & { kid: string; alg: string };
  sign(payload: Record<string, unknown>, kid?: string): Promise<string>;
}

async function signer(kind: "RS256" | "ES256", kid: string): Promise<Signer> {
  const gen = kind === "RS256"
    ? {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    }
    : { name: "ECDSA", namedCurve: "P-256" };
  const algo = kind === "RS256"
    ? { name: "RSASSA-PKCS1-v1_5" }
    : { name: "ECDSA", hash: "SHA-256" };
  const kp = await crypto.subtle.generateKey(gen, true, ["sign", "verify"]) as CryptoKeyPair;
  const jwk = { ...(await crypto.subtle.exportKey("jwk", kp.publicKey)), kid, alg: kind };
  return {
    jwk,
    async sign(payload, k = kid) {
      const signed = `${b64url(JSON.stringify({ alg: kind, typ: "JWT", kid: k }))}.${
        b64url(JSON.stringify(payload))
      }`;
      const sig = await crypto.subtle.sign(algo, kp.privateKey, enc.encode(signed));
      return `${signed}.${b64url(new Uint8Array(sig))}`;
    },
  };
}

function startJwks(
  body: () => string,
): Promise<{ url: string; hits: () => number; server: Server }> {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.setHeader("content-type", "application/json");
    res.end(body());
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      resolve({ url: `http://127.0.0.1:${port}/jwks.json`, hits: () => hits, server });
    })
  );
}

/** A header value as node:http hands it (one char per byte) back to its bytes. */
const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));

/** A port nothing listens on: bound once, then closed. */
async function deadUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as { port: number }).port;
  await close(s);
  return `http://127.0.0.1:${port}/jwks.json`;
}

function istio(inlineJwks: string, remoteUri: string, deadUri: string): string {
  return `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec:
  selector: {matchLabels: {app: echo}}
  jwtRules:
  - issuer: https://inline.example
    audiences: [weft-api]
    jwks: '${inlineJwks}'
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders: [{header: x-jwt-sub, claim: sub}, {header: x-jwt-name, claim: name}]
  - issuer: https://remote.example
    jwksUri: ${remoteUri}
  - issuer: https://down.example
    jwksUri: ${deadUri}
    timeout: 1s
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: default}
spec:
  selector: {matchLabels: {app: echo}}
  rules:
  - from: [{source: {requestPrincipals: ["*"]}}]
    to: [{operation: {paths: ["/api*"]}}]
  - from: [{source: {requestPrincipals: ["https://inline.example/*"]}}]
    to: [{operation: {paths: ["/admin*"]}}]
    when: [{key: "request.auth.claims[groups]", values: ["admin"]}]
  - to: [{operation: {paths: ["/remote*"]}}]
    when: [{key: request.auth.principal, values: ["https://remote.example/carol"]}]
`;
}

async function jwtProbes(runtime: string | undefined): Promise<void> {
  const rs = await signer("RS256", "k1");
  const es = await signer("ES256", "e1");
  const attacker = await signer("RS256", "k1");
  const remote = await signer("RS256", "r1");
  const jwksServer = await startJwks(() => JSON.stringify({ keys: [remote.jwk] }));
  const dead = await deadUrl();
  const now = Math.floor(Date.now() / 1000);
  const claims = (extra: Record<string, unknown> = {}) => ({
    iss: "https://inline.example",
    sub: "alice",
    aud: "weft-api",
    exp: now + 600,
    ...extra,
  });
  try {
    const inline = JSON.stringify({ keys: [rs.jwk, es.jwk] });
    await withTwoNodes({ runtime, istio: istio(inline, jwksServer.url, dead) }, async (t) => {
      const get = (path: string, token?: string, extra = "") =>
        t.send(`GET ${path} HTTP/1.1${token ? `\r\nAuthorization: Bearer ${token}` : ""}${extra}`);
      const denied401 = async (token: string, body: string, path = "/api/x") => {
        const r = await get(path, token);
        assertEquals(r.status, 401, `${body}: ${r.text}`);
        assertEquals(r.body, body);
        assert(
          /\r\nwww-authenticate: Bearer realm="http:\/\/echo\/api\/x", error="invalid_token"/i
            .test(r.text) || path !== "/api/x",
          r.text,
        );
      };

      // A valid token: allowed; the workload sees neither the token nor forged output headers.
      const good = await rs.sign(claims());
      let r = await get("/api/x", good, "\r\nx-jwt-sub: mallory");
      assertEquals(r.status, 200, r.text);
      const seen = JSON.parse(r.body).headers;
      assertEquals(seen.authorization, undefined);
      assertEquals(seen["x-jwt-sub"], "alice");
      assertEquals(
        JSON.parse(atob(seen["x-jwt-payload"].replace(/-/g, "+").replace(/_/g, "/"))).sub,
        "alice",
      );
      assertEquals((await get("/api/x", await es.sign(claims()))).status, 200);
      // access_token query parameter (Envoy's default location besides Authorization); not
      // forwarded (forwardOriginalToken false): the workload's path keeps only the other params.
      r = await get(`/api/x?a=1&access_token=${good}`);
      assertEquals(r.status, 200);
      assertEquals(JSON.parse(r.body).path, "/api/x?a=1");
      // A claim header carries the claim's UTF-8 bytes: chars whose low byte is CR/LF
      // (U+010D U+010A) cannot split the upstream request head.
      const name = "bob\u010d\u010aX-Injected: yes";
      r = await get("/api/x", await rs.sign(claims({ name })));
      assertEquals(r.status, 200, r.text);
      const named = JSON.parse(r.body).headers;
      assertEquals(named["x-injected"], undefined);
      assertEquals(new TextDecoder().decode(latin1(named["x-jwt-name"])), name);
      // Within Envoy's 60 s clock skew.
      assertEquals((await get("/api/x", await rs.sign(claims({ exp: now - 20 })))).status, 200);

      // No token: RequestAuthentication lets it through; the policy requires a principal.
      r = await get("/api/x", undefined, "\r\nx-jwt-sub: mallory");
      assertEquals(r.status, 403);
      assertEquals(r.body, "RBAC: access denied");

      // Invalid tokens: 401 with Envoy's jwt_authn status strings.
      await denied401(await rs.sign(claims({ exp: now - 120 })), "Jwt is expired");
      await denied401(await rs.sign(claims({ nbf: now + 600 })), "Jwt not yet valid");
      await denied401(await attacker.sign(claims()), "Jwt verification fails");
      await denied401(
        await rs.sign(claims({ iss: "https://evil.example" })),
        "Jwt issuer is not configured",
      );
      await denied401(
        await rs.sign(claims({ aud: "other-api" })),
        "Audiences in Jwt are not allowed",
      );
      await denied401(
        await rs.sign(claims(), "nope"),
        "Jwks doesn't have key to match kid or alg from Jwt",
      );
      await denied401(
        "abc.def",
        "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
      );
      // A good token cannot carry a bad one along.
      r = await get("/api/x", good, `\r\nAuthorization: Bearer ${await attacker.sign(claims())}`);
      assertEquals(r.status, 401);
      // Nor in the same header: what follows a token is part of it (Envoy's extractor).
      r = await get("/api/x", `${good}, Bearer ${await attacker.sign(claims())}`);
      assertEquals(r.status, 401);

      // Claims conditions.
      assertEquals((await get("/admin/x", good)).status, 403);
      const admin = await rs.sign(claims({ groups: ["dev", "admin"] }));
      assertEquals((await get("/admin/x", admin)).status, 200);

      // jwksUri served on loopback; the principal condition on it.
      const carol = await remote.sign({
        iss: "https://remote.example",
        sub: "carol",
        exp: now + 60,
      });
      assertEquals((await get("/remote/x", carol)).status, 200);
      const dave = await remote.sign({ iss: "https://remote.example", sub: "dave", exp: now + 60 });
      assertEquals((await get("/remote/x", dave)).status, 403);
      assert(jwksServer.hits() >= 1, "the JWKS was fetched");

      // An unreachable jwksUri: istiod's fake JWKS, every token of that issuer gets 401.
      const down = await remote.sign({ iss: "https://down.example", sub: "x", exp: now + 60 });
      await denied401(down, "Jwks doesn't have key to match kid or alg from Jwt");

      const m = await (await fetch(`http://${t.b.ready.metrics}/metrics`)).text();
      for (const result of ["verified", "missing", "expired", "bad_signature", "unknown_issuer"]) {
        assert(m.includes(`weft_jwt_authn_total{result="${result}"}`), `${result}\n${m}`);
      }
    });
  } finally {
    await close(jwksServer.server);
  }
}

Deno.test("l7 jwt_authn: RequestAuthentication + requestPrincipals end to end (Deno)", async () => {
  await jwtProbes(undefined);
});

Deno.test({
  name: "l7 jwt_authn: RequestAuthentication + requestPrincipals end to end (Bun)",
  ignore: bunPath() === undefined,
  fn: async () => await jwtProbes(bunPath()),
});
