/**
 * The one builder of HBONE's node:tls options (hbone.md §3): TLS 1.3 only with AES-GCM suites,
 * ALPN h2, mutual certificates against the mesh roots, no SNI. The server requests the client certificate but
 * does not refuse it in the handshake (`IdentityProvider.verifyClient` decides, so each refusal
 * is counted with its reason); the client replaces the hostname check (the default demands an IP
 * SAN) with `checkServerIdentity` (default: none, the caller verifies the SPIFFE id after the
 * handshake). src/tls builds on these.
 */
import type {
  ConnectionOptions,
  DetailedPeerCertificate,
  PeerCertificate,
  TlsOptions,
  TLSSocket,
} from "node:tls";
import type { TlsMaterial } from "./transport.ts";
import { WeftError } from "./errors.ts";

/** ztunnel's TLS 1.3 suites (hbone.md §3): AES-GCM only, no ChaCha20. node:tls takes TLS 1.3
 * suite names in `ciphers` (Deno, Bun and Node alike). */
export const HBONE_CIPHERS = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256";

const HBONE_SUITES: ReadonlySet<string> = new Set(HBONE_CIPHERS.split(":"));

/** The negotiated suite when it is not one of ztunnel's AES-GCM suites, else undefined. Deno's
 * (rustls) and Bun's (BoringSSL) node:tls ignore `ciphers` for TLS 1.3, so a client offering only
 * ChaCha20 completes the handshake; the server refuses it after the handshake, before any
 * HTTP/2, and the client refuses a server that picked it. */
export function negotiatedSuite(sock: TLSSocket): string | undefined {
  const c = sock.getCipher?.() as { name?: string; standardName?: string } | undefined;
  const name = c?.standardName ?? c?.name;
  return name === undefined || HBONE_SUITES.has(name) ? undefined : name;
}

/** Certificate, key, roots and suites: what a secure context (and a rotation) replaces. */
export function hboneContext(
  m: TlsMaterial,
): { cert: string; key: string; ca: string; ciphers: string } {
  return { cert: m.certChainPem, key: m.keyPem, ca: m.rootsPem, ciphers: HBONE_CIPHERS };
}

export function hboneServerTls(m: TlsMaterial): TlsOptions {
  return {
    ...hboneContext(m),
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: "TLSv1.3",
    ALPNProtocols: ["h2"],
  };
}

export function hboneClientTls(
  m: TlsMaterial,
  checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined = () => undefined,
): ConnectionOptions {
  return {
    ...hboneContext(m),
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
    ALPNProtocols: ["h2"],
    checkServerIdentity,
  };
}

/** The peer's certificates as DER, leaf first, as node:tls verified them: getPeerCertificate(true)
 * links each to its issuer up to the root (Deno 2.9.6 and Bun 1.4.5 alike). Only read when CRLs
 * are configured. */
export function peerChainDer(sock: TLSSocket): Uint8Array[] {
  const out: Uint8Array[] = [];
  const seen = new Set<unknown>();
  let c = sock.getPeerCertificate?.(true) as DetailedPeerCertificate | undefined;
  while (c?.raw && !seen.has(c) && out.length < 10) {
    seen.add(c);
    out.push(new Uint8Array(c.raw));
    c = c.issuerCertificate;
  }
  return out;
}

/** What a revoked HBONE connection is destroyed with: every tunnel on it reads the code and
 * records `response_flags="CERT_REVOKED"` (l4_conn.ts). */
export function certRevokedError(side: "inbound" | "outbound"): WeftError {
  return new WeftError(
    "cert_revoked",
    `Cannot continue ${side} HBONE connection: the peer certificate was revoked by a CRL update`,
  );
}
