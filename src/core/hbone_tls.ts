/**
 * The one builder of HBONE's node:tls options (hbone.md §3): TLS 1.3 only, ALPN h2, mutual
 * certificates against the mesh roots, no SNI. The server requests the client certificate but
 * does not refuse it in the handshake (`IdentityProvider.verifyClient` decides, so each refusal
 * is counted with its reason); the client replaces the hostname check (the default demands an IP
 * SAN) with `checkServerIdentity` (default: none, the caller verifies the SPIFFE id after the
 * handshake). src/tls builds on these.
 */
import type { ConnectionOptions, PeerCertificate, TlsOptions } from "node:tls";
import type { TlsMaterial } from "./transport.ts";

/** Certificate, key and roots: what a secure context (and a rotation) replaces. */
export function hboneContext(m: TlsMaterial): { cert: string; key: string; ca: string } {
  return { cert: m.certChainPem, key: m.keyPem, ca: m.rootsPem };
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
