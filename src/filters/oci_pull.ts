/**
 * Pulls a wasm module from an OCI registry (distribution API v2), the formats Istio's
 * pkg/wasm/imagefetcher.go accepts: an OCI artifact whose layer has media type
 * `application/vnd.module.wasm.content.layer.v1+wasm` (the module itself), or a Docker/OCI
 * "compat" image whose single layer is a tar(.gz) holding `plugin.wasm`. Anonymous, Bearer token
 * (401 `WWW-Authenticate: Bearer realm=…`) and basic auth from a docker config JSON pull secret.
 * HTTPS unless the registry is listed as insecure. Every manifest and blob is checked against
 * its digest; every size and the whole pull's time are bounded, so a hostile registry can cost
 * at most `maxBytes` of memory and `timeoutMs` of time.
 */
import { createHash } from "node:crypto";
import type { OciRef } from "../istio/mod.ts";
import { concat, gunzipBounded, pluginFromTar } from "./oci_extract.ts";

export const WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", ");
const TAR_LAYERS = new Set([
  "application/vnd.oci.image.layer.v1.tar+gzip",
  "application/vnd.oci.image.layer.v1.tar",
  "application/vnd.docker.image.rootfs.diff.tar.gzip",
  "application/vnd.docker.image.rootfs.diff.tar",
]);
const MAX_MANIFEST_BYTES = 4 << 20;
const MAX_TOKEN_BYTES = 64 << 10;
const MAX_REDIRECTS = 5;
const REDIRECT = new Set([301, 302, 303, 307, 308]);

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

export interface PullOptions {
  readonly credentials?: Credentials | undefined;
  /** Plain HTTP (a registry listed as insecure). */
  readonly insecure: boolean;
  /** The largest module, layer and decompressed layer accepted. */
  readonly maxBytes: number;
  readonly signal: AbortSignal;
}

export interface Pulled {
  readonly module: Uint8Array;
  /** The image manifest's digest (`sha256:…`; the platform's one under an index), which
   * Istio compares a WasmPlugin's `sha256` with. */
  readonly digest: string;
}

const sha256 = (b: Uint8Array): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** The credentials for `registry` in a docker config JSON (`{"auths": {host: {auth | username,
 * password}}}`, a `kubernetes.io/dockerconfigjson` Secret's `.dockerconfigjson`). */
export function credentialsFor(dockerConfig: string, registry: string): Credentials | undefined {
  let cfg: unknown;
  try {
    cfg = JSON.parse(dockerConfig);
  } catch {
    throw new TypeError("pull secret is not docker config JSON");
  }
  const auths = (cfg as { auths?: Record<string, Record<string, unknown>> })?.auths;
  if (!auths || typeof auths !== "object") throw new TypeError("pull secret has no auths");
  const hub = registry === "index.docker.io";
  for (const [k, v] of Object.entries(auths)) {
    const host = k.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
    if (host !== registry && !(hub && /(^|\.)docker\.io$/.test(host))) continue;
    if (typeof v?.auth === "string") {
      const t = new TextDecoder().decode(Uint8Array.from(atob(v.auth), (c) => c.charCodeAt(0)));
      const i = t.indexOf(":");
      if (i > 0) return { username: t.slice(0, i), password: t.slice(i + 1) };
    }
    if (typeof v?.username === "string" && typeof v?.password === "string") {
      return { username: v.username, password: v.password };
    }
  }
  return undefined;
}

/** Reads at most `max` bytes of a response body; more is an error (the stream is cancelled). */
async function readBounded(res: Response, max: number): Promise<Uint8Array> {
  const len = Number(res.headers.get("content-length") ?? "0");
  if (len > max) {
    await res.body?.cancel().catch(() => {});
    throw new RangeError(`response of ${len} bytes exceeds the bound of ${max}`);
  }
  const parts: Uint8Array[] = [];
  let n = 0;
  const reader = res.body?.getReader();
  if (!reader) return new Uint8Array(0);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      if (n > max) throw new RangeError(`response exceeds the bound of ${max} bytes`);
      parts.push(value);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return concat(parts, n);
}

function challenge(h: string | null): { scheme: string; params: Record<string, string> } {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(h ?? "");
  const params: Record<string, string> = {};
  for (const p of (m?.[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)) params[p[1]!] = p[2]!;
  return { scheme: (m?.[1] ?? "").toLowerCase(), params };
}

class Session {
  private authorization: string | undefined;
  private readonly base: string;
  constructor(private readonly ref: OciRef, private readonly o: PullOptions) {
    this.base = `${o.insecure ? "http" : "https"}://${ref.registry}/v2/${ref.repository}`;
    if (o.credentials) this.authorization = basic(o.credentials);
  }

  /** GET with the current authorization; one 401 is answered by the registry's challenge. */
  async get(path: string, accept?: string): Promise<Response> {
    const url = new URL(`${this.base}${path}`);
    let res = await this.hop(url, accept, true);
    if (res.status === 401) {
      await res.body?.cancel().catch(() => {});
      await this.authorize(challenge(res.headers.get("www-authenticate")));
      res = await this.hop(url, accept, true);
    }
    // Redirects (blobs on a CDN) are followed here, not by fetch: at most MAX_REDIRECTS, never
    // from https to http, and the registry's credentials only to the registry's own origin.
    let at = url;
    for (let n = 0; REDIRECT.has(res.status); n++) {
      await res.body?.cancel().catch(() => {});
      const loc = res.headers.get("location");
      if (n >= MAX_REDIRECTS || !loc) throw new Error(`GET ${path}: too many or empty redirects`);
      at = new URL(loc, at);
      if (at.protocol !== "https:" && !(this.o.insecure && at.protocol === "http:")) {
        throw new Error(`GET ${path}: redirect to ${at.protocol} refused`);
      }
      res = await this.hop(at, accept, at.origin === url.origin);
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw new Error(`GET ${path}: HTTP ${res.status}`);
    }
    return res;
  }

  private hop(url: URL, accept: string | undefined, withAuth: boolean): Promise<Response> {
    return fetch(url, {
      signal: this.o.signal,
      redirect: "manual",
      headers: {
        ...(accept ? { accept } : {}),
        ...(withAuth && this.authorization ? { authorization: this.authorization } : {}),
      },
    });
  }

  private async authorize(c: { scheme: string; params: Record<string, string> }): Promise<void> {
    if (c.scheme === "basic") {
      if (!this.o.credentials) {
        throw new Error("registry wants basic auth and no pull secret has it");
      }
      this.authorization = basic(this.o.credentials);
      return;
    }
    if (c.scheme !== "bearer" || !c.params.realm) throw new Error("registry refused: HTTP 401");
    const u = new URL(c.params.realm);
    if (u.protocol !== "https:" && !(this.o.insecure && u.protocol === "http:")) {
      throw new Error(`token realm ${u.origin} is not https`);
    }
    if (c.params.service) u.searchParams.set("service", c.params.service);
    u.searchParams.set("scope", c.params.scope ?? `repository:${this.ref.repository}:pull`);
    const res = await fetch(u, {
      signal: this.o.signal,
      headers: this.o.credentials ? { authorization: basic(this.o.credentials) } : {},
    });
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw new Error(`token from ${u.origin}: HTTP ${res.status}`);
    }
    const body = JSON.parse(new TextDecoder().decode(await readBounded(res, MAX_TOKEN_BYTES)));
    const token = body?.token ?? body?.access_token;
    if (typeof token !== "string" || token === "") throw new Error("token response has no token");
    this.authorization = `Bearer ${token}`;
  }

  /** A manifest by tag or digest; checked against the digest when one is known. */
  async manifest(reference: string, digest?: string): Promise<{ doc: Manifest; digest: string }> {
    const res = await this.get(`/manifests/${reference}`, ACCEPT);
    const bytes = await readBounded(res, MAX_MANIFEST_BYTES);
    const got = sha256(bytes);
    if (digest !== undefined && got !== digest) {
      throw new DigestMismatch(`manifest ${reference} has digest ${got}`);
    }
    const doc = JSON.parse(new TextDecoder().decode(bytes)) as Manifest;
    if (!doc || typeof doc !== "object") throw new TypeError("manifest is not a JSON object");
    const mediaType = doc.mediaType ?? res.headers.get("content-type")?.split(";")[0];
    return { doc: { ...doc, mediaType }, digest: got };
  }

  async blob(d: Descriptor): Promise<Uint8Array> {
    if (typeof d.digest !== "string" || !/^sha256:[0-9a-f]{64}$/.test(d.digest)) {
      throw new TypeError("layer without a sha256 digest");
    }
    if (typeof d.size === "number" && d.size > this.o.maxBytes) {
      throw new RangeError(`layer of ${d.size} bytes exceeds the bound of ${this.o.maxBytes}`);
    }
    const bytes = await readBounded(await this.get(`/blobs/${d.digest}`), this.o.maxBytes);
    if (sha256(bytes) !== d.digest) throw new DigestMismatch(`blob ${d.digest} does not match`);
    return bytes;
  }
}

interface Descriptor {
  mediaType?: string;
  digest?: string;
  size?: number;
  platform?: { os?: string; architecture?: string };
}
interface Manifest {
  mediaType?: string | undefined;
  manifests?: Descriptor[];
  layers?: Descriptor[];
}

/** The pinned digest did not match what the registry served (a sha256 failure, not a fetch). */
export class DigestMismatch extends Error {}

function basic(c: Credentials): string {
  const b = new TextEncoder().encode(`${c.username}:${c.password}`);
  return `Basic ${btoa(String.fromCharCode(...b))}`;
}

/** Resolves the manifest digest of `ref` and pulls its module. */
export async function pullWasm(ref: OciRef, o: PullOptions): Promise<Pulled> {
  const s = new Session(ref, o);
  let { doc, digest } = await s.manifest(ref.digest ?? ref.tag!, ref.digest);
  if (doc.mediaType === OCI_INDEX || doc.mediaType === DOCKER_LIST || doc.manifests) {
    const list = doc.manifests ?? [];
    const pick = list.length === 1
      ? list[0]
      : list.find((m) => m.platform?.os === "linux" && m.platform?.architecture === "amd64");
    if (!pick?.digest) throw new TypeError("image index has no linux/amd64 manifest");
    ({ doc, digest } = await s.manifest(pick.digest, pick.digest));
  }
  const layers = doc.layers ?? [];
  const wasm = layers.find((l) => l.mediaType === WASM_LAYER);
  if (wasm) return { module: wasmOnly(await s.blob(wasm), o.maxBytes), digest };
  // Istio's compat variant: the last layer, a tar(.gz) with plugin.wasm.
  const last = layers[layers.length - 1];
  if (!last || !TAR_LAYERS.has(last.mediaType ?? "")) {
    throw new TypeError(
      `not a wasm image: want a ${WASM_LAYER} layer or a tar layer holding plugin.wasm`,
    );
  }
  const layer = await s.blob(last);
  const gz = layer[0] === 0x1f && layer[1] === 0x8b;
  // A tar holds the module plus headers and padding: allow a little more than the module bound.
  const tar = gz ? await gunzipBounded(layer, o.maxBytes + (1 << 20)) : layer;
  const module = pluginFromTar(tar);
  if (!module) throw new TypeError("image layer has no plugin.wasm");
  return { module: wasmOnly(module.slice(), o.maxBytes), digest };
}

/** Istio's isValidWasmBinary: the `\0asm` magic; and the module bound. */
function wasmOnly(b: Uint8Array, max: number): Uint8Array {
  if (b.length > max) throw new RangeError(`module of ${b.length} bytes exceeds the bound`);
  if (b[0] !== 0 || b[1] !== 0x61 || b[2] !== 0x73 || b[3] !== 0x6d) {
    throw new TypeError("the image's module is not wasm (no \\0asm magic)");
  }
  return b;
}
