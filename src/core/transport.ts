/**
 * What the data path needs from identity (implemented in src/tls, injected by src/app): TLS
 * material per local identity and verdicts on peer certificates. Core stays free of x509 code.
 */
import type { ConnectionOptions, TlsOptions } from "node:tls";

/** PEM material for node:tls / node:http2 secure contexts. */
export interface TlsMaterial {
  /** Leaf first, then intermediates. */
  readonly certChainPem: string;
  readonly keyPem: string;
  /** The trust bundle (mesh roots). */
  readonly rootsPem: string;
  readonly serial: string;
  readonly notAfter: Date;
}

export type PeerVerdict =
  | { readonly ok: true; readonly identity: string }
  | { readonly ok: false; readonly reason: TlsRejectReason; readonly message: string };

/** Stable reasons, used as the `reason` label of weft_tls_rejections_total. */
export type TlsRejectReason =
  | "no_client_cert"
  | "untrusted_chain"
  | "expired"
  | "not_yet_valid"
  | "bad_san"
  | "trust_domain_mismatch"
  | "identity_mismatch"
  | "handshake_failed"
  /** A certificate of the peer's chain is listed by a CRL (CRL_PATH / ca.crlFile). */
  | "revoked"
  /** The CRL for an issuer of the peer's chain does not verify (as webpki refuses it). */
  | "crl_invalid";

/** Which end counts a CRL verdict (ztunnel's `reporter` label): we are the client ("source")
 * or the server ("destination"). */
export type CrlReporter = "source" | "destination";

/** A verified peer chain checked against the CRLs: refused, or admitted with a way to track the
 * connection so a later CRL that revokes it closes it. */
export type RevocationAdmission =
  | { readonly ok: false; readonly reason: TlsRejectReason; readonly message: string }
  | {
    readonly ok: true;
    /** `revoked` runs once if a reloaded CRL revokes the chain; returns the untrack function
     * (call it when the connection closes). */
    track(revoked: () => void): () => void;
  };

/** CRL enforcement (hbone.md §4, §11), present only when a CRL is configured. */
export interface PeerRevocation {
  /** `chain`: the peer's certificates as DER, leaf first (what node:tls verified). Counts
   * istio_crl_policy_rejections_total / istio_crl_untracked_connections_total itself. */
  admit(chain: readonly Uint8Array[], reporter: CrlReporter): RevocationAdmission;
}

export interface IdentityProvider {
  readonly trustDomain: string;
  /** Set when CRLs are configured: every HBONE peer chain is admitted through it. */
  readonly revocation?: PeerRevocation | undefined;
  /** Current material for a local identity (spiffe://...); issues it on first use. */
  material(identity: string): Promise<TlsMaterial>;
  /** Server side: the client leaf (DER) already passed chain validation; check SAN shape and
   * trust domain. */
  verifyClient(leafDer: Uint8Array): PeerVerdict;
  /** Client side: the server leaf (DER) already passed chain validation; check SAN shape and
   * that its identity is one of `expected`. */
  verifyServer(leafDer: Uint8Array, expected: readonly string[]): PeerVerdict;
  /** Map a handshake error (node:tls error/alert) to a reject reason. Pass the TLS socket when
   * there is one (`tlsClientError` gives it as 2nd argument): Deno reports a refused client
   * certificate as ECONNRESET and keeps the verdict in `socket.authorizationError`. */
  classifyTlsError(err: unknown, socket?: unknown): TlsRejectReason;
  /** Notified after an identity's certificate rotated, so servers refresh secure contexts. */
  onRotate(fn: (identity: string, material: TlsMaterial) => void): () => void;
  /** Count one refused handshake/peer in weft_tls_rejections_total{reason, side}; `side` is the
   * side that refused ("server": we refused a client). */
  recordRejection?(side: TlsSide, reason: TlsRejectReason): void;
  /** node:tls / node:http2 server options for a local identity: cert/key/ca, requestCert,
   * rejectUnauthorized, TLS 1.3 only, ALPN h2. The caller still runs verifyClient on the leaf. */
  serverOptions?(identity: string): Promise<TlsOptions>;
  /** Client options presenting `identity`: no SNI, and checkServerIdentity runs verifyServer
   * against `expected` (a refusal fails the handshake with an error classifyTlsError reads). */
  clientOptions?(identity: string, expected: readonly string[]): Promise<ConnectionOptions>;
}

export type TlsSide = "server" | "client";
