/** jwt_authn in process: every algorithm Envoy verifies (keys and tokens made with WebCrypto),
 * Envoy's parse errors, token locations, forwarding, output headers and the CORS bypass. */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import { HeaderList, type HttpRequestContext } from "../../core/mod.ts";
import { Checker, parseJwtRules, Problems } from "../../istio/mod.ts";
import { JwtAuthnFilter } from "./jwt_authn_filter.ts";

const b64 = (b: Uint8Array | string) => Buffer.from(b).toString("base64url");
const enc = new TextEncoder();

type Kind = "RS256" | "PS384" | "ES256" | "ES384" | "EdDSA";
const GEN: Record<Kind, [AlgorithmIdentifier | RsaHashedKeyGenParams | EcKeyGenParams, unknown]> = {
  RS256: [
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    } as RsaHashedKeyGenParams,
    { name: "RSASSA-PKCS1-v1_5" },
  ],
  PS384: [
    {
      name: "RSA-PSS",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-384",
    } as RsaHashedKeyGenParams,
    { name: "RSA-PSS", saltLength: 48 },
  ],
  ES256: [{ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
  ES384: [{ name: "ECDSA", namedCurve: "P-384" }, { name: "ECDSA", hash: "SHA-384" }],
  EdDSA: [{ name: "Ed25519" }, { name: "Ed25519" }],
};

async function keyPair(kind: Kind, kid: string) {
  const [gen, algo] = GEN[kind];
  const kp = await crypto.subtle.generateKey(gen, true, ["sign", "verify"]) as CryptoKeyPair;
  const jwk = { ...(await crypto.subtle.exportKey("jwk", kp.publicKey)), kid };
  delete (jwk as { alg?: string }).alg;
  const sign = async (payload: object, header: object = {}) => {
    const signed = `${b64(JSON.stringify({ alg: kind, kid, ...header }))}.${
      b64(JSON.stringify(payload))
    }`;
    const sig = await crypto.subtle.sign(
      algo as AlgorithmIdentifier,
      kp.privateKey,
      enc.encode(signed),
    );
    return `${signed}.${b64(new Uint8Array(sig))}`;
  };
  return { jwk, sign };
}

function rules(raw: unknown) {
  const p = new Problems();
  const r = parseJwtRules(new Checker(p), "jwtRules", raw);
  assert.deepEqual(p.list, []);
  return r;
}

function req(path: string, headers: [string, string][] = [], method = "GET"): HttpRequestContext {
  return {
    direction: "inbound",
    method,
    path,
    authority: "api",
    scheme: "http",
    protocol: "HTTP/1.1",
    requestHeaders: new HeaderList(headers),
    peer: {} as HttpRequestContext["peer"],
    requestId: "r",
    filterState: new Map(),
    requestBody: undefined,
  };
}

const body = (o: unknown) =>
  (o as { action: string; response?: { status: number; body: string } }).action === "respond"
    ? `${(o as { response: { status: number } }).response.status} ${
      (o as { response: { body: string } }).response.body
    }`
    : "continue";

const now = () => Math.floor(Date.now() / 1000);

Deno.test("jwt_authn: RS256, PS384, ES256, ES384, EdDSA and HS256 verify; a wrong key does not", async () => {
  const kinds: Kind[] = ["RS256", "PS384", "ES256", "ES384", "EdDSA"];
  const pairs = await Promise.all(kinds.map((k, i) => keyPair(k, `k${i}`)));
  const secret = new Uint8Array(32).fill(7);
  const jwks = JSON.stringify({
    keys: [...pairs.map((p) => p.jwk), { kty: "oct", kid: "h", k: b64(secret) }],
  });
  const f = await JwtAuthnFilter.create("t", "FAIL_CLOSE", rules([{ issuer: "i", jwks }]));
  for (const [i, p] of pairs.entries()) {
    const tok = await p.sign({ iss: "i", sub: kinds[i], exp: now() + 60 });
    const ctx = req("/", [["authorization", `Bearer ${tok}`]]);
    assert.equal(body(f.onRequest(ctx)), "continue", kinds[i]!);
    assert.equal(ctx.requestAuth?.principal, `i/${kinds[i]}`);
    assert.equal(ctx.requestHeaders.get("authorization"), undefined);
  }
  const hs = `${b64(JSON.stringify({ alg: "HS256", kid: "h" }))}.${
    b64(JSON.stringify({ iss: "i", sub: "h" }))
  }`;
  const mac = createHmac("sha256", secret).update(hs).digest();
  assert.equal(
    body(f.onRequest(req("/", [["authorization", `Bearer ${hs}.${b64(mac)}`]]))),
    "continue",
  );
  const other = await keyPair("ES256", "k2");
  const forged = await other.sign({ iss: "i", sub: "x" });
  assert.equal(
    body(f.onRequest(req("/", [["authorization", `Bearer ${forged}`]]))),
    "401 Jwt verification fails",
  );
  f.close();
});

Deno.test("jwt_authn: Envoy's parse errors", async () => {
  const p = await keyPair("ES256", "k");
  const f = await JwtAuthnFilter.create(
    "t",
    "FAIL_CLOSE",
    rules([{ issuer: "i", jwks: JSON.stringify({ keys: [p.jwk] }) }]),
  );
  const h = (o: object) => b64(JSON.stringify(o));
  const cases: [string, string][] = [
    ["a.b", "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"],
    [`${b64("nope")}.b.c`, "Jwt header is an invalid JSON"],
    [`${h({ alg: 1 })}.b.c`, "Jwt header [alg] field is required and must be a string"],
    [`${h({ alg: "none" })}.b.c`, "Jwt header [alg] is not supported"],
    [`${h({ alg: "ES256", kid: 3 })}.b.c`, "Jwt header [kid] field is not a string"],
    [`${h({ alg: "ES256" })}.${h({ iss: 1 })}.c`, "Jwt payload [iss] field is not a string"],
    [
      `${h({ alg: "ES256" })}.${h({ iss: "i", exp: 1.5 })}.c`,
      "Jwt payload [exp] field is not an integer",
    ],
    [
      `${h({ alg: "ES256" })}.${h({ iss: "i", aud: [1] })}.c`,
      "Jwt payload [aud] field is not a string or string list",
    ],
  ];
  for (const [tok, want] of cases) {
    const o = f.onRequest(req("/", [["authorization", `Bearer ${tok}`]]));
    assert.equal(body(o), `401 ${want}`, tok);
  }
  // A query parameter is URL-decoded, so it can carry what the header extractor would stop at.
  const bad = `${h({ alg: "ES256" })}.${h({ iss: "i" })}.c%2A`;
  assert.equal(
    body(f.onRequest(req(`/?access_token=${bad}`))),
    "401 Jwt signature is an invalid Base64url encoded",
  );
  for (const [tok, want] of [["a%2A.b.c", "Jwt header is an invalid Base64url encoded"]]) {
    assert.equal(body(f.onRequest(req(`/?access_token=${tok}`))), `401 ${want}`);
  }
  f.close();
});

Deno.test("jwt_authn: locations, issuers per rule, forwarding, output headers, CORS preflight", async () => {
  const a = await keyPair("ES256", "a");
  const b = await keyPair("ES256", "b");
  const f = await JwtAuthnFilter.create(
    "t",
    "FAIL_CLOSE",
    rules([
      {
        issuer: "ia",
        jwks: JSON.stringify({ keys: [a.jwk] }),
        fromHeaders: [{ name: "x-token", prefix: "T " }],
        forwardOriginalToken: true,
        outputClaimToHeaders: [{ header: "x-team", claim: "org.team" }],
      },
      {
        issuer: "ib",
        jwks: JSON.stringify({ keys: [b.jwk] }),
        fromCookies: ["session"],
        fromParams: ["t"],
      },
    ]),
  );
  const ta = await a.sign({
    iss: "ia",
    sub: "s",
    org: { team: "blue" },
    azp: "web",
    aud: ["x", "y"],
  });
  let ctx = req("/", [["x-token", `T ${ta}`], ["x-team", "forged"]]);
  assert.equal(body(f.onRequest(ctx)), "continue");
  assert.equal(ctx.requestHeaders.get("x-token"), `T ${ta}`); // forwardOriginalToken
  assert.equal(ctx.requestHeaders.get("x-team"), "blue");
  assert.deepEqual([ctx.requestAuth?.presenter, ctx.requestAuth?.audiences], ["web", ["x", "y"]]);
  // The default Authorization location is not configured any more: no token, no principal.
  ctx = req("/", [["authorization", `Bearer ${ta}`], ["x-team", "forged"]]);
  assert.equal(body(f.onRequest(ctx)), "continue");
  assert.equal(ctx.requestAuth, undefined);
  assert.equal(ctx.requestHeaders.get("x-team"), undefined);
  // ia's token in ib's location: the issuer is not configured there.
  assert.equal(
    body(f.onRequest(req("/", [["cookie", `a=1; session=${ta}`]]))),
    "401 Jwt issuer is not configured",
  );
  const tb = await b.sign({ iss: "ib", sub: "c" });
  ctx = req("/", [["cookie", `a=1; session=${tb}`]]);
  assert.equal(body(f.onRequest(ctx)), "continue");
  assert.equal(ctx.requestAuth?.principal, "ib/c");
  assert.equal(body(f.onRequest(req(`/p?x=1&t=${tb}`))), "continue");
  const expired = await b.sign({ iss: "ib", sub: "c", exp: now() - 61 });
  assert.equal(body(f.onRequest(req(`/p?t=${expired}`))), "401 Jwt is expired");
  const pre = req(`/p?t=${expired}`, [["origin", "http://x"], [
    "access-control-request-method",
    "GET",
  ]], "OPTIONS");
  assert.equal(body(f.onRequest(pre)), "continue");
  f.close();
});

Deno.test("jwt_authn: forwardOriginalToken false strips the token from query params and every location", async () => {
  const a = await keyPair("ES256", "a");
  const f = await JwtAuthnFilter.create(
    "t",
    "FAIL_CLOSE",
    rules([{ issuer: "ia", jwks: JSON.stringify({ keys: [a.jwk] }) }]),
  );
  const tok = await a.sign({ iss: "ia", sub: "s" });
  let ctx = req(`/p?x=1&access_token=${tok}&y=%2F&access_token=${tok}`);
  assert.equal(body(f.onRequest(ctx)), "continue");
  assert.equal(ctx.path, "/p?x=1&y=%2F"); // Envoy's JwtParamLocation::removeJwt
  ctx = req(`/p?access_token=${tok}`);
  assert.equal(body(f.onRequest(ctx)), "continue");
  assert.equal(ctx.path, "/p");
  // The same token in the header and the query: removed from both, not only the first seen.
  ctx = req(`/p?access%5Ftoken=${tok}`, [["authorization", `Bearer ${tok}`]]);
  assert.equal(body(f.onRequest(ctx)), "continue");
  assert.equal(ctx.requestHeaders.get("authorization"), undefined);
  assert.equal(ctx.path, "/p");
  f.close();
});

Deno.test("jwt_authn: a claim header goes out as the claim's UTF-8 bytes, never CR/LF", async () => {
  const a = await keyPair("ES256", "a");
  const f = await JwtAuthnFilter.create(
    "t",
    "FAIL_CLOSE",
    rules([{
      issuer: "ia",
      jwks: JSON.stringify({ keys: [a.jwk] }),
      outputClaimToHeaders: [{ header: "x-name", claim: "name" }],
    }]),
  );
  const name = "bob\u010d\u010aX-Injected: yes é";
  const ctx = req("/", [["authorization", `Bearer ${await a.sign({ iss: "ia", name })}`]]);
  assert.equal(body(f.onRequest(ctx)), "continue");
  const v = ctx.requestHeaders.get("x-name")!;
  assert(![...v].some((c) => c.charCodeAt(0) > 0xff || c === "\r" || c === "\n"), v);
  assert.equal(Buffer.from(v, "latin1").toString("utf8"), name);
  f.close();
});

Deno.test("jwt_authn: an oct key that decodes to nothing is no key (no MAC with an empty secret)", async () => {
  for (const k of ["", "!!!!", "A"]) {
    const jwks = JSON.stringify({ keys: [{ kty: "oct", kid: "h", k }] });
    const f = await JwtAuthnFilter.create("t", "FAIL_CLOSE", rules([{ issuer: "i", jwks }]));
    const hs = `${b64(JSON.stringify({ alg: "HS256", kid: "h" }))}.${
      b64(JSON.stringify({ iss: "i", sub: "h" }))
    }`;
    const mac = createHmac("sha256", Buffer.alloc(0)).update(hs).digest();
    const out = body(f.onRequest(req("/", [["authorization", `Bearer ${hs}.${b64(mac)}`]])));
    assert.notEqual(out, "continue", JSON.stringify(k));
    f.close();
  }
});

Deno.test("jwt_authn: what follows a token in its header is part of it (no unverified token riding a good one)", async () => {
  const a = await keyPair("ES256", "a");
  const f = await JwtAuthnFilter.create(
    "t",
    "FAIL_CLOSE",
    rules([{
      issuer: "ia",
      jwks: JSON.stringify({ keys: [a.jwk] }),
      forwardOriginalToken: true,
    }]),
  );
  const good = await a.sign({ iss: "ia", sub: "s" });
  const forged = `${b64(JSON.stringify({ alg: "ES256" }))}.${
    b64(JSON.stringify({ iss: "ia", sub: "admin" }))
  }.AAAA`;
  // Envoy's extractor takes the rest of the value: the whole of it must verify.
  for (const v of [`Bearer ${good}, Bearer ${forged}`, `Bearer ${good} ${forged}`]) {
    const out = body(f.onRequest(req("/", [["authorization", v]])));
    assert.match(out, /^401 /, v);
  }
  assert.equal(body(f.onRequest(req("/", [["authorization", `Bearer  ${good}`]]))), "continue");
  f.close();
});
