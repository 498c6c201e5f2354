/**
 * Certificate revocation lists read from DER, with the profile webpki (ztunnel's verifier)
 * accepts (RFC 5280 §5): version 2, the inner signature algorithm equal to the outer one, a
 * non-empty issuer, nextUpdate present, CRL extensions present with a cRLNumber of at most 20
 * octets; delta CRLs, indirect CRLs, reason-partitioned CRLs and unknown critical extensions are
 * refused. Entries keep the serial's DER INTEGER content as written (compared byte for byte with
 * a certificate's, as webpki does). Malformed input throws a plain Error.
 */
import { Buffer } from "node:buffer";
import { children, readTlv, type Tlv } from "./_der.ts";

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const BOOLEAN = 0x01;
const BIT_STRING = 0x03;
const OCTET_STRING = 0x04;
const OID = 0x06;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;
const CRL_EXTENSIONS = 0xa0; // [0] EXPLICIT in TBSCertList

const ID_CE = [0x55, 0x1d]; // 2.5.29
const CRL_NUMBER = 20;
const CRL_REASON = 21;
const INVALIDITY_DATE = 24;
const DELTA_CRL = 27;
const ISSUING_DP = 28;
const CERT_ISSUER = 29;
const AUTHORITY_KEY_ID = 35;

/** The issuingDistributionPoint's scope (RFC 5280 §5.2.5), as webpki reads it. */
export interface CrlScope {
  readonly onlyUserCerts: boolean;
  readonly onlyCaCerts: boolean;
  /** URI names of its fullName distribution point. */
  readonly uris: readonly string[];
}

export interface ParsedCrl {
  readonly der: Uint8Array;
  /** The issuer Name, header included (hex): matched byte for byte with a certificate's issuer. */
  readonly issuerHex: string;
  readonly scope: CrlScope | undefined;
  /** Revoked serials: hex of each DER INTEGER's content. */
  readonly revoked: ReadonlySet<string>;
  readonly crlNumberHex: string;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  /** What the signature covers, the AlgorithmIdentifier and the signature bits. */
  readonly tbs: Uint8Array;
  readonly algorithm: Uint8Array;
  readonly signature: Uint8Array;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

export function parseCrlDer(der: Uint8Array): ParsedCrl {
  const top = readTlv(der, 0, der.length);
  if (top.tag !== SEQUENCE || top.end !== der.length) throw new Error("not a DER CertificateList");
  const [tbs, alg, sig, extra] = children(der, top);
  if (!tbs || tbs.tag !== SEQUENCE || alg?.tag !== SEQUENCE || sig?.tag !== BIT_STRING || extra) {
    throw new Error("bad CertificateList structure");
  }
  if (sig.end - sig.start < 2 || der[sig.start] !== 0) throw new Error("bad signature bits");
  const f = children(der, tbs);
  let i = 0;
  const version = f[i++];
  // webpki: version 2 only (its CRL profile requires the extensions v1 cannot carry).
  if (version?.tag !== INTEGER || version.end - version.start !== 1 || der[version.start] !== 1) {
    throw new Error("unsupported CRL version (want v2)");
  }
  const innerAlg = f[i++];
  if (!innerAlg || !sameBytes(der, innerAlg, alg)) {
    throw new Error("signature algorithm differs from the TBSCertList's");
  }
  const issuer = f[i++];
  if (issuer?.tag !== SEQUENCE || issuer.end === issuer.start) throw new Error("bad issuer");
  const thisUpdate = derTime(der, f[i++]);
  const next = f[i++];
  if (next?.tag !== UTC_TIME && next?.tag !== GENERALIZED_TIME) {
    throw new Error("nextUpdate is missing");
  }
  const nextUpdate = derTime(der, next);
  const revoked = new Set<string>();
  if (f[i]?.tag === SEQUENCE) {
    for (const e of children(der, f[i++]!)) revoked.add(readEntry(der, e));
  }
  const exts = f[i++];
  if (exts?.tag !== CRL_EXTENSIONS || f[i]) throw new Error("CRL extensions are missing");
  const { crlNumberHex, scope } = readCrlExtensions(der, exts);
  return {
    der,
    issuerHex: hex(der.subarray(issuer.pos, issuer.end)),
    scope,
    revoked,
    crlNumberHex,
    thisUpdate,
    nextUpdate,
    tbs: der.subarray(tbs.pos, tbs.end),
    algorithm: der.subarray(alg.pos, alg.end),
    signature: der.subarray(sig.start + 1, sig.end),
  };
}

function sameBytes(b: Uint8Array, x: Tlv, y: Tlv): boolean {
  if (x.end - x.pos !== y.end - y.pos) return false;
  for (let k = 0; k < x.end - x.pos; k++) if (b[x.pos + k] !== b[y.pos + k]) return false;
  return true;
}

interface Ext {
  readonly id: number | undefined;
  readonly critical: boolean;
  readonly value: Tlv;
}

function readExtensions(der: Uint8Array, list: Tlv): Ext[] {
  if (list.tag !== SEQUENCE) throw new Error("bad extensions");
  const seen = new Set<string>();
  return children(der, list).map((e) => {
    const parts = children(der, e);
    const oid = parts[0];
    const value = parts[parts.length - 1];
    if (e.tag !== SEQUENCE || oid?.tag !== OID || value?.tag !== OCTET_STRING) {
      throw new Error("bad extension");
    }
    const crit = parts.length === 3 ? parts[1]! : undefined;
    if (crit && (crit.tag !== BOOLEAN || crit.end - crit.start !== 1)) {
      throw new Error("bad extension criticality");
    }
    const key = hex(der.subarray(oid.start, oid.end));
    if (seen.has(key)) throw new Error(`duplicate extension ${key}`);
    seen.add(key);
    const isCe = oid.end - oid.start === 3 && der[oid.start] === ID_CE[0] &&
      der[oid.start + 1] === ID_CE[1];
    return {
      id: isCe ? der[oid.start + 2] : undefined,
      critical: crit !== undefined && der[crit.start] !== 0,
      value,
    };
  });
}

function readCrlExtensions(
  der: Uint8Array,
  wrapper: Tlv,
): { crlNumberHex: string; scope: CrlScope | undefined } {
  const list = children(der, wrapper)[0];
  if (!list) throw new Error("CRL extensions are missing");
  let crlNumberHex: string | undefined;
  let scope: CrlScope | undefined;
  for (const x of readExtensions(der, list)) {
    const inner = readTlv(der, x.value.start, x.value.end);
    if (x.id === CRL_NUMBER) {
      if (inner.tag !== INTEGER || inner.end - inner.start > 21) throw new Error("bad cRLNumber");
      crlNumberHex = hex(der.subarray(inner.start, inner.end));
    } else if (x.id === DELTA_CRL) throw new Error("delta CRLs are not supported");
    else if (x.id === ISSUING_DP) scope = readIdp(der, inner);
    else if (x.id === AUTHORITY_KEY_ID) continue;
    else if (x.critical) throw new Error("unsupported critical CRL extension");
  }
  // RFC 5280 §5.2.3: conforming CRL issuers MUST include it (webpki refuses the CRL otherwise).
  if (crlNumberHex === undefined) throw new Error("cRLNumber extension is missing");
  return { crlNumberHex, scope };
}

/** issuingDistributionPoint: webpki refuses indirect CRLs, onlySomeReasons, attribute-only
 * CRLs and a distribution point that is not a fullName. */
function readIdp(der: Uint8Array, idp: Tlv): CrlScope {
  if (idp.tag !== SEQUENCE) throw new Error("bad issuingDistributionPoint");
  let onlyUserCerts = false;
  let onlyCaCerts = false;
  let uris: string[] | undefined;
  const flag = (t: Tlv): boolean => {
    if (t.end - t.start !== 1 || (der[t.start] !== 0xff && der[t.start] !== 0)) {
      throw new Error("bad issuingDistributionPoint boolean");
    }
    return der[t.start] === 0xff;
  };
  for (const t of children(der, idp)) {
    if (t.tag === 0xa0) uris = fullNameUris(der, t);
    else if (t.tag === 0x81) onlyUserCerts = flag(t);
    else if (t.tag === 0x82) onlyCaCerts = flag(t);
    else if (t.tag === 0x83 || t.tag === 0xa3) {
      throw new Error("reason-partitioned CRLs unsupported");
    } else if (t.tag === 0x84) {
      if (flag(t)) throw new Error("indirect CRLs are not supported");
    } else if (t.tag === 0x85) {
      if (flag(t)) throw new Error("onlyContainsAttributeCerts CRLs are not supported");
    } else throw new Error("bad issuingDistributionPoint field");
  }
  if (!uris) throw new Error("issuingDistributionPoint without a fullName is not supported");
  return { onlyUserCerts, onlyCaCerts, uris };
}

/** DistributionPointName [0] holding fullName [0] GeneralNames: its URI names. */
export function fullNameUris(der: Uint8Array, dpName: Tlv): string[] | undefined {
  const full = children(der, dpName)[0];
  if (full?.tag !== 0xa0) return undefined; // nameRelativeToCRLIssuer [1]
  return children(der, full).filter((n) => n.tag === 0x86).map((n) =>
    new TextDecoder().decode(der.subarray(n.start, n.end))
  );
}

/** One revokedCertificates entry: its serial (hex of the INTEGER content). */
function readEntry(der: Uint8Array, e: Tlv): string {
  const [serial, date, exts, extra] = children(der, e);
  if (e.tag !== SEQUENCE || serial?.tag !== INTEGER || serial.end === serial.start || extra) {
    throw new Error("bad revoked certificate entry");
  }
  derTime(der, date);
  // Some CAs write an empty SEQUENCE for "no extensions" (webpki tolerates it).
  if (exts && exts.end > exts.start) {
    for (const x of readExtensions(der, exts)) {
      if (x.id === CERT_ISSUER) throw new Error("indirect CRL entries are not supported");
      if (x.id === CRL_REASON) {
        const r = readTlv(der, x.value.start, x.value.end);
        const code = der[r.start];
        if (
          r.tag !== 0x0a || r.end - r.start !== 1 || code === undefined || code > 10 || code === 7
        ) {
          throw new Error("bad revocation reason");
        }
      } else if (x.id === INVALIDITY_DATE) {
        derTime(der, readTlv(der, x.value.start, x.value.end));
      } else if (x.critical) throw new Error("unsupported critical CRL entry extension");
    }
  } else if (exts && exts.tag !== SEQUENCE) throw new Error("bad entry extensions");
  return hex(der.subarray(serial.start, serial.end));
}

function derTime(der: Uint8Array, t: Tlv | undefined): Date {
  if (!t) throw new Error("time is missing");
  const s = new TextDecoder().decode(der.subarray(t.start, t.end));
  const m = t.tag === UTC_TIME
    ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
    : t.tag === GENERALIZED_TIME
    ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
    : null;
  if (!m) throw new Error(`bad time ${JSON.stringify(s)}`);
  let year = Number(m[1]);
  if (t.tag === UTC_TIME) year += year >= 50 ? 1900 : 2000;
  const [mo, d, h, mi, se] = m.slice(2).map(Number) as [number, number, number, number, number];
  return new Date(Date.UTC(year, mo - 1, d, h, mi, se));
}

/**
 * The CRLs of a file as ztunnel reads CRL_PATH: empty = none; PEM (starts with "-----BEGIN"):
 * every "X509 CRL" block in order, other PEM items skipped; otherwise one DER CRL.
 */
export function crlDersOf(data: Uint8Array): Uint8Array[] {
  if (data.length === 0) return [];
  const head = new TextDecoder().decode(data.subarray(0, 10));
  if (!head.startsWith("-----BEGIN")) return [data];
  const text = new TextDecoder().decode(data);
  const out: Uint8Array[] = [];
  const block = /-----BEGIN ([A-Z0-9 ]+)-----([^-]*)-----END ([A-Z0-9 ]+)-----/g;
  const blocks = [...text.matchAll(block)];
  // A BEGIN line without its END is a file cut short (still being written): an error, as
  // rustls-pemfile's MissingSectionEnd, never a file with fewer (or no) CRLs.
  const begins = (text.match(/-----BEGIN /g) ?? []).length;
  if (begins !== (text.match(/-----END /g) ?? []).length) {
    throw new Error("PEM block without its END line (file cut short?)");
  }
  for (const m of blocks) {
    if (m[1] !== m[3]) throw new Error(`PEM block "${m[1]}" ends as "${m[3]}"`);
    if (m[1] !== "X509 CRL") continue;
    const b64 = m[2]!.replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new Error("PEM CRL block is not base64");
    out.push(new Uint8Array(Buffer.from(b64, "base64")));
  }
  if (out.length !== (text.match(/-----BEGIN X509 CRL-----/g) ?? []).length) {
    throw new Error("PEM CRL block without its END line (file cut short?)");
  }
  return out;
}
