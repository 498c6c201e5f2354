/**
 * What the CA needs from its own root certificate, read from DER without @peculiar/x509: the
 * subject (copied as the leaves' issuer), validity, basicConstraints, keyUsage, the key
 * algorithm and the subject key identifier. A node that signs its own leaves (files mode, a
 * persisted dev CA) then never loads x509 and its ~200 modules (~9 MB of idle RSS on Bun,
 * bench/idle_floor.ts). Malformed input throws a plain Error; callers map it to ca_cert_invalid.
 */
import { Buffer } from "node:buffer";
import { bytesEqual, children, readTlv, type Tlv } from "./_der.ts";

const SEQUENCE = 0x30;
const BOOLEAN = 0x01;
const BIT_STRING = 0x03;
const OCTET_STRING = 0x04;
const OID = 0x06;
const VERSION = 0xa0;
const EXTENSIONS = 0xa3;

const OID_EC_PUBLIC_KEY = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384 = [0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_RSA = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_BASIC_CONSTRAINTS = [0x55, 0x1d, 0x13];
const OID_KEY_USAGE = [0x55, 0x1d, 0x0f];
const OID_SKI = [0x55, 0x1d, 0x0e];
/** keyCertSign is bit 5 of KeyUsage (RFC 5280 §4.2.1.3), 0x04 in the first byte. */
const KEY_CERT_SIGN = 0x04;

export type CaKeyKind = "P-256" | "P-384" | "RSA" | "other";

export interface CaDer {
  readonly der: Uint8Array;
  /** The subject Name, header included: the issuer field of every leaf. */
  readonly subject: Uint8Array;
  /** SubjectPublicKeyInfo, header included. */
  readonly spki: Uint8Array;
  /** The subjectPublicKey bits (for a computed key identifier). */
  readonly publicKeyBits: Uint8Array;
  readonly serialHex: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** basicConstraints cA. */
  readonly isCa: boolean;
  /** undefined when the certificate has no keyUsage extension. */
  readonly keyCertSign: boolean | undefined;
  readonly keyKind: CaKeyKind;
  readonly subjectKeyId: Uint8Array | undefined;
}

/** The DER of the first `label` block of a PEM text; undefined when there is none. */
export function pemBlock(pem: string, label: string): Uint8Array<ArrayBuffer> | undefined {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`)
    .exec(pem);
  if (!m) return undefined;
  return new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ""), "base64"));
}

export function readCaDer(der: Uint8Array): CaDer {
  const cert = readTlv(der, 0, der.length);
  if (cert.tag !== SEQUENCE || cert.end !== der.length) throw new Error("DER: not a certificate");
  const tbs = children(der, cert)[0];
  if (tbs?.tag !== SEQUENCE) throw new Error("DER: no TBSCertificate");
  const f = children(der, tbs);
  const at = f[0]?.tag === VERSION ? 1 : 0;
  const [serial, , , validity, subject, spki] = f.slice(at, at + 6);
  if (!serial || !validity || !subject || !spki) throw new Error("DER: short TBSCertificate");
  const [from, to] = children(der, validity);
  if (!from || !to) throw new Error("DER: bad validity");
  const key = keyOf(der, spki);
  const ext = extensionsOf(der, f.find((t) => t.tag === EXTENSIONS));
  return {
    der,
    subject: der.subarray(subject.pos, subject.end),
    spki: der.subarray(spki.pos, spki.end),
    publicKeyBits: key.bits,
    serialHex: Buffer.from(der.subarray(serial.start, serial.end)).toString("hex"),
    notBefore: derTime(der, from),
    notAfter: derTime(der, to),
    isCa: ext.isCa,
    keyCertSign: ext.keyCertSign,
    keyKind: key.kind,
    subjectKeyId: ext.ski,
  };
}

function keyOf(der: Uint8Array, spki: Tlv): { kind: CaKeyKind; bits: Uint8Array } {
  const [alg, bits] = children(der, spki);
  if (alg?.tag !== SEQUENCE || bits?.tag !== BIT_STRING) throw new Error("DER: bad SPKI");
  const [oid, params] = children(der, alg);
  if (oid?.tag !== OID) throw new Error("DER: bad SPKI algorithm");
  let kind: CaKeyKind = "other";
  if (bytesEqual(der, oid, OID_RSA)) kind = "RSA";
  else if (bytesEqual(der, oid, OID_EC_PUBLIC_KEY) && params?.tag === OID) {
    if (bytesEqual(der, params, OID_P256)) kind = "P-256";
    else if (bytesEqual(der, params, OID_P384)) kind = "P-384";
  }
  return { kind, bits: der.subarray(bits.start + 1, bits.end) };
}

interface CaExtensions {
  isCa: boolean;
  keyCertSign: boolean | undefined;
  ski: Uint8Array | undefined;
}

function extensionsOf(der: Uint8Array, wrapper: Tlv | undefined): CaExtensions {
  const out: CaExtensions = { isCa: false, keyCertSign: undefined, ski: undefined };
  if (!wrapper) return out;
  const list = children(der, wrapper)[0];
  if (list?.tag !== SEQUENCE) throw new Error("DER: bad extensions");
  for (const e of children(der, list)) {
    const parts = children(der, e);
    const oid = parts[0];
    const value = parts[parts.length - 1];
    if (oid?.tag !== OID || value?.tag !== OCTET_STRING) throw new Error("DER: bad extension");
    const inner = readTlv(der, value.start, value.end);
    if (bytesEqual(der, oid, OID_BASIC_CONSTRAINTS)) {
      const first = children(der, inner)[0];
      out.isCa = first?.tag === BOOLEAN && der[first.start] !== 0;
    } else if (bytesEqual(der, oid, OID_KEY_USAGE)) {
      if (inner.tag !== BIT_STRING) throw new Error("DER: bad keyUsage");
      out.keyCertSign = inner.end - inner.start > 1 &&
        (der[inner.start + 1]! & KEY_CERT_SIGN) !== 0;
    } else if (bytesEqual(der, oid, OID_SKI)) {
      if (inner.tag !== OCTET_STRING) throw new Error("DER: bad subjectKeyIdentifier");
      out.ski = der.subarray(inner.start, inner.end);
    }
  }
  return out;
}

/** UTCTime (YYMMDDHHMMSSZ, RFC 5280: 50-99 → 19xx) or GeneralizedTime (YYYYMMDDHHMMSSZ). */
function derTime(der: Uint8Array, t: Tlv): Date {
  const s = new TextDecoder().decode(der.subarray(t.start, t.end));
  const m = t.tag === 0x17
    ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
    : t.tag === 0x18
    ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
    : null;
  if (!m) throw new Error(`DER: bad time ${JSON.stringify(s)}`);
  let year = Number(m[1]);
  if (t.tag === 0x17) year += year >= 50 ? 1900 : 2000;
  const [mo, d, h, mi, se] = m.slice(2).map(Number) as [number, number, number, number, number];
  return new Date(Date.UTC(year, mo - 1, d, h, mi, se));
}
