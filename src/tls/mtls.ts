/**
 * node:tls option objects from TlsMaterial, shaped like ztunnel's HBONE TLS (hbone.md §3): TLS 1.3
 * only, ALPN h2, mutual certificates against the mesh roots, no SNI.
 *
 * Server: `tls.createServer(serverTlsOptions(m))` / `http2.createSecureServer({...opts, ...})`
 * then, per connection and before reading anything, `provider.verifyClient(socket
 * .getPeerCertificate(true).raw)` (no certificate = no_client_cert): it checks the chain to the
 * mesh roots, the validity period, the SAN shape and the trust domain. The TLS layer requests the
 * certificate but does not refuse it itself (rejectUnauthorized: false), because Deno's node:tls
 * would report every chain failure as one generic code.
 * Client: `tls.connect({ host: ip, port, ...clientTlsOptions(m, verify) })`, never `servername`;
 * checkServerIdentity is replaced (the default demands an IP SAN) by `verify` on the leaf, and a
 * refusal fails the handshake with a PeerIdentityError whose `reason` classifyTlsError returns.
 */
import type { ConnectionOptions, PeerCertificate, TlsOptions } from "node:tls";
import { hboneClientTls, hboneServerTls, type PeerVerdict, type TlsMaterial } from "../core/mod.ts";
import { PeerIdentityError } from "./verify.ts";

export function serverTlsOptions(m: TlsMaterial): TlsOptions {
  return hboneServerTls(m);
}

export function clientTlsOptions(
  m: TlsMaterial,
  verify: (leafDer: Uint8Array) => PeerVerdict,
): ConnectionOptions {
  return hboneClientTls(
    m,
    (_host: string, cert: PeerCertificate): Error | undefined => {
      const raw = cert?.raw;
      if (!raw || raw.length === 0) {
        return new PeerIdentityError("bad_san", "server presented no certificate bytes");
      }
      const v = verify(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
      return v.ok ? undefined : new PeerIdentityError(v.reason, v.message);
    },
  );
}
