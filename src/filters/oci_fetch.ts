/**
 * A WasmPlugin's OCI module, through an on-disk cache by digest (l7-semantics W2–W4): the pull
 * policy, pull secret and insecure registries as Istio's agent reads them. The policy and secret
 * travel in the plugin's vm env as istiod sends them over ECDS (`ISTIO_META_WASM_IMAGE_PULL_*`);
 * they are taken out before the plugin sees its env (`withoutPullEnv`).
 *
 * Environment: WEFT_WASM_CACHE_DIR (default `$WEFT_STATE_DIR/wasm`, else `.weft/wasm`);
 * WEFT_WASM_INSECURE_REGISTRIES (or Istio's WASM_INSECURE_REGISTRIES): comma-separated hosts
 * (`*` = all) pulled over plain HTTP; WEFT_WASM_MAX_BYTES (default 64 MiB) bounds a module, a
 * layer and a decompressed layer; WEFT_WASM_CACHE_MAX_BYTES (default 1 GiB) the cached modules.
 */
import type { FilterRef } from "../core/mod.ts";
import { logger } from "../core/mod.ts";
import { createHash } from "node:crypto";
import process from "node:process";
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type OciRef, ociRefText, parseOciRef } from "../istio/mod.ts";
import { credentialsFor, DigestMismatch, pullWasm } from "./oci_pull.ts";

export const PULL_SECRET_ENV = "ISTIO_META_WASM_IMAGE_PULL_SECRET";
export const PULL_POLICY_ENV = "ISTIO_META_WASM_IMAGE_PULL_POLICY";
export const RESOURCE_VERSION_ENV = "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION";
const PULL_ENV = [PULL_SECRET_ENV, PULL_POLICY_ENV, RESOURCE_VERSION_ENV];

const log = logger("filters");
const DEFAULT_MAX_BYTES = 64 << 20;
const DEFAULT_CACHE_MAX_BYTES = 1 << 30;

/** Thrown with a stable meaning: `sha256` when a pinned digest did not match, else a fetch. */
export class OciFetchError extends Error {
  constructor(message: string, readonly kind: "fetch" | "sha256", cause?: unknown) {
    super(message, { cause });
  }
}

function env(name: string): string | undefined {
  return process.env[name];
}

export function cacheDir(): string {
  return env("WEFT_WASM_CACHE_DIR") ?? join(env("WEFT_STATE_DIR") ?? ".weft", "wasm");
}

export function isInsecure(registry: string): boolean {
  const list = env("WEFT_WASM_INSECURE_REGISTRIES") ?? env("WASM_INSECURE_REGISTRIES") ?? "";
  return list.split(",").map((s) => s.trim()).some((h) => h === "*" || h === registry);
}

function positive(v: string | undefined, dflt: number): number {
  const n = Number(v);
  return v !== undefined && Number.isInteger(n) && n > 0 ? n : dflt;
}

function maxBytes(): number {
  return positive(env("WEFT_WASM_MAX_BYTES"), DEFAULT_MAX_BYTES);
}

/** IfNotPresent unless set; an unset policy on a `:latest` tag is Always (istio/api). */
export function pullPolicy(ref: OciRef, set: string | undefined): "Always" | "IfNotPresent" {
  if (set === "Always" || set === "IfNotPresent") return set;
  return ref.digest === undefined && ref.tag === "latest" ? "Always" : "IfNotPresent";
}

/** The ref as its plugin sees it: without the pull settings in its env. */
export function withoutPullEnv(ref: FilterRef): FilterRef {
  const e = ref.runtime?.env;
  if (!e || !PULL_ENV.some((k) => k in e)) return ref;
  const rest = Object.fromEntries(Object.entries(e).filter(([k]) => !PULL_ENV.includes(k)));
  return { ...ref, runtime: { ...ref.runtime, env: rest } };
}

const hex = (b: Uint8Array | string): string => createHash("sha256").update(b).digest("hex");

async function cached(
  dir: string,
  key: string,
  sha256: string | undefined,
): Promise<Uint8Array | undefined> {
  try {
    const { module, digest } = JSON.parse(await readFile(join(dir, "refs", key), "utf8"));
    if (typeof module !== "string" || !/^[0-9a-f]{64}$/.test(module)) return undefined;
    if (sha256 && digest !== `sha256:${sha256.toLowerCase()}`) return undefined;
    const file = join(dir, "modules", `${module}.wasm`);
    const bytes = await readFile(file);
    if (hex(bytes) !== module) return undefined; // a corrupt file is pulled again
    const now = new Date();
    await utimes(file, now, now).catch(() => {}); // last use, for the size bound's eviction
    return bytes;
  } catch {
    return undefined;
  }
}

async function store(dir: string, key: string, bytes: Uint8Array, digest: string): Promise<void> {
  const module = hex(bytes);
  const tmp = `.tmp-${process.pid}-${crypto.randomUUID()}`;
  await mkdir(join(dir, "modules"), { recursive: true });
  await mkdir(join(dir, "refs"), { recursive: true });
  await writeFile(join(dir, "modules", tmp), bytes);
  await rename(join(dir, "modules", tmp), join(dir, "modules", `${module}.wasm`));
  await writeFile(join(dir, "refs", tmp), JSON.stringify({ digest, module }));
  await rename(join(dir, "refs", tmp), join(dir, "refs", key));
  await evict(dir, `${module}.wasm`);
}

/** Keeps the modules within WEFT_WASM_CACHE_MAX_BYTES: the least recently used go first (never
 * `keep`, the one just stored); references to a removed module then miss and pull again. */
async function evict(dir: string, keep: string): Promise<void> {
  const max = positive(env("WEFT_WASM_CACHE_MAX_BYTES"), DEFAULT_CACHE_MAX_BYTES);
  const mods = join(dir, "modules");
  const files = await Promise.all(
    (await readdir(mods)).filter((f) => f.endsWith(".wasm")).map(async (f) => {
      const st = await stat(join(mods, f));
      return { f, size: st.size, used: st.mtimeMs };
    }),
  );
  let total = files.reduce((a, x) => a + x.size, 0);
  files.sort((a, b) => a.used - b.used);
  for (const x of files) {
    if (total <= max) break;
    if (x.f === keep) continue;
    await rm(join(mods, x.f), { force: true });
    total -= x.size;
  }
}

/** The module of an `oci://` ref: from the cache under IfNotPresent, else pulled (and cached). */
export async function fetchOciModule(ref: FilterRef, signal: AbortSignal): Promise<Uint8Array> {
  const url = ref.url!;
  let oci: OciRef;
  try {
    oci = parseOciRef(url);
  } catch (e) {
    throw new OciFetchError(`bad OCI reference ${url}: ${(e as Error).message}`, "fetch", e);
  }
  const e = ref.runtime?.env ?? {};
  const policy = pullPolicy(oci, e[PULL_POLICY_ENV]);
  const dir = cacheDir();
  const text = ociRefText(oci);
  const secret = e[PULL_SECRET_ENV];
  // The node serves many namespaces: an image pulled with one pull secret is cached for that
  // secret only, so a plugin without it cannot load a private module from the cache (what
  // Kubernetes' KEP-2535 does for container images).
  const key = hex(`${text}\u0000${secret ? hex(secret) : ""}`);
  if (policy === "IfNotPresent") {
    const hit = await cached(dir, key, ref.sha256);
    if (hit) return hit;
  }
  let pulled;
  try {
    const credentials = secret ? credentialsFor(secret, oci.registry) : undefined;
    pulled = await pullWasm(oci, {
      credentials,
      insecure: isInsecure(oci.registry),
      maxBytes: maxBytes(),
      signal,
    });
  } catch (err) {
    const kind = err instanceof DigestMismatch ? "sha256" : "fetch";
    throw new OciFetchError(`cannot pull ${text}: ${(err as Error).message}`, kind, err);
  }
  // W3: a WasmPlugin's sha256 names the image (Istio compares it with the manifest digest).
  if (ref.sha256 && pulled.digest !== `sha256:${ref.sha256.toLowerCase()}`) {
    throw new OciFetchError(
      `${text} has digest ${pulled.digest}, not the sha256 the plugin pins`,
      "sha256",
    );
  }
  try {
    await store(dir, key, pulled.module, pulled.digest);
  } catch (err) {
    // A full or read-only disk costs the cache, not the plugin.
    log.warn("wasm cache write failed", { url, err: (err as Error).message });
  }
  return pulled.module;
}
