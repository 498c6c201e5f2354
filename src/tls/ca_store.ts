/**
 * Where the CA comes from. `auto`: a dev root kept in a state directory (`ca-cert.pem`,
 * `ca-key.pem` 0600), made once and reused; concurrent starts on one directory agree on a single
 * CA through an O_EXCL lock file, temp-file + rename writes (key first, cert last, so a present
 * cert means a complete pair) and a re-read of what landed on disk. `files`: an operator's root
 * cert + PKCS#8 key.
 */
import { chmod, mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { logger, WeftError } from "../core/mod.ts";
import { CertificateAuthority } from "./ca.ts";

const log = logger("tls");

export type CaConfig =
  | { readonly mode: "auto"; readonly stateDir: string }
  | { readonly mode: "files"; readonly certPath: string; readonly keyPath: string };

export const CA_CERT_FILE = "ca-cert.pem";
export const CA_KEY_FILE = "ca-key.pem";
const LOCK_FILE = "ca.lock";

export interface AutoCaOptions {
  readonly nowMs?: number;
  /** A lock older than this is taken to belong to a crashed process. */
  readonly lockStaleMs?: number;
  /** Give up waiting for another process after this long. */
  readonly waitMs?: number;
}

export async function openCa(cfg: CaConfig): Promise<CertificateAuthority> {
  return cfg.mode === "auto"
    ? await loadOrCreateCa(cfg.stateDir)
    : await loadCaFiles(cfg.certPath, cfg.keyPath);
}

export async function loadCaFiles(
  certPath: string,
  keyPath: string,
  opts: { nowMs?: number } = {},
): Promise<CertificateAuthority> {
  const certPem = await readText(certPath, "CA certificate");
  const keyPem = await readText(keyPath, "CA key");
  return await CertificateAuthority.fromPem(certPem, keyPem, {
    ...opts,
    source: `CA from ${certPath} + ${keyPath}`,
  });
}

export async function loadOrCreateCa(
  stateDir: string,
  opts: AutoCaOptions = {},
): Promise<CertificateAuthority> {
  const certPath = join(stateDir, CA_CERT_FILE);
  const keyPath = join(stateDir, CA_KEY_FILE);
  const lockPath = join(stateDir, LOCK_FILE);
  const staleMs = opts.lockStaleMs ?? 10_000;
  const deadline = Date.now() + (opts.waitMs ?? 15_000);
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const load = (): Promise<CertificateAuthority> =>
    loadCaFiles(certPath, keyPath, opts.nowMs === undefined ? {} : { nowMs: opts.nowMs });

  for (;;) {
    if (await exists(certPath)) return await load();
    const lock = await tryLock(lockPath);
    if (lock) {
      try {
        // Another process may have finished between our check and taking the lock.
        if (!(await exists(certPath))) await createCa(stateDir, certPath, keyPath, opts);
      } finally {
        await lock.close();
        await rm(lockPath, { force: true });
      }
      return await load();
    }
    if (Date.now() > deadline) {
      throw new WeftError(
        "ca_lock_timeout",
        `Cannot create the dev CA in ${stateDir}: another process holds ${lockPath}`,
        { hint: `if no weft is starting, delete ${lockPath}` },
      );
    }
    await breakStaleLock(lockPath, staleMs);
    // Inter-process wait: the other process signals nothing we can await, so poll briefly.
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function createCa(
  stateDir: string,
  certPath: string,
  keyPath: string,
  opts: AutoCaOptions,
): Promise<void> {
  const ca = await CertificateAuthority.generate(
    opts.nowMs === undefined ? {} : { nowMs: opts.nowMs },
  );
  await writeAtomic(stateDir, keyPath, await ca.exportKeyPem(), 0o600);
  await writeAtomic(stateDir, certPath, ca.rootPem, 0o644);
  log.info("dev CA created", { stateDir, serial: ca.serialNumber });
}

async function writeAtomic(dir: string, path: string, text: string, mode: number): Promise<void> {
  const tmp = join(dir, `.tmp-${crypto.randomUUID()}`);
  try {
    await writeFile(tmp, text, { mode, flag: "wx" });
    await chmod(tmp, mode); // the umask may have narrowed or widened nothing; be explicit
    await rename(tmp, path);
  } catch (cause) {
    await rm(tmp, { force: true });
    throw new WeftError("ca_write_failed", `Cannot write ${path}: ${String(cause)}`, { cause });
  }
}

async function tryLock(path: string): Promise<{ close(): Promise<void> } | undefined> {
  try {
    return await open(path, "wx", 0o600);
  } catch (err) {
    if ((err as { code?: string }).code === "EEXIST") return undefined;
    throw new WeftError("ca_lock_failed", `Cannot lock ${path}: ${String(err)}`, { cause: err });
  }
}

async function breakStaleLock(path: string, staleMs: number): Promise<void> {
  try {
    const st = await stat(path);
    if (Date.now() - st.mtimeMs > staleMs) {
      log.warn("removing stale CA lock", { path, ageMs: Date.now() - st.mtimeMs });
      await rm(path, { force: true });
    }
  } catch {
    // Gone already: the holder finished.
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (cause) {
    throw new WeftError("ca_file_unreadable", `Cannot read ${what} ${path}: ${String(cause)}`, {
      cause,
    });
  }
}
