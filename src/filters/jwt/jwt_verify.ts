/**
 * One JWT, parsed and verified as Envoy's jwt_authn does (source/common/jwt: jwt.cc parse,
 * verify.cc key choice; authenticator.cc order: parse, issuer, time with 60 s clock skew,
 * audiences, signature). Failures are Envoy's status strings (status.cc), which become the 401
 * body. Synchronous: node:crypto verifies without a Promise.
 */
import { Buffer } from "node:buffer";
import { constants, createHmac, timingSafeEqual, verify as cryptoVerify } from "node:crypto";
import type { Jwk, Jwks } from "./jwks.ts";

/** Envoy's default `clock_skew_seconds`. */
export const CLOCK_SKEW_S = 60;

export interface ParsedJwt {
  readonly alg: string;
  readonly kid: string | undefined;
  readonly iss: string | undefined;
  readonly sub: string | undefined;
  readonly audiences: readonly string[];
  readonly nbf: number;
  readonly exp: number;
  readonly payload: Readonly<Record<string, unknown>>;
  /** The payload segment as received (Envoy's forward_payload_header value). */
  readonly payloadB64: string;
  readonly signed: string;
  readonly signature: Uint8Array;
}

const ALGS: Readonly<Record<string, { hash: string; kind: "RS" | "PS" | "ES" | "HS" | "Ed" }>> = {
  RS256: { hash: "sha256", kind: "RS" },
  RS384: { hash: "sha384", kind: "RS" },
  RS512: { hash: "sha512", kind: "RS" },
  PS256: { hash: "sha256", kind: "PS" },
  PS384: { hash: "sha384", kind: "PS" },
  PS512: { hash: "sha512", kind: "PS" },
  ES256: { hash: "sha256", kind: "ES" },
  ES384: { hash: "sha384", kind: "ES" },
  ES512: { hash: "sha512", kind: "ES" },
  HS256: { hash: "sha256", kind: "HS" },
  HS384: { hash: "sha384", kind: "HS" },
  HS512: { hash: "sha512", kind: "HS" },
  EdDSA: { hash: "", kind: "Ed" },
};
const EC_CURVE: Readonly<Record<string, string>> = {
  ES256: "P-256",
  ES384: "P-384",
  ES512: "P-521",
};

const B64URL = /^[A-Za-z0-9_-]*={0,2}$/;

function b64(s: string): Buffer | undefined {
  return B64URL.test(s) ? Buffer.from(s, "base64url") : undefined;
}

function json(buf: Buffer | undefined): Record<string, unknown> | undefined {
  if (!buf) return undefined;
  try {
    const v = JSON.parse(buf.toString("utf8"));
    return typeof v === "object" && v !== null && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** A non-negative 64-bit integer claim (Envoy: not an integer / not a positive 64 bit integer). */
function time(p: Record<string, unknown>, k: string): number | string {
  const v = p[k];
  if (v === undefined) return 0;
  if (typeof v !== "number" || !Number.isInteger(v)) {
    return `Jwt payload [${k}] field is not an integer`;
  }
  if (v < 0) return `Jwt payload [${k}] field is not a positive 64 bit integer`;
  return v;
}

/** jwt.cc parseFromString: the token's shape, or Envoy's status string. */
export function parseJwt(token: string): ParsedJwt | string {
  const parts = token.split(".");
  if (parts.length !== 3) {
    return "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections";
  }
  const [h, p, s] = parts as [string, string, string];
  const hb = b64(h);
  if (!hb) return "Jwt header is an invalid Base64url encoded";
  const header = json(hb);
  if (!header) return "Jwt header is an invalid JSON";
  const alg = header.alg;
  if (typeof alg !== "string") return "Jwt header [alg] field is required and must be a string";
  if (!(alg in ALGS)) return "Jwt header [alg] is not supported";
  if (header.kid !== undefined && typeof header.kid !== "string") {
    return "Jwt header [kid] field is not a string";
  }
  const pb = b64(p);
  if (!pb) return "Jwt payload is an invalid Base64url encoded";
  const payload = json(pb);
  if (!payload) return "Jwt payload is an invalid JSON";
  const { iss, sub, jti, aud } = payload;
  if (iss !== undefined && typeof iss !== "string") {
    return "Jwt payload [iss] field is not a string";
  }
  if (sub !== undefined && typeof sub !== "string") {
    return "Jwt payload [sub] field is not a string";
  }
  const iat = time(payload, "iat");
  if (typeof iat === "string") return iat;
  const nbf = time(payload, "nbf");
  if (typeof nbf === "string") return nbf;
  const exp = time(payload, "exp");
  if (typeof exp === "string") return exp;
  if (jti !== undefined && typeof jti !== "string") {
    return "Jwt payload [jti] field is not a string";
  }
  let audiences: string[] = [];
  if (typeof aud === "string") audiences = [aud];
  else if (Array.isArray(aud) && aud.every((a) => typeof a === "string")) audiences = aud;
  else if (aud !== undefined) return "Jwt payload [aud] field is not a string or string list";
  const signature = b64(s);
  if (!signature) return "Jwt signature is an invalid Base64url encoded";
  if (alg === "EdDSA" && signature.length !== 64) return "Jwt ED25519 signature is wrong length";
  return {
    alg,
    kid: header.kid as string | undefined,
    iss,
    sub,
    audiences,
    nbf,
    exp,
    payload,
    payloadB64: p,
    signed: `${h}.${p}`,
    signature,
  };
}

/** verifyTimeConstraint: nbf first, then exp, both with the clock skew. */
export function timeProblem(jwt: ParsedJwt, nowS: number): string | undefined {
  if (jwt.nbf && nowS + CLOCK_SKEW_S < jwt.nbf) return "Jwt not yet valid";
  if (jwt.exp && nowS > jwt.exp + CLOCK_SKEW_S) return "Jwt is expired";
  return undefined;
}

/** Envoy compares audiences without an http(s):// scheme and a trailing slash. */
export function sanitizeAudience(a: string): string {
  let s = a.replace(/^https?:\/\//, "");
  if (s.endsWith("/")) s = s.slice(0, -1);
  return s;
}

export function audiencesAllowed(jwt: ParsedJwt, allowed: ReadonlySet<string>): boolean {
  if (allowed.size === 0) return true;
  return jwt.audiences.some((a) => allowed.has(sanitizeAudience(a)));
}

/** verify.cc: keys whose kid (when both have one) and alg (when the key names one) fit. */
export function signatureProblem(jwt: ParsedJwt, keys: Jwks): string | undefined {
  let matched = false;
  for (const k of keys) {
    if (jwt.kid !== undefined && k.kid !== undefined && k.kid !== jwt.kid) continue;
    if (k.alg !== undefined && k.alg !== jwt.alg) continue;
    matched = true;
    if (verifyWith(jwt, k)) return undefined;
  }
  return matched ? "Jwt verification fails" : "Jwks doesn't have key to match kid or alg from Jwt";
}

function verifyWith(jwt: ParsedJwt, k: Jwk): boolean {
  const a = ALGS[jwt.alg]!;
  const key = k.key;
  if (!key) return false;
  const data = Buffer.from(jwt.signed, "latin1");
  try {
    switch (a.kind) {
      case "RS":
        return k.kty === "RSA" && cryptoVerify(a.hash, data, key, jwt.signature);
      case "PS":
        return k.kty === "RSA" && cryptoVerify(a.hash, data, {
          key,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
        }, jwt.signature);
      case "ES":
        return k.kty === "EC" && (k.crv === undefined || k.crv === EC_CURVE[jwt.alg]) &&
          cryptoVerify(a.hash, data, { key, dsaEncoding: "ieee-p1363" }, jwt.signature);
      case "Ed":
        return k.kty === "OKP" && k.crv === "Ed25519" &&
          cryptoVerify(null, data, key, jwt.signature);
      case "HS": {
        if (k.kty !== "oct") return false;
        const mac = createHmac(a.hash, key).update(data).digest();
        return mac.length === jwt.signature.length && timingSafeEqual(mac, jwt.signature);
      }
    }
  } catch {
    return false; // a key of the wrong shape for this algorithm verifies nothing
  }
}
