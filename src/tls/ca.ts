/**
 * The mesh CA: a root (ECDSA P-256 when weft makes it) that signs workload leaves. Leaves follow
 * Istio's shape: empty subject, the SPIFFE id as the only (critical) URI SAN, EKU serverAuth +
 * clientAuth, digitalSignature, a random 128-bit serial, notBefore back-dated one minute for
 * clock skew. Persistence (auto mode, files mode) lives in ca_store.ts.
 */
import { Buffer } from "node:buffer";
import { createPrivateKey, type KeyObject } from "node:crypto";
import { WeftError } from "../core/mod.ts";
import type { x509 } from "./_x509.ts";
import { loadX509 } from "./x509_loader.ts";
import { derToPem, EC_P256, randomSerialHex, withNewline } from "./_pem.ts";
import { type CaDer, readCaDer } from "./_ca_der.ts";
import { checkCaShape, parseCaCert, signingAlgorithmOf } from "./_ca_checks.ts";
import { importCaKeyObject, keyMatches, leafKeyPair, signSha256 } from "./_ca_key.ts";
import { authorityKeyIdOf, signLeafDer } from "./_leaf_der.ts";
import { parseSpiffeId } from "./spiffe_id.ts";

// A node loads its CA and issues its leaves from DER (_ca_der.ts, _leaf_der.ts); @peculiar/x509
// loads only to make a new root (dev CA), sign a CSR or an arbitrary spec (CA service, tests).

export const CLOCK_SKEW_MS = 60_000;
export const DEFAULT_LEAF_TTL_MS = 24 * 3600_000;
const DEFAULT_ROOT_TTL_MS = 10 * 365 * 24 * 3600_000;
const SAN_OID = "2.5.29.17";

/** A certificate and its key, as issued to one workload identity. */
export interface IssuedLeaf {
  readonly identity: string;
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
  /** Leaf then intermediates (none: weft's CA signs leaves directly with the root). */
  readonly chainPem: string;
  readonly rootsPem: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** When it was made (notBefore is back-dated; rotation is timed from this). */
  readonly issuedAt: Date;
}

/** Raw leaf parameters: for CSR signing and test kits that need off-shape certificates. */
export interface LeafSpec {
  readonly publicKey: CryptoKey | x509.PublicKey;
  readonly sans: readonly x509.JsonGeneralName[];
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface IssueOptions {
  readonly ttlMs?: number;
  /** Wall clock in ms since the epoch (tests). */
  readonly nowMs?: number;
}

/** What the identity manager needs from a CA: this local one, or later a remote CA client
 * (istiod CreateCertificate) with the same contract. */
export interface LeafIssuer {
  readonly rootPem: string;
  issueLeaf(identity: string, opts?: IssueOptions): Promise<IssuedLeaf>;
}

export class CertificateAuthority implements LeafIssuer {
  private akid: Uint8Array | undefined;
  private parsed: Promise<x509.X509Certificate> | undefined;
  readonly rootPem: string;

  private constructor(
    /** The root as read from its DER. */
    readonly root: CaDer,
    /** Signs leaves (node:crypto: _ca_key.ts). */
    private readonly key: KeyObject,
    private readonly signingAlgorithm: Algorithm | EcdsaParams,
    /** The same key for @peculiar/x509 (sign(), signCsr()): made on first use. */
    private webKey?: Promise<CryptoKey>,
  ) {
    this.rootPem = withNewline(derToPem(root.der, "CERTIFICATE"));
  }

  private cryptoKey(): Promise<CryptoKey> {
    this.webKey ??= crypto.subtle.importKey(
      "pkcs8",
      new Uint8Array(this.key.export({ type: "pkcs8", format: "der" })),
      this.signingAlgorithm,
      true,
      ["sign"],
    );
    return this.webKey;
  }

  /** The root's serial number in hex. */
  get serialNumber(): string {
    return this.root.serialHex;
  }

  /** The root as an @peculiar/x509 certificate (loads x509). */
  x509Cert(): Promise<x509.X509Certificate> {
    this.parsed ??= loadX509().then((x) => new x.X509Certificate(new Uint8Array(this.root.der)));
    return this.parsed;
  }

  private authorityKeyId(): Uint8Array {
    this.akid ??= authorityKeyIdOf(this.root);
    return this.akid;
  }

  /** A fresh self-signed ECDSA P-256 root (dev CA, test CAs). */
  static async generate(
    opts: { name?: string; ttlMs?: number; nowMs?: number; notBefore?: Date } = {},
  ): Promise<CertificateAuthority> {
    const x509 = await loadX509();
    const now = opts.nowMs ?? Date.now();
    const keys = await crypto.subtle.generateKey(EC_P256, true, ["sign", "verify"]);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerialHex(),
      name: [{ O: ["weft"] }, { CN: [opts.name ?? "weft dev root"] }],
      notBefore: opts.notBefore ?? new Date(now - CLOCK_SKEW_MS),
      notAfter: new Date(now + (opts.ttlMs ?? DEFAULT_ROOT_TTL_MS)),
      keys,
      signingAlgorithm: EC_P256,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
    return new CertificateAuthority(
      readCaDer(new Uint8Array(cert.rawData)),
      createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" }),
      EC_P256,
      Promise.resolve(keys.privateKey),
    );
  }

  /**
   * Load a root from PEM text and check it can act as the mesh CA: a CA certificate, valid now,
   * whose key is the given PKCS#8 key (ECDSA P-256/P-384 or RSA).
   */
  static fromPem(
    certPem: string,
    keyPem: string,
    opts: { nowMs?: number; source?: string } = {},
  ): Promise<CertificateAuthority> {
    return settled(() => CertificateAuthority.load(certPem, keyPem, opts));
  }

  private static load(
    certPem: string,
    keyPem: string,
    opts: { nowMs?: number; source?: string },
  ): CertificateAuthority {
    const src = opts.source ?? "CA";
    const cert = parseCaCert(certPem, src);
    checkCaShape(cert, src, opts.nowMs ?? Date.now());
    const alg = signingAlgorithmOf(cert, src);
    const key = importCaKeyObject(keyPem, alg, src);
    if (!keyMatches(key, cert.spki)) {
      throw new WeftError(
        "ca_key_mismatch",
        `Cannot load ${src}: the private key does not belong to the certificate`,
        { hint: "pass the key the root certificate was made with" },
      );
    }
    return new CertificateAuthority(cert, key, alg);
  }

  /** The CA key as PKCS#8 PEM: only for writing the auto-mode state and test kits. */
  exportKeyPem(): Promise<string> {
    return Promise.resolve(
      withNewline(this.key.export({ type: "pkcs8", format: "pem" }) as string),
    );
  }

  /** New key pair plus a mesh-shaped leaf for `identity` (a SPIFFE id, checked). */
  issueLeaf(identity: string, opts: IssueOptions = {}): Promise<IssuedLeaf> {
    return settled(() => this.issue(identity, opts));
  }

  private issue(identity: string, opts: IssueOptions): IssuedLeaf {
    parseSpiffeId(identity);
    const ttlMs = checkTtl(opts.ttlMs ?? DEFAULT_LEAF_TTL_MS);
    const now = opts.nowMs ?? Date.now();
    const leafKey = leafKeyPair();
    // X.509 times have 1 s resolution: the dates returned are the ones in the certificate.
    const notBefore = new Date(Math.floor((now - CLOCK_SKEW_MS) / 1000) * 1000);
    const notAfter = notAfterFor(now, ttlMs);
    const serial = randomSerialHex();
    const der = signLeafDer(
      this.root,
      this.authorityKeyId(),
      (tbs) => signSha256(this.key, tbs),
      this.signingAlgorithm,
      { serialHex: serial, notBefore, notAfter, spki: leafKey.spki, uris: [identity] },
    );
    const certPem = withNewline(derToPem(der, "CERTIFICATE"));
    return {
      identity,
      certPem,
      keyPem: withNewline(leafKey.keyPem),
      chainPem: certPem,
      rootsPem: this.rootPem,
      serial,
      notBefore,
      notAfter,
      issuedAt: new Date(now),
    };
  }

  /**
   * Istio CreateCertificate semantics for a future CA service: the CSR (empty subject, one URI
   * SAN) must be self-consistent and ask for exactly the caller's authenticated `identity`.
   * Returns the chain leaf first, root last.
   */
  async signCsr(
    csrPem: string,
    opts: { identity: string; ttlMs?: number; nowMs?: number },
  ): Promise<string[]> {
    parseSpiffeId(opts.identity);
    const x509 = await loadX509();
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch (cause) {
      throw new WeftError("csr_invalid", "Cannot sign CSR: it is not a PEM PKCS#10 request", {
        cause,
      });
    }
    if (!(await csr.verify())) {
      throw new WeftError("csr_invalid", "Cannot sign CSR: its self-signature does not verify");
    }
    const ext = csr.getExtension(SAN_OID);
    const names = ext ? new x509.SubjectAlternativeNameExtension(ext.rawData).names.items : [];
    const uris = names.filter((n) => n.type === "url").map((n) => n.value);
    if (uris.length !== 1 || uris[0] !== opts.identity) {
      throw new WeftError(
        "csr_identity_mismatch",
        `Cannot sign CSR: it requests URI SANs ${
          JSON.stringify(uris)
        }, the caller is ${opts.identity}`,
        { hint: "the CSR must carry exactly one URI SAN equal to the authenticated identity" },
      );
    }
    const now = opts.nowMs ?? Date.now();
    const cert = await this.sign({
      publicKey: csr.publicKey,
      sans: [{ type: "url", value: opts.identity }],
      notBefore: new Date(now - CLOCK_SKEW_MS),
      notAfter: notAfterFor(now, checkTtl(opts.ttlMs ?? DEFAULT_LEAF_TTL_MS)),
    });
    return [withNewline(cert.toString("pem")), this.rootPem];
  }

  /** Sign an arbitrary end-entity certificate. No identity checks: callers own the shape. */
  async sign(spec: LeafSpec): Promise<x509.X509Certificate> {
    const x509 = await loadX509();
    const root = await this.x509Cert();
    const akid = Buffer.from(this.authorityKeyId()).toString("hex");
    return await x509.X509CertificateGenerator.create({
      serialNumber: randomSerialHex(),
      subject: "",
      issuer: root.subjectName,
      notBefore: spec.notBefore,
      notAfter: spec.notAfter,
      publicKey: spec.publicKey,
      signingKey: await this.cryptoKey(),
      signingAlgorithm: this.signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([
          x509.ExtendedKeyUsage.serverAuth,
          x509.ExtendedKeyUsage.clientAuth,
        ]),
        // Critical because the subject is empty (RFC 5280 §4.2.1.6).
        new x509.SubjectAlternativeNameExtension([...spec.sans], true),
        new x509.AuthorityKeyIdentifierExtension(akid),
      ],
    });
  }
}

/** X.509 times have 1 s resolution: round up so the lifetime is never shorter than asked. */
function notAfterFor(nowMs: number, ttlMs: number): Date {
  return new Date(Math.ceil((nowMs + ttlMs) / 1000) * 1000);
}

function checkTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs < 1000) {
    throw new WeftError("ttl_invalid", `Cannot issue certificate: ttl ${ttlMs} ms is below 1 s`);
  }
  return ttlMs;
}

/** `f`'s result, or its throw as a rejection (the async contract of the public methods). */
function settled<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (e) {
    return Promise.reject(e);
  }
}
