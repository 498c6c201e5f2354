/**
 * weft's identity layer: SPIFFE ids, the mesh CA (auto dev CA in a state directory, or operator
 * files), workload leaf issuance and rotation, peer verification and mTLS option building.
 * May import: src/core/mod.ts only.
 *
 * Wiring (src/app): `const ca = await openCa(cfg)`, `const ids = new WorkloadIdentityManager({
 * ca, trustDomain })`, hand `ids` to core as its IdentityProvider, `await ids.close()` on exit.
 *
 * How core builds TLS from it (both are tiny, see mtls.ts):
 * - server: `{ ...await ids.serverOptions(identity) }` = cert/key/ca, requestCert,
 *   rejectUnauthorized: false, TLSv1.3, ALPN h2; then per connection, before reading anything,
 *   `ids.verifyClient(socket.getPeerCertificate(true).raw)` (chain to the mesh roots, validity,
 *   SAN shape, trust domain: each refusal with its own reason; no certificate = no_client_cert);
 *   on `tlsClientError(err, socket)`: `ids.recordRejection("server",
 *   ids.classifyTlsError(err, socket))` unless `isPeerAlert(err)` (the client refused us and
 *   counts it); on rotation `server.setSecureContext(...)`.
 * - client: `{ host: ip, port, ...await ids.clientOptions(identity, expectedSans) }` (no
 *   servername): checkServerIdentity runs verifyServer, so a wrong identity fails the handshake
 *   and `ids.classifyTlsError(err)` returns its reason; record it with side "client" unless
 *   `isPeerAlert(err)`.
 * Deno 2.9.6 caveats (verify.ts): a client whose certificate the server refused sees a clean
 * close after secureConnect, no error; on the client side (node:tls checks the server's chain)
 * an expired/not-yet-valid server certificate is reported as untrusted_chain.
 */
export {
  CertificateAuthority,
  CLOCK_SKEW_MS,
  DEFAULT_LEAF_TTL_MS,
  type IssuedLeaf,
  type IssueOptions,
  type LeafIssuer,
  type LeafSpec,
} from "./ca.ts";
export {
  type AutoCaOptions,
  CA_CERT_FILE,
  CA_KEY_FILE,
  type CaConfig,
  loadCaFiles,
  loadOrCreateCa,
  openCa,
} from "./ca_store.ts";
export {
  type CertificateState,
  type CertificateSummary,
  type IdentityManagerOptions,
  WorkloadIdentityManager,
} from "./identity_manager.ts";
export { clientTlsOptions, serverTlsOptions } from "./mtls.ts";
export {
  formatSpiffeId,
  parseSpiffeId,
  principalOf,
  SPIFFE_PREFIX,
  type SpiffeId,
  tryParseSpiffeId,
} from "./spiffe_id.ts";
export { recordTlsRejection, tlsMetrics } from "./tls_metrics.ts";
export {
  classifyTlsError,
  isPeerAlert,
  type LeafNames,
  leafNames,
  PeerIdentityError,
  verifyClientLeaf,
  verifyServerLeaf,
} from "./verify.ts";
export { createCsr, type CsrAndKey, leafFromChain } from "./csr.ts";
export { loadX509 } from "./x509_loader.ts";
import type { CrlStore, CrlStoreOptions } from "./crl_store.ts";
export type { CrlStore, CrlStoreOptions };

/** CRL enforcement (CRL_PATH / ca.crlFile): loaded with `import()` so a node without a CRL
 * evaluates none of it. Rejects with a WeftError when the file does not parse. */
export async function openCrl(
  opts: CrlStoreOptions,
): Promise<CrlStore> {
  const { CrlStore } = await import("./crl_store.ts");
  return await CrlStore.open(opts);
}
