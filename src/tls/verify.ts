/**
 * Peer checks after node:tls validated the chain and validity period (rejectUnauthorized: true
 * with the mesh roots as `ca`), and the mapping of handshake failures to stable reasons.
 *
 * What Deno 2.9.6 node:tls reports (measured in mtls_test.ts; Node/OpenSSL codes also mapped):
 * | seen by | situation                              | err.code (socket.authorizationError)      |
 * |---------|----------------------------------------|-------------------------------------------|
 * | server  | client sent no certificate             | ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE |
 * | server  | client cert: other CA/expired/not yet  | ECONNRESET, authorizationError            |
 * |         |                                        | UNABLE_TO_VERIFY_LEAF_SIGNATURE (all 3!)  |
 * | client  | server cert from another CA            | UNABLE_TO_GET_ISSUER_CERT_LOCALLY         |
 * | client  | server cert expired / not yet valid    | UNABLE_TO_VERIFY_LEAF_SIGNATURE           |
 * | client  | alert: server demanded a certificate   | ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED |
 * | server  | alert: client refused our certificate  | ERR_SSL_TLSV1_ALERT_UNKNOWN_CA,           |
 * |         |                                        | ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED   |
 * | client  | server refused our certificate         | nothing: secureConnect, then a clean close |
 * So on Deno "expired" and "not yet valid" surface only as alerts from a rustls peer; a locally
 * refused expired certificate reads as untrusted_chain. The peer certificate is not available on
 * the error path (getPeerCertificate() returns null), so weft cannot refine it.
 */
import { X509Certificate } from "node:crypto";
import type { PeerVerdict, TlsRejectReason } from "../core/mod.ts";
import { sansFromCertDer } from "./_der.ts";
import { tryParseSpiffeId } from "./spiffe_id.ts";

/** Thrown (returned) from checkServerIdentity so classifyTlsError can read the reason back. */
export class PeerIdentityError extends Error {
  readonly code = "ERR_WEFT_PEER_IDENTITY";
  constructor(readonly reason: TlsRejectReason, message: string) {
    super(message);
    this.name = "PeerIdentityError";
  }
}

export interface LeafNames {
  readonly uris: readonly string[];
  readonly dns: readonly string[];
}

/** URI and DNS SANs of a DER certificate (throws on malformed DER). */
export function leafNames(leafDer: Uint8Array): LeafNames {
  return sansFromCertDer(leafDer);
}

const rootCache = new Map<string, X509Certificate[]>();

function rootsOf(rootsPem: string): X509Certificate[] {
  let roots = rootCache.get(rootsPem);
  if (!roots) {
    const blocks =
      rootsPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    roots = blocks.map((b) => new X509Certificate(b));
    if (rootCache.size > 8) rootCache.clear();
    rootCache.set(rootsPem, roots);
  }
  return roots;
}

/**
 * The server's own chain check (HBONE servers run with rejectUnauthorized: false and call this
 * first), so refusals carry their real reason: Deno's node:tls reports another CA, an expired and
 * a not-yet-valid client certificate all as UNABLE_TO_VERIFY_LEAF_SIGNATURE. Leaves are signed
 * directly by a mesh root (weft's CA and Istio's self-signed root alike).
 */
export function checkChain(
  leafDer: Uint8Array,
  rootsPem: string,
  nowMs: number = Date.now(),
): PeerVerdict | undefined {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafDer);
  } catch (err) {
    return reject("untrusted_chain", `peer certificate does not parse: ${String(err)}`);
  }
  const roots = rootsOf(rootsPem);
  if (!roots.some((r) => leaf.checkIssued(r) && leaf.verify(r.publicKey))) {
    return reject("untrusted_chain", `peer certificate issuer "${leaf.issuer}" is not a mesh root`);
  }
  if (nowMs < Date.parse(leaf.validFrom)) {
    return reject("not_yet_valid", `peer certificate is valid from ${leaf.validFrom}`);
  }
  if (nowMs > Date.parse(leaf.validTo)) {
    return reject("expired", `peer certificate expired ${leaf.validTo}`);
  }
  return undefined;
}

/** Server side: exactly one URI SAN, of SPIFFE shape, in our trust domain. */
export function verifyClientLeaf(leafDer: Uint8Array, trustDomain: string): PeerVerdict {
  return checkLeaf(leafDer, trustDomain, undefined);
}

/** Client side: as verifyClientLeaf, and the identity must be one of `expected`. */
export function verifyServerLeaf(
  leafDer: Uint8Array,
  trustDomain: string,
  expected: readonly string[],
): PeerVerdict {
  return checkLeaf(leafDer, trustDomain, expected);
}

function checkLeaf(
  leafDer: Uint8Array,
  trustDomain: string,
  expected: readonly string[] | undefined,
): PeerVerdict {
  let names: LeafNames;
  try {
    names = leafNames(leafDer);
  } catch (err) {
    return reject("bad_san", `peer certificate does not parse: ${String(err)}`);
  }
  if (names.uris.length !== 1) {
    return reject(
      "bad_san",
      `peer certificate has ${names.uris.length} URI SANs (dns: ${
        names.dns.join(",") || "-"
      }), want exactly one SPIFFE id`,
    );
  }
  const identity = names.uris[0]!;
  const id = tryParseSpiffeId(identity);
  if (!id) {
    return reject("bad_san", `peer URI SAN ${identity} is not spiffe://<td>/ns/<ns>/sa/<sa>`);
  }
  if (id.trustDomain !== trustDomain) {
    return reject(
      "trust_domain_mismatch",
      `peer ${identity} is in trust domain ${id.trustDomain}, want ${trustDomain}`,
    );
  }
  if (expected && !expected.includes(identity)) {
    return reject("identity_mismatch", `peer ${identity} is not one of ${expected.join(", ")}`);
  }
  return { ok: true, identity };
}

function reject(reason: TlsRejectReason, message: string): PeerVerdict {
  return { ok: false, reason, message };
}

const BY_CODE: Readonly<Record<string, TlsRejectReason>> = {
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: "no_client_cert",
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: "no_client_cert",
  ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: "handshake_failed",
  // The validating side's own verdicts.
  CERT_HAS_EXPIRED: "expired",
  CERT_NOT_YET_VALID: "not_yet_valid",
  UNABLE_TO_GET_ISSUER_CERT: "untrusted_chain",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "untrusted_chain",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "untrusted_chain",
  SELF_SIGNED_CERT_IN_CHAIN: "untrusted_chain",
  DEPTH_ZERO_SELF_SIGNED_CERT: "untrusted_chain",
  CERT_SIGNATURE_FAILURE: "untrusted_chain",
  CERT_UNTRUSTED: "untrusted_chain",
  ERR_TLS_CERT_ALTNAME_INVALID: "identity_mismatch",
  // Alerts from a peer that refused our certificate.
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: "untrusted_chain",
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: "untrusted_chain",
  ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR: "untrusted_chain",
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: "expired",
};

const REASONS: ReadonlySet<string> = new Set<TlsRejectReason>([
  "no_client_cert",
  "untrusted_chain",
  "expired",
  "not_yet_valid",
  "bad_san",
  "trust_domain_mismatch",
  "identity_mismatch",
  "handshake_failed",
  "revoked",
  "crl_invalid",
]);

/**
 * True when the error is a TLS alert from the peer (ERR_SSL_..._ALERT_...): the peer refused
 * our certificate and counts that itself, so only classify/log it, do not record a rejection
 * (on one node both ends of local HBONE traffic share one metrics registry).
 */
export function isPeerAlert(err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" && /^ERR_SSL_.*_ALERT_/.test(code);
}

/**
 * Map a node:tls handshake error to a reason. Pass the TLS socket too when there is one
 * (`tlsClientError` gives it as 2nd argument): Deno reports a refused client certificate as
 * ECONNRESET and keeps the verdict in `socket.authorizationError`.
 */
export function classifyTlsError(err: unknown, socket?: unknown): TlsRejectReason {
  const e = (err ?? {}) as { reason?: unknown; code?: unknown; message?: unknown };
  if (typeof e.reason === "string" && REASONS.has(e.reason)) return e.reason as TlsRejectReason;
  const code = typeof e.code === "string" ? e.code : "";
  const byCode = BY_CODE[code];
  if (byCode) return byCode;
  const authErr = (socket as { authorizationError?: unknown } | undefined)?.authorizationError;
  const authCode = typeof authErr === "string"
    ? authErr
    : (authErr as { code?: unknown } | null | undefined)?.code;
  if (typeof authCode === "string" && BY_CODE[authCode]) return BY_CODE[authCode]!;
  const msg = typeof e.message === "string" ? e.message.toLowerCase() : "";
  if (msg.includes("certificaterequired") || msg.includes("peer sent no certificates")) {
    return "no_client_cert";
  }
  if (msg.includes("expired")) return "expired";
  if (msg.includes("unknownca") || msg.includes("unknown issuer")) return "untrusted_chain";
  return "handshake_failed";
}
