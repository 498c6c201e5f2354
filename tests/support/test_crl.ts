/**
 * Certificate revocation lists for tests, signed with @peculiar/x509 (X509CrlGenerator) by a
 * test CA: v2 with a cRLNumber (the profile ztunnel's webpki accepts), or deliberately off-profile
 * (`omitCrlNumber`, `delta`). Also a small root → intermediate → leaf PKI for chain cases.
 */
import { Buffer } from "node:buffer";
import { loadX509 } from "../../src/tls/mod.ts";
import type { CertificateAuthority } from "../../src/tls/mod.ts";

type X509 = Awaited<ReturnType<typeof loadX509>>;
const EC = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export interface CrlSigner {
  /** The issuer Name written into the CRL (the certificates' issuer, byte for byte). */
  readonly name: Uint8Array;
  readonly key: CryptoKey;
}

/** A mesh CA (tests/support/test_ca.ts) as CRL signer; `name` overrides the issuer (forgeries). */
export async function caSigner(ca: CertificateAuthority, name?: Uint8Array): Promise<CrlSigner> {
  const pem = await ca.exportKeyPem();
  const b64 = pem.replace(/-----[A-Z ]+-----|\s+/g, "");
  const key = await crypto.subtle.importKey(
    "pkcs8",
    new Uint8Array(Buffer.from(b64, "base64")),
    EC,
    false,
    ["sign"],
  );
  return { name: name ?? ca.root.subject, key };
}

export interface CrlOptions {
  readonly crlNumber?: number;
  readonly nextUpdate?: Date;
  readonly omitCrlNumber?: boolean;
  readonly delta?: boolean;
  /** An issuingDistributionPoint (idp() below), written critical as RFC 5280 asks. */
  readonly idp?: Uint8Array<ArrayBuffer>;
}

function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const len = parts.reduce((n, p) => n + p.length, 0);
  if (len > 127) throw new Error("test DER: short lengths only");
  const out = new Uint8Array(2 + len);
  out[0] = tag;
  out[1] = len;
  let o = 2;
  for (const p of parts) out.set(p, o), o += p.length;
  return out;
}

/** issuingDistributionPoint DER: a fullName URI and the scope flags. */
export function idp(
  uri: string,
  flags: { onlyUserCerts?: boolean; onlyCaCerts?: boolean; indirect?: boolean } = {},
): Uint8Array<ArrayBuffer> {
  const TRUE = new Uint8Array([0xff]);
  const name = tlv(0xa0, tlv(0xa0, tlv(0x86, new TextEncoder().encode(uri))));
  return tlv(
    0x30,
    name,
    ...(flags.onlyUserCerts ? [tlv(0x81, TRUE)] : []),
    ...(flags.onlyCaCerts ? [tlv(0x82, TRUE)] : []),
    ...(flags.indirect ? [tlv(0x84, TRUE)] : []),
  );
}

function derInteger(n: number): Uint8Array<ArrayBuffer> {
  const bytes: number[] = [];
  do {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  } while (n > 0);
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return new Uint8Array([0x02, bytes.length, ...bytes]);
}

/** A DER CRL by `signer` revoking `serialsHex` (hex of each certificate's serial content). */
export async function makeCrl(
  signer: CrlSigner,
  serialsHex: readonly string[],
  opts: CrlOptions = {},
): Promise<Uint8Array> {
  const x509 = await loadX509();
  const extensions = [];
  if (!opts.omitCrlNumber) {
    extensions.push(new x509.Extension("2.5.29.20", false, derInteger(opts.crlNumber ?? 1)));
  } else {
    // Some extension (an unknown, non-critical one: allowed), just not the cRLNumber.
    extensions.push(new x509.Extension("1.3.6.1.4.1.99999.1", false, new Uint8Array([5, 0])));
  }
  if (opts.delta) extensions.push(new x509.Extension("2.5.29.27", true, derInteger(1)));
  if (opts.idp) extensions.push(new x509.Extension("2.5.29.28", true, opts.idp));
  const crl = await x509.X509CrlGenerator.create({
    issuer: new x509.Name(new Uint8Array(signer.name)),
    thisUpdate: new Date(Date.now() - 60_000),
    nextUpdate: opts.nextUpdate ?? new Date(Date.now() + 3600_000),
    extensions,
    entries: serialsHex.map((serialNumber) => ({ serialNumber })),
    signingKey: signer.key,
    signingAlgorithm: EC,
  });
  return new Uint8Array(crl.rawData);
}

export function crlPem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64").replace(/(.{64})/g, "$1\n").trimEnd();
  return `-----BEGIN X509 CRL-----\n${b64}\n-----END X509 CRL-----\n`;
}

/** Serial content hex of a PEM or DER certificate (what a CRL entry must carry). */
export async function serialOf(cert: string | Uint8Array): Promise<string> {
  const x509 = await loadX509();
  return new x509.X509Certificate(typeof cert === "string" ? cert : new Uint8Array(cert))
    .serialNumber.toLowerCase();
}

export interface ChainPki {
  readonly rootPem: string;
  readonly root: CrlSigner;
  readonly intermediate: CrlSigner;
  readonly intermediateDer: Uint8Array;
  readonly intermediateSerial: string;
  /** A leaf issued by the intermediate: [leaf, intermediate, root] DER (as node:tls reports). */
  leaf(uri: string, serialHex: string): Promise<{ chain: Uint8Array[]; serial: string }>;
}

/** root → intermediate → leaves, all P-256, CA key usages with cRLSign unless `noCrlSign`. */
export async function chainPki(opts: { noCrlSign?: boolean } = {}): Promise<ChainPki> {
  const x509 = await loadX509();
  const now = Date.now();
  const validity = { notBefore: new Date(now - 60_000), notAfter: new Date(now + 3600_000) };
  const usage = x509.KeyUsageFlags.keyCertSign |
    (opts.noCrlSign ? 0 : x509.KeyUsageFlags.cRLSign);
  const rootKeys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "O=crl test, CN=chain root",
    keys: rootKeys,
    signingAlgorithm: EC,
    ...validity,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(usage, true),
    ],
  });
  const midKeys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const mid = await x509.X509CertificateGenerator.create({
    serialNumber: "1234",
    subject: "O=crl test, CN=chain intermediate",
    issuer: root.subjectName,
    publicKey: midKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: EC,
    ...validity,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(usage, true),
    ],
  });
  const rootDer = new Uint8Array(root.rawData);
  const midDer = new Uint8Array(mid.rawData);
  return {
    rootPem: root.toString("pem") + "\n",
    root: { name: new Uint8Array(root.subjectName.toArrayBuffer()), key: rootKeys.privateKey },
    intermediate: {
      name: new Uint8Array(mid.subjectName.toArrayBuffer()),
      key: midKeys.privateKey,
    },
    intermediateDer: midDer,
    intermediateSerial: mid.serialNumber.toLowerCase(),
    async leaf(uri, serialHex) {
      const keys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: serialHex,
        subject: "",
        issuer: mid.subjectName,
        publicKey: keys.publicKey,
        signingKey: midKeys.privateKey,
        signingAlgorithm: EC,
        ...validity,
        extensions: [
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.SubjectAlternativeNameExtension([{ type: "url", value: uri }], true),
        ],
      });
      return {
        chain: [new Uint8Array(leaf.rawData), midDer, rootDer],
        serial: leaf.serialNumber.toLowerCase(),
      };
    },
  };
}

export type { X509 };
