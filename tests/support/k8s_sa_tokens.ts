/**
 * A stand-in for the Kubernetes API server's service-account token signer: a generated RSA
 * (RS256) or P-256 (ES256) key, its JWKS as `kubectl get --raw /openid/v1/jwks` prints it (kid =
 * base64url SHA-256 of the public key's DER, as kube-apiserver computes it), and bound tokens
 * with the documented claim set (TokenRequest / projected volume): iss, sub, aud, exp, iat, nbf,
 * jti and `kubernetes.io.{namespace, serviceaccount, pod, node}` (node info: Kubernetes >= 1.30).
 */
import { Buffer } from "node:buffer";
import { createHash, generateKeyPairSync, type KeyObject, randomUUID, sign } from "node:crypto";

export const K8S_ISSUER = "https://kubernetes.default.svc.cluster.local";

export interface BoundToken {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** The pod the token is bound to (a projected volume's token is). */
  readonly pod?: string;
  /** The pod's node; absent = an older API server (or a token not bound to a pod). */
  readonly node?: string;
  readonly audiences?: readonly string[];
  readonly issuer?: string;
  /** Seconds from now (default 43200, Istio's expirationSeconds). */
  readonly expiresInS?: number;
  readonly nowS?: number;
}

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString("base64url");

export class SaTokenSigner {
  readonly kid: string;
  private constructor(
    readonly alg: "RS256" | "ES256",
    private readonly priv: KeyObject,
    private readonly pub: KeyObject,
  ) {
    const der = pub.export({ format: "der", type: "spki" });
    this.kid = createHash("sha256").update(der).digest("base64url");
  }

  static generate(alg: "RS256" | "ES256" = "RS256"): SaTokenSigner {
    const { privateKey, publicKey } = alg === "RS256"
      ? generateKeyPairSync("rsa", { modulusLength: 2048 })
      : generateKeyPairSync("ec", { namedCurve: "P-256" });
    return new SaTokenSigner(alg, privateKey, publicKey);
  }

  /** The issuer's public keys as /openid/v1/jwks serves them. */
  jwks(): string {
    const jwk = this.pub.export({ format: "jwk" });
    return JSON.stringify({
      keys: [{ use: "sig", kty: jwk.kty, kid: this.kid, alg: this.alg, ...jwk }],
    });
  }

  /** Any header and payload, signed with this key (for hostile variants). */
  signRaw(header: Record<string, unknown>, payload: Record<string, unknown>): string {
    const signed = `${b64(header)}.${b64(payload)}`;
    const sig = this.alg === "RS256"
      ? sign("sha256", Buffer.from(signed), this.priv)
      : sign("sha256", Buffer.from(signed), { key: this.priv, dsaEncoding: "ieee-p1363" });
    return `${signed}.${sig.toString("base64url")}`;
  }

  /** The claim set kube-apiserver puts in a bound (projected) service-account token. */
  claims(t: BoundToken): Record<string, unknown> {
    const now = Math.floor(t.nowS ?? Date.now() / 1000);
    const uid = (): string => randomUUID();
    return {
      aud: [...(t.audiences ?? ["istio-ca"])],
      exp: now + (t.expiresInS ?? 43200),
      iat: now,
      iss: t.issuer ?? K8S_ISSUER,
      jti: uid(),
      "kubernetes.io": {
        namespace: t.namespace,
        ...(t.node ? { node: { name: t.node, uid: uid() } } : {}),
        ...(t.pod ? { pod: { name: t.pod, uid: uid() } } : {}),
        serviceaccount: { name: t.serviceAccount, uid: uid() },
      },
      nbf: now,
      sub: `system:serviceaccount:${t.namespace}:${t.serviceAccount}`,
    };
  }

  token(t: BoundToken): string {
    return this.signRaw({ alg: this.alg, kid: this.kid }, this.claims(t));
  }
}
