/**
 * A workload leaf written as DER directly (RFC 5280), signed with WebCrypto: Istio's shape — v3,
 * empty subject, basicConstraints cA=false (critical), keyUsage digitalSignature (critical), EKU
 * serverAuth + clientAuth, the SPIFFE URI as the only SAN (critical: the subject is empty,
 * §4.2.1.6), authorityKeyIdentifier. The same fields @peculiar/x509 writes for CertificateAuthority
 * .sign, without loading it on a node's start-up path (see _ca_der.ts).
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { CaDer } from "./_ca_der.ts";

export const OID_ECDSA_SHA256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_RSA_SHA256 = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_BASIC_CONSTRAINTS = [0x55, 0x1d, 0x13];
const OID_KEY_USAGE = [0x55, 0x1d, 0x0f];
const OID_EKU = [0x55, 0x1d, 0x25];
export const OID_SAN = [0x55, 0x1d, 0x11];
const OID_AKI = [0x55, 0x1d, 0x23];
const OID_SERVER_AUTH = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
const OID_CLIENT_AUTH = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

export type Bytes = Uint8Array | readonly number[];

export function tlv(tag: number, ...parts: Bytes[]): Uint8Array<ArrayBuffer> {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const head = len < 0x80
    ? [tag, len]
    : len < 0x100
    ? [tag, 0x81, len]
    : len < 0x10000
    ? [tag, 0x82, len >> 8, len & 0xff]
    : [tag, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff];
  const out = new Uint8Array(head.length + len);
  out.set(head, 0);
  let at = head.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export const seq = (...parts: Bytes[]): Uint8Array<ArrayBuffer> => tlv(0x30, ...parts);
export const oid = (o: readonly number[]): Uint8Array => tlv(0x06, o);
export const octets = (...parts: Bytes[]): Uint8Array => tlv(0x04, ...parts);
export const CRITICAL = [0x01, 0x01, 0xff];

/** A DER INTEGER from big-endian magnitude bytes: minimal, positive. */
function uint(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return (v[0]! & 0x80) ? tlv(0x02, [0], v) : tlv(0x02, v);
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
function time(d: Date): Uint8Array {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, "") + "Z";
  const year = d.getUTCFullYear();
  return year < 2050
    ? tlv(0x17, new TextEncoder().encode(digits.slice(2)))
    : tlv(0x18, new TextEncoder().encode(digits));
}

function extension(id: readonly number[], critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? seq(oid(id), CRITICAL, octets(value)) : seq(oid(id), octets(value));
}

export interface LeafFields {
  readonly serialHex: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The leaf's SubjectPublicKeyInfo DER. */
  readonly spki: Uint8Array;
  /** URI SANs (the SPIFFE id). */
  readonly uris: readonly string[];
}

/** The AKI keyIdentifier: the CA's SKI, else SHA-1 of its public key bits (RFC 5280 method 1). */
export function authorityKeyIdOf(ca: CaDer): Uint8Array {
  if (ca.subjectKeyId) return ca.subjectKeyId;
  return new Uint8Array(createHash("sha1").update(ca.publicKeyBits).digest());
}

/** Sign a leaf with the CA key (`sign`: SHA-256, the signature as X.509 carries it, _ca_key.ts);
 * returns the certificate DER. */
export function signLeafDer(
  ca: CaDer,
  akid: Uint8Array,
  sign: (tbs: Uint8Array) => Uint8Array,
  alg: Algorithm | EcdsaParams,
  f: LeafFields,
): Uint8Array {
  const ecdsa = alg.name === "ECDSA";
  const sigAlg = ecdsa ? seq(oid(OID_ECDSA_SHA256)) : seq(oid(OID_RSA_SHA256), [0x05, 0x00]);
  const san = seq(...f.uris.map((u) => tlv(0x86, new TextEncoder().encode(u))));
  const tbs = seq(
    [0xa0, 0x03, 0x02, 0x01, 0x02], // [0] version v3
    uint(new Uint8Array(Buffer.from(f.serialHex, "hex"))),
    sigAlg,
    ca.subject,
    seq(time(f.notBefore), time(f.notAfter)),
    seq(), // empty subject (Istio)
    f.spki,
    tlv(
      0xa3,
      seq(
        extension(OID_BASIC_CONSTRAINTS, true, seq()),
        extension(OID_KEY_USAGE, true, tlv(0x03, [0x07, 0x80])), // digitalSignature
        extension(OID_EKU, false, seq(oid(OID_SERVER_AUTH), oid(OID_CLIENT_AUTH))),
        extension(OID_SAN, true, san),
        extension(OID_AKI, false, seq(tlv(0x80, akid))),
      ),
    ),
  );
  return seq(tbs, sigAlg, tlv(0x03, [0x00], sign(tbs)));
}
