/**
 * Test CA kit for integration tests: a mesh CA (weft's own CertificateAuthority), good workload
 * leaves, and the bad-certificate matrix, written as PEM files into a temp directory so real
 * processes (weft, openssl, curl) can load them.
 *
 *   const pki = await createTestPki();            // trust domain cluster.local
 *   const web = await pki.good("spiffe://cluster.local/ns/default/sa/web");
 *   const bad = pki.bad.expired;                  // { certPem, keyPem, certPath, keyPath }
 *   ... await pki.dispose();
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateAuthority, type LeafSpec } from "../../src/tls/mod.ts";

export interface PemFiles {
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
  readonly certPath: string;
  readonly keyPath: string;
}

/** Each case is refused by a weft peer; the comment says by which check. */
export type BadCertCase =
  | "other_ca" // chain: issued by a CA outside the trust bundle
  | "other_trust_domain" // SAN: spiffe://other.local/...
  | "expired" // chain: notAfter an hour ago
  | "not_yet_valid" // chain: notBefore in an hour
  | "non_spiffe_uri" // SAN: https://... URI
  | "two_uri_sans" // SAN: two SPIFFE ids
  | "dns_only"; // SAN: DNS name, no URI

export const BAD_CERT_CASES: readonly BadCertCase[] = [
  "other_ca",
  "other_trust_domain",
  "expired",
  "not_yet_valid",
  "non_spiffe_uri",
  "two_uri_sans",
  "dns_only",
];

export interface TestPki {
  readonly dir: string;
  readonly trustDomain: string;
  readonly ca: CertificateAuthority;
  readonly rootsPem: string;
  readonly rootsPath: string;
  readonly caKeyPath: string;
  /** Identity the bad certificates would otherwise claim. */
  readonly badIdentity: string;
  readonly bad: Readonly<Record<BadCertCase, PemFiles>>;
  /** A mesh-shaped leaf for `identity` (TTL default 1 h), written as files. */
  good(identity: string, ttlMs?: number): Promise<PemFiles>;
  dispose(): Promise<void>;
}

const HOUR = 3600_000;

export async function createTestPki(
  opts: { trustDomain?: string; dir?: string } = {},
): Promise<TestPki> {
  const trustDomain = opts.trustDomain ?? "cluster.local";
  const dir = opts.dir ?? await mkdtemp(join(tmpdir(), "weft-pki-"));
  const ca = await CertificateAuthority.generate({ name: "weft test root" });
  const other = await CertificateAuthority.generate({ name: "weft other root" });
  const rootsPath = join(dir, "roots.pem");
  const caKeyPath = join(dir, "ca-key.pem");
  await writeFile(rootsPath, ca.rootPem);
  await writeFile(caKeyPath, await ca.exportKeyPem(), { mode: 0o600 });
  const badIdentity = `spiffe://${trustDomain}/ns/default/sa/intruder`;
  const uri = (value: string) => ({ type: "url" as const, value });
  const now = Date.now();
  const valid = { notBefore: new Date(now - HOUR), notAfter: new Date(now + HOUR) };
  const specs: Record<BadCertCase, [CertificateAuthority, Omit<LeafSpec, "publicKey">]> = {
    other_ca: [other, { sans: [uri(badIdentity)], ...valid }],
    other_trust_domain: [ca, {
      sans: [uri("spiffe://other.local/ns/default/sa/intruder")],
      ...valid,
    }],
    expired: [ca, {
      sans: [uri(badIdentity)],
      notBefore: new Date(now - 10 * HOUR),
      notAfter: new Date(now - HOUR),
    }],
    not_yet_valid: [ca, {
      sans: [uri(badIdentity)],
      notBefore: new Date(now + HOUR),
      notAfter: new Date(now + 10 * HOUR),
    }],
    non_spiffe_uri: [ca, { sans: [uri("https://intruder.example/ns/default/sa/x")], ...valid }],
    two_uri_sans: [ca, {
      sans: [uri(badIdentity), uri(`spiffe://${trustDomain}/ns/default/sa/second`)],
      ...valid,
    }],
    dns_only: [ca, { sans: [{ type: "dns", value: "intruder.default.svc" }], ...valid }],
  };
  const bad = {} as Record<BadCertCase, PemFiles>;
  for (const c of BAD_CERT_CASES) {
    const [signer, spec] = specs[c];
    bad[c] = await signAndWrite(signer, spec, dir, c);
  }
  let n = 0;
  return {
    dir,
    trustDomain,
    ca,
    rootsPem: ca.rootPem,
    rootsPath,
    caKeyPath,
    badIdentity,
    bad,
    async good(identity: string, ttlMs = HOUR): Promise<PemFiles> {
      const leaf = await ca.issueLeaf(identity, { ttlMs });
      const name = `good-${n++}`;
      return await write(dir, name, leaf.certPem, leaf.keyPem);
    },
    async dispose(): Promise<void> {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function signAndWrite(
  ca: CertificateAuthority,
  spec: Omit<LeafSpec, "publicKey">,
  dir: string,
  name: string,
): Promise<PemFiles> {
  const alg = { name: "ECDSA", namedCurve: "P-256" };
  const keys = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const cert = await ca.sign({ ...spec, publicKey: keys.publicKey });
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const b64 = btoa(String.fromCharCode(...pkcs8)).replace(/(.{64})/g, "$1\n").trimEnd();
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
  return await write(dir, name, cert.toString("pem") + "\n", keyPem);
}

async function write(
  dir: string,
  name: string,
  certPem: string,
  keyPem: string,
): Promise<PemFiles> {
  const certPath = join(dir, `${name}.crt.pem`);
  const keyPath = join(dir, `${name}.key.pem`);
  await writeFile(certPath, certPem);
  await writeFile(keyPath, keyPem, { mode: 0o600 });
  return { certPem, keyPem, certPath, keyPath };
}
