/**
 * The control plane's service-account token verifier (`--client-auth jwt`): the Kubernetes
 * service-account issuer's public keys as a JWKS file (what `kubectl get --raw /openid/v1/jwks`
 * prints) checked with the jwt_authn filter's verifier (src/filters: parse, exp/nbf with its
 * 60 s skew, signature), handed to src/xds as a function because that layer may not import
 * src/filters. Loaded only in jwt mode.
 */
import { readFileSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { errorMessage, logger, WeftError } from "../core/mod.ts";
import { type Jwks, parseJwks, parseJwt, signatureProblem, timeProblem } from "../filters/mod.ts";
import type { JwtVerifier } from "../xds/mod.ts";

const log = logger("control_plane");

/** What the API server signs service-account tokens with: RSA and ECDSA only. A symmetric or
 * "none" token is never a service-account token. */
const SA_ALGS = new Set(["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]);

/** Parses a JWKS text, keeping only RSA and EC public keys; throws with the reason. */
export function saIssuerKeys(text: string, source: string): Jwks {
  const parsed = parseJwks(text);
  if ("error" in parsed) {
    throw new WeftError("control_plane_config", `Cannot read the JWKS ${source}: ${parsed.error}`);
  }
  const keys = parsed.keys.filter((k) => k.kty === "RSA" || k.kty === "EC");
  if (keys.length === 0) {
    throw new WeftError(
      "control_plane_config",
      `Cannot read the JWKS ${source}: it has no RSA or EC public key`,
    );
  }
  return keys;
}

export function saTokenVerifier(keys: Jwks): JwtVerifier {
  return (token, nowS) => {
    const jwt = parseJwt(token);
    if (typeof jwt === "string") return { error: jwt };
    if (!SA_ALGS.has(jwt.alg)) return { error: `Jwt algorithm ${jwt.alg} is not RS* or ES*` };
    const why = timeProblem(jwt, nowS) ?? signatureProblem(jwt, keys);
    return why === undefined ? { payload: jwt.payload } : { error: why };
  };
}

/** The verifier for the JWKS in `path`, which is read again when the file changes (a ConfigMap
 * update swaps it): checked on each use, at most once a second; a new file that does not parse
 * keeps the last good keys (logged). A file missing or bad at start throws. */
export async function saTokenVerifierFromFile(
  path: string,
  recheckMs = 1000,
): Promise<JwtVerifier> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new WeftError("control_plane_config", `Cannot read the JWKS ${path}: ${String(err)}`);
  }
  let verify = saTokenVerifier(saIssuerKeys(text, path));
  let seen = stamp(path);
  let checkedAt = Date.now();
  return (token, nowS) => {
    if (Date.now() - checkedAt >= recheckMs) {
      checkedAt = Date.now();
      const now = stamp(path);
      if (now !== seen) {
        seen = now;
        try {
          verify = saTokenVerifier(saIssuerKeys(readFileSync(path, "utf8"), path));
          log.info("service-account issuer keys reloaded", { path });
        } catch (err) {
          log.error("service-account issuer keys not reloaded, keeping the last good ones", {
            path,
            error: errorMessage(err),
          });
        }
      }
    }
    return verify(token, nowS);
  };
}

/** What changes when the file is replaced or rewritten. */
function stamp(path: string): string {
  try {
    const st = statSync(path);
    return `${st.ino}:${st.mtimeMs}:${st.size}`;
  } catch (err) {
    return `missing: ${errorMessage(err)}`;
  }
}
