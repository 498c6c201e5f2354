/**
 * A registry token server for tests (the Docker registry token protocol that ghcr.io and Docker
 * Hub speak): the registry answers 401 `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, the
 * client fetches `GET realm?service=…&scope=…` (here with basic credentials) and gets `{token}`,
 * an ES256 JWT with the signing certificate in `x5c`, which docker-registry checks against its
 * `rootcertbundle`. The key and certificate come from openssl(1).
 */
import { createPrivateKey, sign, X509Certificate } from "node:crypto";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

export interface TokenServer {
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  /** PEM file docker-registry trusts (`auth.token.rootcertbundle`). */
  readonly certFile: string;
  /** Tokens issued so far. */
  readonly issued: () => number;
  stop(): Promise<void>;
}

const b64u = (b: Uint8Array | string): string =>
  (typeof b === "string" ? Buffer.from(b) : Buffer.from(b)).toString("base64url");

export function openSslMissing(): string | undefined {
  return spawnSync("openssl", ["version"]).status === 0 ? undefined : "openssl is not installed";
}

/** Starts the token server on `ip` (port chosen by the system); it grants pull to `user`. */
export async function startTokenServer(
  ip: string,
  dir: string,
  user: { username: string; password: string },
): Promise<TokenServer> {
  const keyFile = join(dir, "token-key.pem");
  const certFile = join(dir, "token-cert.pem");
  const r = spawnSync("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "1",
    "-subj",
    "/CN=weft-test-token-issuer",
  ], { stdio: "ignore" });
  if (r.status !== 0) throw new Error("openssl could not make the token signing certificate");
  const key = createPrivateKey(await Deno.readTextFile(keyFile));
  const der = new X509Certificate(await Deno.readTextFile(certFile)).raw;
  const service = "weft-test-registry";
  const issuer = "weft-test-issuer";
  const want = `Basic ${btoa(`${user.username}:${user.password}`)}`;
  let issued = 0;
  const server = Deno.serve({ hostname: ip, port: 0, onListen: () => {} }, (req) => {
    const u = new URL(req.url);
    if (req.headers.get("authorization") !== want) return new Response("denied", { status: 401 });
    const scope = u.searchParams.get("scope") ?? "";
    const [type, name, actions] = scope.split(":");
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: "ES256", typ: "JWT", x5c: [Buffer.from(der).toString("base64")] };
    const claims = {
      iss: issuer,
      sub: user.username,
      aud: u.searchParams.get("service"),
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: crypto.randomUUID(),
      access: type === "repository" ? [{ type, name, actions: actions?.split(",") ?? [] }] : [],
    };
    const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
    const sig = sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
    issued++;
    return Response.json({ token: `${input}.${b64u(sig)}` });
  });
  const addr = server.addr as Deno.NetAddr;
  return {
    realm: `http://${ip}:${addr.port}/token`,
    service,
    issuer,
    certFile,
    issued: () => issued,
    stop: () => server.shutdown(),
  };
}
