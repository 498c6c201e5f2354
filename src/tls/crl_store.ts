/**
 * Certificate revocation lists for HBONE peers, as ztunnel's CRL_PATH (hbone.md §4, §11): the
 * file (PEM with one or more "X509 CRL" blocks, or one DER CRL; empty or without CRL blocks = no
 * revocations) is loaded at start (missing: a warning, picked up once it appears; invalid: an
 * error), then watched — its directory, as Kubernetes swaps a ConfigMap/Secret volume's symlink
 * atomically, debounced, with a stat poll as fallback. A reload that does not parse keeps the
 * last good set. New peers are admitted against the current set (_crl_check.ts: webpki's rules);
 * admitted connections are tracked and re-checked on every reload, and one whose chain became
 * revoked is closed by its owner's callback at once. Loaded with `import()` only when a CRL is
 * configured (tests/lazy_imports_test.ts).
 */
import { readFile } from "node:fs/promises";
import { Buffer } from "node:buffer";
import {
  type CrlReporter,
  errorMessage,
  logger,
  metrics,
  type PeerRevocation,
  type RevocationAdmission,
  WeftError,
} from "../core/mod.ts";
import { crlDersOf, parseCrlDer, type ParsedCrl } from "./_crl_der.ts";
import { watchFile } from "./_file_watch.ts";
import {
  buildPath,
  type CertInfo,
  CrlSet,
  pathStatus,
  readCertInfo,
  verifySigned,
} from "./_crl_check.ts";

const log = logger("crl");

const crlMetrics = {
  rejections: metrics.counter(
    "istio_crl_policy_rejections_total",
    "The total number of connections rejected due to CRL certificate revocation (unstable)",
    ["reporter"],
  ),
  untracked: metrics.counter(
    "istio_crl_untracked_connections_total",
    "The total number of connections not tracked for CRL enforcement (unstable)",
    ["reporter"],
  ),
  reloads: metrics.counter(
    "weft_crl_reloads_total",
    "Loads of the CRL file by result (success, unchanged, missing, invalid)",
    ["result"],
  ),
  lists: metrics.gauge("weft_crl_lists", "CRLs loaded from the CRL file"),
  tracked: metrics.gauge(
    "weft_crl_tracked_connections",
    "HBONE connections re-checked on every CRL update",
  ),
};

export interface CrlStoreOptions {
  /** CRL_PATH / ca.crlFile. */
  readonly path: string;
  /** The mesh roots (PEM) that peer chains end at. */
  readonly roots: () => string;
  /** Fallback stat poll (default 2 s) and directory-event debounce (default 100 ms). */
  readonly pollMs?: number;
  readonly debounceMs?: number;
  /** How long a file that would drop every CRL (empty, or no CRL block) must stay so before it
   * is taken (default 1 s): a file truncated by a writer that has not written yet is no "no
   * revocations". */
  readonly settleMs?: number;
}

interface Tracked {
  readonly path: readonly CertInfo[];
  readonly reporter: CrlReporter;
  readonly revoked: () => void;
}

type LoadResult = "success" | "unchanged" | "missing" | "invalid";

const UNTRACKED: RevocationAdmission = Object.freeze({ ok: true, track: () => () => {} });

export class CrlStore implements PeerRevocation {
  /** undefined until a file was read (a missing file at start). */
  private set: CrlSet | undefined;
  private raw: Uint8Array | undefined;
  private generation = 0;
  private readonly tracked = new Set<Tracked>();
  private lastError: string | undefined;
  private loadedAt: Date | undefined;
  private stopWatch: (() => void) | undefined;
  private reloading: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Settle waits in progress (close() ends them). */
  private readonly settling = new Set<() => void>();
  private rootsPem = "";
  private rootInfos: CertInfo[] = [];

  private constructor(private readonly opts: CrlStoreOptions) {
    crlMetrics.tracked.collect(() => this.tracked.size);
  }

  /** Load and watch. A file that does not parse is an error (the node does not start); a missing
   * one is a warning (ztunnel: it may be mounted later). */
  static async open(opts: CrlStoreOptions): Promise<CrlStore> {
    const s = new CrlStore(opts);
    // Watching first: a change while the first load runs is not missed. reload() never rejects.
    s.stopWatch = watchFile(opts.path, () => void s.reload(), {
      pollMs: opts.pollMs ?? 2000,
      debounceMs: opts.debounceMs ?? 100,
    });
    const r = await s.load();
    if (r === "invalid") {
      s.close();
      throw new WeftError("crl_invalid", `Cannot load CRL file ${opts.path}: ${s.lastError}`, {
        hint: "a PEM file of X509 CRL blocks or one DER CRL (v2, with nextUpdate and cRLNumber)",
      });
    }
    if (r === "missing") {
      log.warn("crl file not found; enforcing once it appears", { path: opts.path });
    }
    return s;
  }

  admit(chain: readonly Uint8Array[], reporter: CrlReporter): RevocationAdmission {
    let path: CertInfo[] | undefined;
    try {
      path = buildPath(chain.map(readCertInfo), this.roots());
    } catch (err) {
      log.warn("peer chain does not parse; connection not tracked", { error: errorMessage(err) });
    }
    if (!path) {
      crlMetrics.untracked.inc({ reporter });
      return UNTRACKED;
    }
    const st = this.set ? pathStatus(path, this.set) : undefined;
    if (st && st.kind !== "good") {
      if (st.kind === "revoked") crlMetrics.rejections.inc({ reporter });
      return { ok: false, reason: st.kind, message: st.message };
    }
    const admittedAt = this.generation;
    const found = path;
    return {
      ok: true,
      track: (revoked) => {
        const t: Tracked = { path: found, reporter, revoked };
        this.tracked.add(t);
        // A reload between admission and tracking would have missed it.
        if (admittedAt !== this.generation) queueMicrotask(() => this.recheck([t]));
        return () => void this.tracked.delete(t);
      },
    };
  }

  /** Re-read the file now (also what the watcher and the poll do). Never rejects. */
  reload(): Promise<LoadResult> {
    const p = this.reloading.then(() => this.load());
    this.reloading = p.catch(() => {});
    return p.catch((err) => {
      log.error("crl reload failed", { error: errorMessage(err) });
      return "invalid" as const;
    });
  }

  summary(): Record<string, unknown> {
    return {
      path: this.opts.path,
      loaded: this.set !== undefined,
      loadedAt: this.loadedAt?.toISOString(),
      generation: this.generation,
      crls: (this.set?.crls ?? []).map((c) => ({
        crlNumber: c.crlNumberHex,
        thisUpdate: c.thisUpdate.toISOString(),
        nextUpdate: c.nextUpdate.toISOString(),
        revoked: c.revoked.size,
      })),
      trackedConnections: this.tracked.size,
      lastError: this.lastError,
    };
  }

  close(): void {
    this.closed = true;
    for (const done of this.settling) done();
    this.settling.clear();
    this.stopWatch?.();
    this.tracked.clear();
  }

  private roots(): CertInfo[] {
    const pem = this.opts.roots();
    if (pem !== this.rootsPem) {
      const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
      this.rootInfos = (blocks ?? []).map((b) =>
        readCertInfo(new Uint8Array(Buffer.from(b.replace(/-----[A-Z ]+-----|\s+/g, ""), "base64")))
      );
      this.rootsPem = pem;
    }
    return this.rootInfos;
  }

  private async load(): Promise<LoadResult> {
    const path = this.opts.path;
    let data: Uint8Array;
    try {
      data = new Uint8Array(await readFile(path));
    } catch (err) {
      if ((err as { code?: string }).code !== "ENOENT") return this.invalid(errorMessage(err));
      crlMetrics.reloads.inc({ result: "missing" });
      return "missing"; // keep what was loaded (ztunnel keeps its last set too)
    }
    if (this.raw && this.set && Buffer.from(data).equals(this.raw)) {
      crlMetrics.reloads.inc({ result: "unchanged" });
      return "unchanged";
    }
    let crls: ParsedCrl[];
    try {
      crls = crlDersOf(data).map((der, i) => {
        try {
          return parseCrlDer(der);
        } catch (err) {
          throw new Error(`CRL ${i + 1}: ${errorMessage(err)}`);
        }
      });
    } catch (err) {
      return this.invalid(errorMessage(err));
    }
    if (crls.length === 0 && (this.set?.crls.length ?? 0) > 0 && !(await this.settled(data))) {
      crlMetrics.reloads.inc({ result: "unchanged" });
      log.warn("crl file without CRLs changed again at once; keeping the last good CRLs", { path });
      return "unchanged"; // the write that follows triggers the next load
    }
    this.set = new CrlSet(crls);
    this.raw = data;
    this.generation++;
    this.lastError = undefined;
    this.loadedAt = new Date();
    crlMetrics.lists.set({}, crls.length);
    crlMetrics.reloads.inc({ result: "success" });
    log.info("crl loaded", {
      path,
      crls: crls.length,
      revoked: crls.reduce((n, c) => n + c.revoked.size, 0),
      generation: this.generation,
    });
    this.warnUnverified(crls);
    this.recheck([...this.tracked]);
    return "success";
  }

  /** Whether the file still holds `data` after the settle time (it was not cut short by a
   * writer: `> file` truncates first, writes after). */
  private async settled(data: Uint8Array): Promise<boolean> {
    await new Promise<void>((r) => {
      const t = setTimeout(() => {
        this.settling.delete(done);
        r();
      }, this.opts.settleMs ?? 1000);
      const done = () => {
        clearTimeout(t);
        r();
      };
      this.settling.add(done);
    });
    if (this.closed) return false;
    try {
      return Buffer.from(await readFile(this.opts.path)).equals(data);
    } catch {
      return false;
    }
  }

  /** A CRL in a mesh root's name that this root's key does not verify refuses the root's peers
   * (webpki): say so at load, not only per refused connection. */
  private warnUnverified(crls: readonly ParsedCrl[]): void {
    let roots: CertInfo[];
    try {
      roots = this.roots();
    } catch {
      return;
    }
    crls.forEach((c, i) => {
      const named = roots.filter((r) => r.subjectHex === c.issuerHex);
      const ok = named.some((r) =>
        verifySigned(c.tbs, c.algorithm, c.signature, r.spki, r.spkiHex) === true
      );
      if (named.length > 0 && !ok) {
        log.warn(
          "crl names a mesh root but does not verify with its key: that root's peers " +
            "are refused (crl_invalid) while it is loaded",
          { path: this.opts.path, crl: i + 1 },
        );
      }
    });
  }

  private invalid(message: string): LoadResult {
    this.lastError = message;
    crlMetrics.reloads.inc({ result: "invalid" });
    if (this.set) {
      log.warn("crl file rejected; keeping the last good CRLs", { path: this.opts.path, message });
    }
    return "invalid";
  }

  /** Close every tracked connection whose chain the current CRLs revoke (only a revocation
   * closes: a CRL that stopped verifying leaves live connections alone, as in ztunnel). */
  private recheck(list: readonly Tracked[]): void {
    const set = this.set;
    if (!set || this.closed) return;
    for (const t of list) {
      if (!this.tracked.has(t)) continue;
      const st = pathStatus(t.path, set);
      if (st.kind !== "revoked") continue;
      this.tracked.delete(t);
      crlMetrics.rejections.inc({ reporter: t.reporter });
      log.warn("closing connection: peer certificate revoked by CRL update", {
        reporter: t.reporter,
        detail: st.message,
      });
      try {
        t.revoked();
      } catch (err) {
        log.error("closing a revoked connection failed", { error: errorMessage(err) });
      }
    }
  }
}
