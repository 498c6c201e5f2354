/**
 * The control plane's own serving certificate, issued by the mesh CA and re-issued at half its
 * lifetime (istiod rotates its serving certificate the same way): connections accepted after a
 * rotation get the new certificate, open ADS streams keep the TLS session they have. Without it a
 * control plane running longer than one leaf lifetime (24 h) would present an expired certificate
 * and every reconnecting node would refuse it.
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { logger, type TlsMaterial } from "../../core/mod.ts";
import { type LeafIssuer, WorkloadIdentityManager } from "../../tls/mod.ts";

const log = logger("control_plane");

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

export interface ServingCertificateOptions {
  /** The mesh CA (issues the leaf; its root is what nodes trust). */
  readonly ca: LeafIssuer;
  readonly trustDomain: string;
  /** The SPIFFE id the control plane presents. */
  readonly identity: string;
  /** Leaf lifetime; default 24 h. */
  readonly ttlMs?: number;
}

/** A grpc-js certificate provider for both the identity (certificate + key) and the CA bundle
 * that verifies client certificates. */
export class ServingCertificate implements grpc.experimental.CertificateProvider {
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private stopRotate: () => void = () => {};

  private constructor(
    private readonly ids: WorkloadIdentityManager,
    private current: TlsMaterial,
  ) {}

  /** Issues the first certificate (rejects when the CA cannot), then rotates it. */
  static async start(opts: ServingCertificateOptions): Promise<ServingCertificate> {
    const ids = new WorkloadIdentityManager({
      ca: opts.ca,
      trustDomain: opts.trustDomain,
      ...(opts.ttlMs !== undefined ? { ttlMs: opts.ttlMs } : {}),
    });
    const cert = new ServingCertificate(ids, await ids.material(opts.identity));
    cert.stopRotate = ids.onRotate((identity, material) => {
      if (identity !== opts.identity) return;
      cert.current = material;
      log.info("serving certificate rotated", {
        serial: material.serial,
        notAfter: material.notAfter.toISOString(),
      });
      for (const l of cert.identityListeners) l(cert.identityUpdate());
      for (const l of cert.caListeners) l(cert.caUpdate());
    });
    return cert;
  }

  /** The material served now (serial, notAfter). */
  get material(): TlsMaterial {
    return this.current;
  }

  /** Server credentials that follow the rotation. `clientCerts`: require and verify client
   * certificates against the mesh roots (mTLS); false for token authentication. */
  credentials(clientCerts: boolean): grpc.ServerCredentials {
    // grpc-js 1.14 hands this function's first argument to the credentials as the identity
    // provider and the second as the CA provider (its typings name them the other way round);
    // this provider serves both, so only the null for "no client certificates" must be second.
    return grpc.experimental.createCertificateProviderServerCredentials(
      this,
      clientCerts ? this : null,
      clientCerts,
    );
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    // Later, as grpc-js's own providers do: the credentials register their server's watcher
    // only after adding this listener, and an update before that would never reach the server.
    queueMicrotask(() => listener(this.caUpdate()));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => listener(this.identityUpdate()));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  /** Stops rotation. */
  async close(): Promise<void> {
    this.stopRotate();
    await this.ids.close();
  }

  private identityUpdate(): grpc.experimental.IdentityCertificateUpdate {
    return {
      certificate: Buffer.from(this.current.certChainPem),
      privateKey: Buffer.from(this.current.keyPem),
    };
  }

  private caUpdate(): grpc.experimental.CaCertificateUpdate {
    return { caCertificate: Buffer.from(this.current.rootsPem) };
  }
}
