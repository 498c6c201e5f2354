/**
 * Just enough DER to read the subjectAltName of a certificate on the handshake path. A full
 * @peculiar/x509 parse costs ~1 ms per certificate (measured in mtls_bench.ts), which would be
 * paid twice per HBONE handshake; walking to the one extension costs microseconds. Every read is
 * bounds-checked; malformed input throws a plain Error the caller maps to bad_san.
 */

export interface Tlv {
  readonly tag: number;
  /** Start of the header (tag byte). */
  readonly pos: number;
  /** Start of the value. */
  readonly start: number;
  /** End of the value (exclusive). */
  readonly end: number;
}

export function readTlv(b: Uint8Array, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new Error("DER: truncated header");
  const tag = b[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new Error("DER: multi-byte tags unsupported");
  let len = b[pos + 1]!;
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new Error("DER: bad length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i]!;
    start += n;
  }
  const end = start + len;
  if (end > limit) throw new Error("DER: value overruns its container");
  return { tag, pos, start, end };
}

export function children(b: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.start; p < parent.end;) {
    const t = readTlv(b, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

const SEQUENCE = 0x30;
const OID = 0x06;
const OCTET_STRING = 0x04;
const EXTENSIONS = 0xa3; // [3] EXPLICIT in TBSCertificate
const SAN_OID = [0x55, 0x1d, 0x11]; // 2.5.29.17
const GN_DNS = 0x82; // [2] IMPLICIT IA5String
const GN_URI = 0x86; // [6] IMPLICIT IA5String

export interface DerSans {
  readonly uris: string[];
  readonly dns: string[];
}

/** URI and DNS names of the certificate's subjectAltName (empty when it has none). */
export function sansFromCertDer(der: Uint8Array): DerSans {
  const cert = readTlv(der, 0, der.length);
  if (cert.tag !== SEQUENCE || cert.end !== der.length) throw new Error("DER: not a certificate");
  const tbs = children(der, cert)[0];
  if (tbs?.tag !== SEQUENCE) throw new Error("DER: no TBSCertificate");
  const ext = children(der, tbs).find((t) => t.tag === EXTENSIONS);
  const out: DerSans = { uris: [], dns: [] };
  if (!ext) return out;
  const list = children(der, ext)[0];
  if (list?.tag !== SEQUENCE) throw new Error("DER: bad extensions");
  let seen = false;
  for (const e of children(der, list)) {
    const parts = children(der, e);
    const oid = parts[0];
    if (oid?.tag !== OID || !bytesEqual(der, oid, SAN_OID)) continue;
    if (seen) throw new Error("DER: duplicate subjectAltName extension");
    seen = true;
    const value = parts[parts.length - 1];
    if (value?.tag !== OCTET_STRING) throw new Error("DER: bad subjectAltName value");
    const names = readTlv(der, value.start, value.end);
    if (names.tag !== SEQUENCE || names.end !== value.end) throw new Error("DER: bad GeneralNames");
    for (const n of children(der, names)) {
      if (n.tag === GN_URI) out.uris.push(ascii(der, n));
      else if (n.tag === GN_DNS) out.dns.push(ascii(der, n));
    }
  }
  return out;
}

export function bytesEqual(b: Uint8Array, t: Tlv, want: readonly number[]): boolean {
  if (t.end - t.start !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (b[t.start + i] !== want[i]) return false;
  return true;
}

function ascii(b: Uint8Array, t: Tlv): string {
  let s = "";
  for (let i = t.start; i < t.end; i++) {
    const c = b[i]!;
    if (c > 0x7e || c < 0x20) throw new Error("DER: non-printable byte in IA5String name");
    s += String.fromCharCode(c);
  }
  return s;
}
