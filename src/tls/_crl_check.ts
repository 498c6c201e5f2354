/**
 * Revocation status of a peer chain, as webpki decides it for ztunnel (RevocationOptions with
 * depth Chain, unknown status Allowed, nextUpdate not enforced): for the leaf and each
 * intermediate of the path to a mesh root, the first CRL that is authoritative for it (same
 * issuer Name byte for byte; an issuingDistributionPoint narrows the scope) must verify with the
 * issuer's key, whose keyUsage (when present) must allow cRLSign, and must not list the
 * certificate's serial. A CRL that does not verify fails the check (a forged CRL in the issuer's
 * name refuses that issuer's peers, as in ztunnel); a CRL from an issuer outside the path is
 * never consulted. Trust anchors themselves are not checked.
 */
import { Buffer } from "node:buffer";
import { createPublicKey, type KeyObject, verify } from "node:crypto";
import { children, readTlv, type Tlv } from "./_der.ts";
import { fullNameUris, hex, type ParsedCrl } from "./_crl_der.ts";

const SEQUENCE = 0x30;
const OID = 0x06;
const OCTET_STRING = 0x04;
const BIT_STRING = 0x03;
const EXTENSIONS = 0xa3;
const KEY_USAGE = "551d0f";
const CRL_DPS = "551d1f";
/** cRLSign is bit 6 of KeyUsage (RFC 5280 §4.2.1.3): 0x02 in the first byte. */
const CRL_SIGN = 0x02;

/** One distribution point of a certificate's cRLDistributionPoints. */
interface CertDp {
  /** fullName URIs; undefined when there is no fullName. */
  readonly uris: readonly string[] | undefined;
  /** Names an indirect CRL issuer or a reason subset: never matches (webpki). */
  readonly partial: boolean;
}

export interface CertInfo {
  readonly der: Uint8Array;
  readonly serialHex: string;
  readonly issuerHex: string;
  readonly subjectHex: string;
  readonly spki: Uint8Array;
  readonly spkiHex: string;
  /** undefined when the certificate has no keyUsage extension. */
  readonly crlSign: boolean | undefined;
  readonly dps: readonly CertDp[] | undefined;
  readonly tbs: Uint8Array;
  readonly algorithm: Uint8Array;
  readonly signature: Uint8Array;
}

export function readCertInfo(der: Uint8Array): CertInfo {
  const top = readTlv(der, 0, der.length);
  if (top.tag !== SEQUENCE || top.end !== der.length) throw new Error("not a DER certificate");
  const [tbs, alg, sig] = children(der, top);
  if (tbs?.tag !== SEQUENCE || alg?.tag !== SEQUENCE || sig?.tag !== BIT_STRING) {
    throw new Error("bad certificate structure");
  }
  const f = children(der, tbs);
  const at = f[0]?.tag === 0xa0 ? 1 : 0;
  const [serial, , issuer, , subject, spki] = f.slice(at, at + 6);
  if (!serial || issuer?.tag !== SEQUENCE || subject?.tag !== SEQUENCE || !spki) {
    throw new Error("short TBSCertificate");
  }
  const ext = certExtensions(der, f.find((t) => t.tag === EXTENSIONS));
  const spkiDer = der.subarray(spki.pos, spki.end);
  return {
    der,
    serialHex: hex(der.subarray(serial.start, serial.end)),
    issuerHex: hex(der.subarray(issuer.pos, issuer.end)),
    subjectHex: hex(der.subarray(subject.pos, subject.end)),
    spki: spkiDer,
    spkiHex: hex(spkiDer),
    crlSign: ext.crlSign,
    dps: ext.dps,
    tbs: der.subarray(tbs.pos, tbs.end),
    algorithm: der.subarray(alg.pos, alg.end),
    signature: der.subarray(sig.start + 1, sig.end),
  };
}

function certExtensions(
  der: Uint8Array,
  wrapper: Tlv | undefined,
): { crlSign: boolean | undefined; dps: CertDp[] | undefined } {
  const out: { crlSign: boolean | undefined; dps: CertDp[] | undefined } = {
    crlSign: undefined,
    dps: undefined,
  };
  const list = wrapper ? children(der, wrapper)[0] : undefined;
  if (!list) return out;
  for (const e of children(der, list)) {
    const parts = children(der, e);
    const oid = parts[0];
    const value = parts[parts.length - 1];
    if (oid?.tag !== OID || value?.tag !== OCTET_STRING) throw new Error("bad extension");
    const id = hex(der.subarray(oid.start, oid.end));
    if (id === KEY_USAGE) {
      const bits = readTlv(der, value.start, value.end);
      if (bits.tag !== BIT_STRING) throw new Error("bad keyUsage");
      out.crlSign = bits.end - bits.start > 1 && (der[bits.start + 1]! & CRL_SIGN) !== 0;
    } else if (id === CRL_DPS) {
      const seq = readTlv(der, value.start, value.end);
      out.dps = children(der, seq).map((dp) => {
        const fields = children(der, dp);
        const name = fields.find((t) => t.tag === 0xa0);
        return {
          uris: name ? fullNameUris(der, name) : undefined,
          partial: fields.some((t) => t.tag === 0x81 || t.tag === 0xa1 || t.tag === 0xa2),
        };
      });
    }
  }
  return out;
}

const keys = new Map<string, KeyObject>();
const HASH_BY_ALG: Readonly<Record<string, string | null>> = {
  "2a8648ce3d040302": "sha256", // ecdsa-with-SHA256
  "2a8648ce3d040303": "sha384",
  "2a8648ce3d040304": "sha512",
  "2a864886f70d01010b": "sha256", // sha256WithRSAEncryption
  "2a864886f70d01010c": "sha384",
  "2a864886f70d01010d": "sha512",
  "2b6570": null, // Ed25519
};

/** Whether `signature` over `data` verifies with the SubjectPublicKeyInfo `spki`; undefined for
 * an algorithm weft does not verify (RSA-PSS, others): the caller treats it as not verified. */
export function verifySigned(
  data: Uint8Array,
  algorithm: Uint8Array,
  signature: Uint8Array,
  spki: Uint8Array,
  spkiHex: string,
): boolean | undefined {
  const algSeq = readTlv(algorithm, 0, algorithm.length);
  const oid = children(algorithm, algSeq)[0];
  if (oid?.tag !== OID) return undefined;
  const hash = HASH_BY_ALG[hex(algorithm.subarray(oid.start, oid.end))];
  if (hash === undefined) return undefined;
  let key = keys.get(spkiHex);
  if (!key) {
    key = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
    if (keys.size > 256) keys.clear();
    keys.set(spkiHex, key);
  }
  try {
    return verify(hash, data, key, signature);
  } catch {
    return false;
  }
}

/**
 * The path from `chain[0]` (the peer's leaf) to a mesh root, through the certificates the peer
 * sent. node:tls has verified the chain already; names decide, and a signature check only picks
 * between several candidates with the same subject. undefined: no path (the caller counts the
 * connection as untracked).
 */
export function buildPath(
  chain: readonly CertInfo[],
  roots: readonly CertInfo[],
): CertInfo[] | undefined {
  const leaf = chain[0];
  if (!leaf) return undefined;
  const path: CertInfo[] = [leaf];
  for (let depth = 0; depth < 8; depth++) {
    const cur = path[path.length - 1]!;
    const anchors = roots.filter((r) => r.subjectHex === cur.issuerHex);
    const mids = chain.slice(1).filter((c) =>
      c.subjectHex === cur.issuerHex && c.subjectHex !== c.issuerHex && !path.includes(c)
    );
    const pick = (list: CertInfo[], total: number): CertInfo | undefined =>
      total === 1
        ? list[0]
        : list.find((c) =>
          verifySigned(cur.tbs, cur.algorithm, cur.signature, c.spki, c.spkiHex) === true
        );
    const total = anchors.length + mids.length;
    const anchor = pick(anchors, total);
    if (anchor) {
      path.push(anchor);
      return path;
    }
    const next = pick(mids, total);
    if (!next) return undefined;
    path.push(next);
  }
  return undefined;
}

/** The loaded CRLs, indexed by issuer, with their signature checks cached per issuer key. */
export class CrlSet {
  private readonly byIssuer = new Map<string, ParsedCrl[]>();
  private readonly verified = new Map<ParsedCrl, Map<string, boolean | undefined>>();

  constructor(readonly crls: readonly ParsedCrl[]) {
    for (const c of crls) {
      const list = this.byIssuer.get(c.issuerHex);
      if (list) list.push(c);
      else this.byIssuer.set(c.issuerHex, [c]);
    }
  }

  /** The first CRL authoritative for `cert` in its role (webpki's `authoritative`). */
  authoritative(cert: CertInfo, endEntity: boolean): ParsedCrl | undefined {
    return this.byIssuer.get(cert.issuerHex)?.find((crl) => {
      const s = crl.scope;
      if (!s) return true;
      if ((s.onlyCaCerts && endEntity) || (s.onlyUserCerts && !endEntity)) return false;
      if (!cert.dps) return true;
      return cert.dps.some((dp) => !dp.partial && (dp.uris ?? []).some((u) => s.uris.includes(u)));
    });
  }

  signatureOk(crl: ParsedCrl, issuer: CertInfo): boolean | undefined {
    let m = this.verified.get(crl);
    if (!m) this.verified.set(crl, m = new Map());
    if (!m.has(issuer.spkiHex)) {
      m.set(
        issuer.spkiHex,
        verifySigned(crl.tbs, crl.algorithm, crl.signature, issuer.spki, issuer.spkiHex),
      );
    }
    return m.get(issuer.spkiHex);
  }
}

export type PathStatus =
  | { readonly kind: "good" }
  | { readonly kind: "revoked"; readonly message: string }
  | { readonly kind: "crl_invalid"; readonly message: string };

const GOOD: PathStatus = Object.freeze({ kind: "good" });

/** Revocation status of a built path (leaf … root) against `set`. */
export function pathStatus(path: readonly CertInfo[], set: CrlSet): PathStatus {
  for (let i = 0; i + 1 < path.length; i++) {
    const cert = path[i]!;
    const issuer = path[i + 1]!;
    const crl = set.authoritative(cert, i === 0);
    if (!crl) continue; // unknown status: allowed (ztunnel's allow_unknown_revocation_status)
    const what = i === 0 ? "peer certificate" : "intermediate";
    const ok = set.signatureOk(crl, issuer);
    if (ok !== true) {
      return {
        kind: "crl_invalid",
        message: ok === undefined
          ? `the CRL for the ${what}'s issuer uses a signature algorithm weft does not verify`
          : `the CRL for the ${what}'s issuer does not verify with the issuer's key`,
      };
    }
    if (issuer.crlSign === false) {
      return { kind: "crl_invalid", message: `the ${what}'s issuer may not sign CRLs (keyUsage)` };
    }
    if (crl.revoked.has(cert.serialHex)) {
      return { kind: "revoked", message: `${what} serial ${cert.serialHex} is revoked` };
    }
  }
  return GOOD;
}
