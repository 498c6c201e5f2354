/**
 * Test-only identity material: a real P-256 CA and SPIFFE leaves issued with @peculiar/x509, and a
 * tiny IdentityProvider over them (src/tls owns the production one). Used by core's tests and the
 * L4 bench harness; the data path never imports it.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import type { IdentityProvider, PeerVerdict, TlsMaterial, TlsRejectReason } from "./transport.ts";

const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
x509.cryptoProvider.set(globalThis.crypto);

function pem(label: string, der: ArrayBuffer): string {
  const b64 = btoa(String.fromCharCode(...new Uint8Array(der))).replace(/(.{64})/g, "$1\n");
  return `-----BEGIN ${label}-----\n${b64.trimEnd()}\n-----END ${label}-----\n`;
}

export interface TestCa {
  readonly rootsPem: string;
  issue(identity: string, opts?: { notAfter?: Date }): Promise<TlsMaterial>;
}

export async function createTestCa(name = "weft-test-ca"): Promise<TestCa> {
  const keys = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]) as CryptoKeyPair;
  const now = Date.now();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: `CN=${name}`,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 86400_000),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
    ],
  });
  let serial = 2;
  const rootsPem = caCert.toString("pem") + "\n";
  return {
    rootsPem,
    async issue(identity, opts = {}): Promise<TlsMaterial> {
      const leafKeys = await crypto.subtle.generateKey(alg, true, [
        "sign",
        "verify",
      ]) as CryptoKeyPair;
      const notAfter = opts.notAfter ?? new Date(now + 86400_000);
      const s = (serial++).toString(16).padStart(2, "0");
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: s,
        subject: "",
        issuer: caCert.subject,
        notBefore: new Date(now - 3600_000),
        notAfter,
        publicKey: leafKeys.publicKey,
        signingKey: keys.privateKey,
        signingAlgorithm: alg,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(
            x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
            true,
          ),
          new x509.ExtendedKeyUsageExtension([
            x509.ExtendedKeyUsage.serverAuth,
            x509.ExtendedKeyUsage.clientAuth,
          ]),
          new x509.SubjectAlternativeNameExtension([{ type: "url", value: identity }], true),
        ],
      });
      const pkcs8 = await crypto.subtle.exportKey("pkcs8", leafKeys.privateKey);
      return {
        certChainPem: leaf.toString("pem") + "\n",
        keyPem: pem("PRIVATE KEY", pkcs8),
        rootsPem,
        serial: s,
        notAfter,
      };
    },
  };
}

function uriSans(der: Uint8Array): string[] {
  const cert = new x509.X509Certificate(new Uint8Array(der));
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return ext ? ext.names.items.filter((n) => n.type === "url").map((n) => n.value) : [];
}

/** A minimal IdentityProvider over a TestCa, with rotation on demand. */
export class TestIdentityProvider implements IdentityProvider {
  private cache = new Map<string, Promise<TlsMaterial>>();
  private listeners = new Set<(identity: string, m: TlsMaterial) => void>();
  constructor(readonly ca: TestCa, readonly trustDomain = "cluster.local") {}

  material(identity: string): Promise<TlsMaterial> {
    let m = this.cache.get(identity);
    if (!m) this.cache.set(identity, m = this.ca.issue(identity));
    return m;
  }
  async rotate(identity: string): Promise<TlsMaterial> {
    const m = await this.ca.issue(identity);
    this.cache.set(identity, Promise.resolve(m));
    for (const fn of this.listeners) fn(identity, m);
    return m;
  }
  verifyClient(leafDer: Uint8Array): PeerVerdict {
    const id = uriSans(leafDer).find((u) => u.startsWith(`spiffe://${this.trustDomain}/`));
    if (!id) {
      return { ok: false, reason: "trust_domain_mismatch", message: "no SAN in trust domain" };
    }
    return { ok: true, identity: id };
  }
  verifyServer(leafDer: Uint8Array, expected: readonly string[]): PeerVerdict {
    const id = uriSans(leafDer).find((u) => expected.includes(u));
    if (!id) return { ok: false, reason: "identity_mismatch", message: "server SAN not expected" };
    return { ok: true, identity: id };
  }
  classifyTlsError(_err: unknown): TlsRejectReason {
    return "handshake_failed";
  }
  onRotate(fn: (identity: string, material: TlsMaterial) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
