/**
 * The node agent's side of Istio's CreateCertificate: a fresh P-256 key and a CSR with an empty
 * subject and the SPIFFE id as its only URI SAN (ztunnel's shape), and turning the returned chain
 * (leaf first, root last) into an IssuedLeaf after checking it names the requested identity.
 * node:crypto and DER written and read here (_leaf_der.ts, _der.ts, _ca_der.ts), not WebCrypto
 * and @peculiar/x509: a node whose certificates come from the control plane's CA then loads
 * neither (x509 and its ~200 modules, and the native code WebCrypto's first use maps: bench:idle's
 * CSR row).
 */
import { Buffer } from "node:buffer";
import { createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import { WeftError } from "../core/mod.ts";
import type { IssuedLeaf } from "./ca.ts";
import { bytesEqual, children, readTlv, sansFromCertDer } from "./_der.ts";
import { pemBlock, readCaDer } from "./_ca_der.ts";
import { CRITICAL, octets, oid, OID_ECDSA_SHA256, OID_SAN, seq, tlv } from "./_leaf_der.ts";
import { derToPem, withNewline } from "./_pem.ts";
import { parseSpiffeId } from "./spiffe_id.ts";

export interface CsrAndKey {
  readonly csrPem: string;
  readonly keyPem: string;
}

/** PKCS#9 extensionRequest (1.2.840.113549.1.9.14), RFC 2986 §4.1 / RFC 2985 §5.4.2. */
const OID_EXTENSION_REQUEST = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e];

/** The PKCS#10 CertificationRequest DER (RFC 2986) for `identity`, signed with `key`: version 0,
 * an empty subject, the key's SubjectPublicKeyInfo, one extensionRequest attribute holding the
 * SPIFFE URI as a critical subjectAltName, ecdsa-with-SHA256. */
export function csrDer(
  identity: string,
  spki: Uint8Array,
  signEcdsaSha256: (data: Uint8Array) => Uint8Array,
): Uint8Array {
  const san = seq(tlv(0x86, new TextEncoder().encode(identity))); // GeneralNames: [6] URI
  const extensions = seq(seq(oid(OID_SAN), CRITICAL, octets(san)));
  const info = seq(
    [0x02, 0x01, 0x00], // version v1 (0)
    seq(), // empty subject (Istio, ztunnel)
    spki,
    tlv(0xa0, seq(oid(OID_EXTENSION_REQUEST), tlv(0x31, extensions))), // [0] attributes
  );
  const alg = seq(oid(OID_ECDSA_SHA256));
  return seq(info, alg, tlv(0x03, [0x00], signEcdsaSha256(info)));
}

export function createCsr(identity: string): Promise<CsrAndKey> {
  try {
    parseSpiffeId(identity);
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const spki = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
    const der = csrDer(
      identity,
      spki,
      (data) => new Uint8Array(sign("sha256", data, { key: privateKey, dsaEncoding: "der" })),
    );
    return Promise.resolve({
      csrPem: withNewline(derToPem(der, "CERTIFICATE REQUEST")),
      keyPem: withNewline(privateKey.export({ type: "pkcs8", format: "pem" }) as string),
    });
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Signature algorithms a CA may sign the chain with: OID → node:crypto digest. */
const SIGNATURE_HASHES: readonly [readonly number[], string][] = [
  [OID_ECDSA_SHA256, "sha256"],
  [[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03], "sha384"],
  [[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04], "sha512"],
  [[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b], "sha256"],
  [[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c], "sha384"],
  [[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d], "sha512"],
];

/** Whether certificate `der`'s signature verifies with the issuer's SubjectPublicKeyInfo. */
function signedBy(der: Uint8Array, issuerSpki: Uint8Array): boolean {
  const cert = readTlv(der, 0, der.length);
  const [tbs, alg, sig] = children(der, cert);
  if (tbs?.tag !== 0x30 || alg?.tag !== 0x30 || sig?.tag !== 0x03) {
    throw new Error("DER: not a certificate");
  }
  const algOid = children(der, alg)[0];
  const hash = algOid && SIGNATURE_HASHES.find(([o]) => bytesEqual(der, algOid, o))?.[1];
  if (!hash) throw new Error("unsupported signature algorithm");
  const key = createPublicKey({ key: Buffer.from(issuerSpki), format: "der", type: "spki" });
  return verify(
    hash,
    der.subarray(tbs.pos, tbs.end),
    { key, dsaEncoding: "der" },
    der.subarray(sig.start + 1, sig.end), // after the unused-bits byte
  );
}

function bad(reason: string, cause?: unknown): WeftError {
  return new WeftError(
    "ca_bad_response",
    `Cannot use issued certificate: ${reason}`,
    cause === undefined ? undefined : { cause },
  );
}

/** Check a CreateCertificate answer and make it an IssuedLeaf: the leaf names `identity` (its
 * only URI SAN), carries the public half of `keyPem`, and each certificate is signed by the next
 * one (the last is the root). */
export function leafFromChain(
  identity: string,
  keyPem: string,
  chain: readonly string[],
  issuedAt: Date,
): Promise<IssuedLeaf> {
  if (chain.length < 2) {
    return Promise.reject(bad("the chain must hold the leaf and the root"));
  }
  try {
    const ders = chain.map((pem, i) => {
      const der = pemBlock(pem, "CERTIFICATE");
      if (!der) throw bad(`chain entry ${i} is not a PEM certificate`);
      return der;
    });
    const certs = ders.map(readCaDer);
    const leaf = certs[0]!;
    const uris = sansFromCertDer(leaf.der).uris;
    if (uris.length !== 1 || uris[0] !== identity) {
      throw bad(`it names ${JSON.stringify(uris)}, not ${identity}`);
    }
    const ours = new Uint8Array(createPublicKey(keyPem).export({ type: "spki", format: "der" }));
    if (Buffer.compare(Buffer.from(ours), Buffer.from(leaf.spki)) !== 0) {
      throw bad("it is not for the key of the request");
    }
    for (let i = 0; i + 1 < certs.length; i++) {
      if (!signedBy(certs[i]!.der, certs[i + 1]!.spki)) {
        throw bad(
          i === 0
            ? "it does not chain to the returned root"
            : `chain entry ${i} is not signed by ${i + 1}`,
        );
      }
    }
    const pems = chain.map(withNewline);
    return Promise.resolve({
      identity,
      certPem: pems[0]!,
      keyPem,
      chainPem: pems.slice(0, -1).join(""),
      rootsPem: pems[pems.length - 1]!,
      serial: leaf.serialHex,
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
      issuedAt,
    });
  } catch (err) {
    return Promise.reject(err instanceof WeftError ? err : bad(String(err), err));
  }
}
