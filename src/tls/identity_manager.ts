/**
 * Certificates for the node's local workload identities, as ztunnel's SecretManager keeps them:
 * issued on first use (one issuance in flight per identity), cached, re-issued at a fraction of
 * the lifetime (default half), retried with back-off (0.5 s ×2 up to 150 s) while the old
 * certificate keeps serving. Lifetime is measured from issuance, not from the back-dated
 * notBefore, so second-long test TTLs rotate on time.
 */
import type { ConnectionOptions, TlsOptions } from "node:tls";
import {
  type IdentityProvider,
  logger,
  type PeerRevocation,
  type PeerVerdict,
  type TlsMaterial,
  type TlsRejectReason,
  type TlsSide,
  WeftError,
} from "../core/mod.ts";
import { DEFAULT_LEAF_TTL_MS, type IssuedLeaf, type LeafIssuer } from "./ca.ts";
import { clientTlsOptions, serverTlsOptions } from "./mtls.ts";
import { parseSpiffeId } from "./spiffe_id.ts";
import { recordTlsRejection, tlsMetrics } from "./tls_metrics.ts";
import { checkChain, classifyTlsError, verifyClientLeaf, verifyServerLeaf } from "./verify.ts";

const log = logger("tls");

export interface IdentityManagerOptions {
  /** Usually a CertificateAuthority. */
  readonly ca: LeafIssuer;
  readonly trustDomain: string;
  /** Leaf lifetime; default 24 h (ztunnel's SECRET_TTL). */
  readonly ttlMs?: number;
  /** Re-issue when this fraction of the lifetime has passed; default 0.5. */
  readonly rotateAtFraction?: number;
  /** Wall clock, ms since the epoch (tests). */
  readonly now?: () => number;
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
}

export type CertificateState = "Initializing" | "Available" | "Unavailable";

/** One row of /config_dump `certificates`: public data only, never a key. */
export interface CertificateSummary {
  readonly identity: string;
  readonly state: CertificateState;
  readonly serial: string | undefined;
  readonly notBefore: string | undefined;
  readonly notAfter: string | undefined;
  readonly certChainPem: string | undefined;
  readonly rootCertsPem: string;
  readonly lastError: string | undefined;
  /** ztunnel's /config_dump shape (`certChain` / `rootCerts`, each entry with its PEM; the leaf
   * with serialNumber, validFrom and expirationTime), for tools that read ztunnel's dump. */
  readonly certChain: readonly CertDumpEntry[];
  readonly rootCerts: readonly CertDumpEntry[];
}

export interface CertDumpEntry {
  readonly pem: string;
  readonly serialNumber?: string;
  readonly validFrom?: string;
  readonly expirationTime?: string;
}

interface Entry {
  leaf: IssuedLeaf | undefined;
  material: TlsMaterial | undefined;
  pending: Promise<TlsMaterial> | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  failures: number;
  lastError: string | undefined;
}

type RotateListener = (identity: string, material: TlsMaterial) => void;

export class WorkloadIdentityManager implements IdentityProvider {
  readonly trustDomain: string;
  /** CRL enforcement (src/tls/crl_store.ts), set by the app when a CRL file is configured. */
  revocation: PeerRevocation | undefined;
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<RotateListener>();
  private readonly ttlMs: number;
  private readonly fraction: number;
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly opts: IdentityManagerOptions) {
    this.trustDomain = opts.trustDomain;
    this.ttlMs = opts.ttlMs ?? DEFAULT_LEAF_TTL_MS;
    this.fraction = opts.rotateAtFraction ?? 0.5;
    this.now = opts.now ?? Date.now;
    if (!(this.fraction > 0 && this.fraction < 1)) {
      throw new WeftError(
        "rotation_fraction_invalid",
        `Cannot start identity manager: rotateAtFraction ${this.fraction} must be in (0, 1)`,
      );
    }
  }

  material(identity: string): Promise<TlsMaterial> {
    if (this.closed) {
      return Promise.reject(new WeftError("identity_closed", "Cannot issue certificate: closed"));
    }
    const e = this.entries.get(identity);
    if (e?.material && e.material.notAfter.getTime() > this.now()) {
      return Promise.resolve(e.material);
    }
    if (e?.pending) return e.pending;
    try {
      const id = parseSpiffeId(identity);
      if (id.trustDomain !== this.trustDomain) {
        throw new WeftError(
          "identity_foreign_trust_domain",
          `Cannot issue certificate for ${identity}: not in trust domain ${this.trustDomain}`,
        );
      }
    } catch (err) {
      return Promise.reject(err);
    }
    const entry = e ?? this.newEntry(identity);
    return this.issue(identity, entry, entry.leaf !== undefined);
  }

  /** The current mesh roots (PEM): what peer chains end at. */
  get rootsPem(): string {
    return this.opts.ca.rootPem;
  }

  /** Chain (to the current mesh roots) and validity first, then the SAN checks. */
  verifyClient(leafDer: Uint8Array): PeerVerdict {
    return checkChain(leafDer, this.opts.ca.rootPem, this.now()) ??
      verifyClientLeaf(leafDer, this.trustDomain);
  }

  verifyServer(leafDer: Uint8Array, expected: readonly string[]): PeerVerdict {
    return verifyServerLeaf(leafDer, this.trustDomain, expected);
  }

  classifyTlsError(err: unknown, socket?: unknown): TlsRejectReason {
    return classifyTlsError(err, socket);
  }

  recordRejection(side: TlsSide, reason: TlsRejectReason): void {
    recordTlsRejection(side, reason);
  }

  async serverOptions(identity: string): Promise<TlsOptions> {
    return serverTlsOptions(await this.material(identity));
  }

  async clientOptions(identity: string, expected: readonly string[]): Promise<ConnectionOptions> {
    return clientTlsOptions(
      await this.material(identity),
      (der) => this.verifyServer(der, expected),
    );
  }

  onRotate(fn: RotateListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  certificates(): CertificateSummary[] {
    return [...this.entries].map(([identity, e]) => ({
      identity,
      state: e.leaf ? "Available" : e.pending ? "Initializing" : "Unavailable",
      serial: e.leaf?.serial,
      notBefore: e.leaf?.notBefore.toISOString(),
      notAfter: e.leaf?.notAfter.toISOString(),
      certChainPem: e.leaf?.chainPem,
      rootCertsPem: this.opts.ca.rootPem,
      lastError: e.lastError,
      certChain: e.leaf
        ? [{
          pem: e.leaf.chainPem,
          serialNumber: e.leaf.serial,
          validFrom: e.leaf.notBefore.toISOString(),
          expirationTime: e.leaf.notAfter.toISOString(),
        }]
        : [],
      rootCerts: [{ pem: this.opts.ca.rootPem }],
    }));
  }

  /** Stop rotation timers and wait for issuances in flight; material() fails afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    const pending: Promise<unknown>[] = [];
    for (const e of this.entries.values()) {
      if (e.timer !== undefined) clearTimeout(e.timer);
      e.timer = undefined;
      if (e.pending) pending.push(e.pending.catch(() => {}));
    }
    this.listeners.clear();
    await Promise.all(pending);
  }

  private newEntry(identity: string): Entry {
    const e: Entry = {
      leaf: undefined,
      material: undefined,
      pending: undefined,
      timer: undefined,
      failures: 0,
      lastError: undefined,
    };
    this.entries.set(identity, e);
    return e;
  }

  private issue(identity: string, e: Entry, rotation: boolean): Promise<TlsMaterial> {
    const p = this.opts.ca.issueLeaf(identity, { ttlMs: this.ttlMs, nowMs: this.now() }).then(
      (leaf) => this.onIssued(identity, e, leaf, rotation),
      (err) => this.onFailed(identity, e, err, rotation),
    );
    e.pending = p;
    // Whatever happens, this issuance is no longer in flight (a settled promise is never reused).
    p.finally(() => {
      if (e.pending === p) e.pending = undefined;
    }).catch(() => {});
    return p;
  }

  private onIssued(identity: string, e: Entry, leaf: IssuedLeaf, rotation: boolean): TlsMaterial {
    const material: TlsMaterial = Object.freeze({
      certChainPem: leaf.chainPem,
      keyPem: leaf.keyPem,
      rootsPem: leaf.rootsPem,
      serial: leaf.serial,
      notAfter: leaf.notAfter,
    });
    if (this.closed) return material;
    e.leaf = leaf;
    e.material = material;
    e.failures = 0;
    e.lastError = undefined;
    tlsMetrics.issued.inc();
    tlsMetrics.expiry.set({ identity }, Math.floor(leaf.notAfter.getTime() / 1000));
    const lifetime = leaf.notAfter.getTime() - leaf.issuedAt.getTime();
    this.schedule(identity, e, leaf.issuedAt.getTime() + lifetime * this.fraction - this.now());
    log.debug("certificate issued", {
      identity,
      serial: leaf.serial,
      notAfter: leaf.notAfter.toISOString(),
      rotation,
    });
    if (rotation) {
      tlsMetrics.rotations.inc();
      for (const fn of [...this.listeners]) {
        try {
          fn(identity, material);
        } catch (err) {
          log.error("rotation listener failed", { identity, err });
        }
      }
    }
    return material;
  }

  private onFailed(identity: string, e: Entry, err: unknown, rotation: boolean): never {
    e.failures++;
    e.lastError = String(err);
    if (!this.closed && rotation) {
      const base = this.opts.retryInitialMs ?? 500;
      const max = this.opts.retryMaxMs ?? 150_000;
      const delay = Math.min(max, base * 2 ** (e.failures - 1));
      log.warn("certificate rotation failed", { identity, failures: e.failures, delay, err });
      this.schedule(identity, e, delay);
    }
    throw new WeftError(
      "cert_issue_failed",
      `Cannot issue certificate for ${identity}: ${String(err)}`,
      {
        cause: err,
      },
    );
  }

  private schedule(identity: string, e: Entry, delayMs: number): void {
    if (e.timer !== undefined) clearTimeout(e.timer);
    e.timer = setTimeout(() => {
      e.timer = undefined;
      if (this.closed || e.pending) return;
      this.issue(identity, e, true).catch(() => {
        // Logged and rescheduled in onFailed; the old certificate keeps serving.
      });
    }, Math.max(0, delayMs));
  }
}
