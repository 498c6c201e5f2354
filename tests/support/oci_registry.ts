/**
 * A real OCI registry for wasm image tests: Debian's `docker-registry` (distribution 2.8) on a
 * loopback address, plain HTTP, optionally behind htpasswd basic auth; images pushed over its
 * HTTP API (blob upload + manifest PUT), in Istio's two formats: the OCI artifact (a
 * `application/vnd.module.wasm.content.layer.v1+wasm` layer) and the Docker "compat" image (one
 * tar.gz layer holding plugin.wasm).
 */
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

export const REGISTRY_BIN = "/usr/bin/docker-registry";

/** Why registry tests cannot run here, or undefined. */
export function registryMissing(): string | undefined {
  try {
    Deno.statSync(REGISTRY_BIN);
  } catch {
    return "docker-registry is not installed (apt-get install docker-registry; deno task setup)";
  }
  return undefined;
}

export interface Registry {
  /** host:port */
  readonly host: string;
  /** http(s)://host:port */
  readonly url: string;
  /** Trusts the registry's certificate (HTTPS registries). */
  readonly client: Deno.HttpClient | undefined;
  readonly auth: { username: string; password: string } | undefined;
  /** The Authorization header pushes use instead (a Bearer token with push scope). */
  pushAuthorization?: string;
  stop(): Promise<void>;
}

const sha = (b: Uint8Array): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** bcrypt for htpasswd, by the C library's crypt(3) through Python (Debian's libxcrypt). */
function bcrypt(password: string): string | undefined {
  const r = spawnSync("python3", [
    "-W",
    "ignore",
    "-c",
    "import crypt,sys;print(crypt.crypt(sys.argv[1],crypt.mksalt(crypt.METHOD_BLOWFISH,rounds=16)))",
    password,
  ], { encoding: "utf8" });
  const out = r.stdout?.trim() ?? "";
  return r.status === 0 && out.startsWith("$2") ? out : undefined;
}

export function bcryptMissing(): string | undefined {
  return bcrypt("x") ? undefined : "no bcrypt for htpasswd (python3 crypt with libxcrypt)";
}

/** Starts a registry on `ip` (a free port of its own); ready when GET /v2/ answers. */
export async function startRegistry(
  ip: string,
  opts: {
    auth?: { username: string; password: string };
    /** Token auth (tests/support/oci_token_server.ts); pushes then need a token too, so the
     * registry is given `push` credentials through the same server. */
    token?: { realm: string; service: string; issuer: string; certFile: string };
    /** Serve HTTPS with this certificate and key (PEM files), issued by `caFile`. */
    tls?: { certFile: string; keyFile: string; caFile: string };
  } = {},
): Promise<Registry> {
  const dir = await Deno.makeTempDir({ prefix: "weft-oci-reg-" });
  let child: Deno.ChildProcess | undefined;
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = 20000 + Math.floor(Math.random() * 30000);
      const host = `${ip}:${port}`;
      let auth = "";
      if (opts.auth) {
        const h = bcrypt(opts.auth.password);
        if (!h) throw new Error("cannot make an htpasswd entry");
        await Deno.writeTextFile(join(dir, "htpasswd"), `${opts.auth.username}:${h}\n`);
        auth = `auth:\n  htpasswd:\n    realm: weft-test\n    path: ${join(dir, "htpasswd")}\n`;
      }
      if (opts.token) {
        const t = opts.token;
        auth = `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n` +
          `    issuer: ${t.issuer}\n    rootcertbundle: ${t.certFile}\n`;
      }
      await Deno.writeTextFile(
        join(dir, "config.yml"),
        `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n` +
          `storage:\n  filesystem:\n    rootdirectory: ${join(dir, "data")}\n` +
          `http:\n  addr: ${host}\n` +
          (opts.tls
            ? `  tls:\n    certificate: ${opts.tls.certFile}\n    key: ${opts.tls.keyFile}\n`
            : "") +
          auth,
      );
      child = new Deno.Command(REGISTRY_BIN, {
        args: ["serve", join(dir, "config.yml")],
        stdout: "null",
        stderr: "null",
      }).spawn();
      const status = child.status;
      const client = opts.tls
        ? Deno.createHttpClient({ caCerts: [await Deno.readTextFile(opts.tls.caFile)] })
        : undefined;
      const deadline = Date.now() + 10_000;
      let up = false;
      let exited = false;
      status.then(() => (exited = true), () => (exited = true));
      while (!up && !exited && Date.now() < deadline) {
        try {
          const r = await fetch(
            `${opts.tls ? "https" : "http"}://${host}/v2/`,
            client ? { client } : {},
          );
          await r.body?.cancel();
          up = r.status === 200 || r.status === 401;
        } catch {
          await new Promise((r) => setTimeout(r, 50)); // poll for the listener (no ready line)
        }
      }
      if (up) {
        const c = child;
        return {
          host,
          url: `${opts.tls ? "https" : "http"}://${host}`,
          client,
          auth: opts.auth,
          stop: async () => {
            client?.close();
            try {
              c.kill("SIGTERM");
            } catch { /* already gone */ }
            await c.status;
            await Deno.remove(dir, { recursive: true });
          },
        };
      }
      client?.close();
      if (!exited) child.kill("SIGKILL");
      await status;
      child = undefined; // port taken (or slow): try another
    }
    throw new Error("docker-registry did not start");
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
}

function authHeader(r: Registry): Record<string, string> {
  if (r.pushAuthorization) return { authorization: r.pushAuthorization };
  return r.auth ? { authorization: `Basic ${btoa(`${r.auth.username}:${r.auth.password}`)}` } : {};
}

/** Monolithic blob upload (POST then PUT ?digest=). */
export async function pushBlob(r: Registry, repo: string, bytes: Uint8Array): Promise<string> {
  const digest = sha(bytes);
  const start = await fetch(`${r.url}/v2/${repo}/blobs/uploads/`, {
    ...(r.client ? { client: r.client } : {}),
    method: "POST",
    headers: authHeader(r),
  });
  await start.body?.cancel();
  if (start.status !== 202) throw new Error(`blob upload start: HTTP ${start.status}`);
  const loc = new URL(start.headers.get("location")!, r.url);
  loc.searchParams.set("digest", digest);
  const put = await fetch(loc, {
    ...(r.client ? { client: r.client } : {}),
    method: "PUT",
    headers: { ...authHeader(r), "content-type": "application/octet-stream" },
    body: bytes as Uint8Array<ArrayBuffer>,
  });
  await put.body?.cancel();
  if (put.status !== 201) throw new Error(`blob upload: HTTP ${put.status}`);
  return digest;
}

/** PUT a manifest; returns its digest. */
export async function pushManifest(
  r: Registry,
  repo: string,
  tag: string,
  manifest: Record<string, unknown>,
): Promise<string> {
  const body = new TextEncoder().encode(JSON.stringify(manifest));
  const res = await fetch(`${r.url}/v2/${repo}/manifests/${tag}`, {
    ...(r.client ? { client: r.client } : {}),
    method: "PUT",
    headers: { ...authHeader(r), "content-type": String(manifest.mediaType) },
    body,
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`manifest PUT: HTTP ${res.status} ${text}`);
  return sha(body);
}

const CONFIG_WASM = "application/vnd.module.wasm.config.v1+json";
const LAYER_WASM = "application/vnd.module.wasm.content.layer.v1+wasm";

/** Istio's OCI artifact: one wasm layer (the module). Returns the manifest digest. */
export async function pushArtifact(
  r: Registry,
  repo: string,
  tag: string,
  module: Uint8Array,
): Promise<string> {
  const config = new TextEncoder().encode("{}");
  const cd = await pushBlob(r, repo, config);
  const ld = await pushBlob(r, repo, module);
  return await pushManifest(r, repo, tag, {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: CONFIG_WASM, digest: cd, size: config.length },
    layers: [{ mediaType: LAYER_WASM, digest: ld, size: module.length }],
  });
}

/** A one-file ustar archive. */
export function tarOf(name: string, data: Uint8Array): Uint8Array {
  const h = new Uint8Array(512);
  const put = (s: string, off: number) => h.set(new TextEncoder().encode(s), off);
  put(name, 0);
  put("0000644\0", 100);
  put("0000000\0", 108);
  put("0000000\0", 116);
  put(data.length.toString(8).padStart(11, "0") + "\0", 124);
  put("00000000000\0", 136);
  put("        ", 148);
  put("0", 156);
  put("ustar\0", 257);
  put("00", 263);
  const sum = h.reduce((a, b) => a + b, 0);
  put(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  const pad = Math.ceil(data.length / 512) * 512;
  const out = new Uint8Array(512 + pad + 1024);
  out.set(h, 0);
  out.set(data, 512);
  return out;
}

/** Istio's compat variant as a Docker v2 schema 2 image: one tar.gz layer with plugin.wasm. */
export async function pushCompat(
  r: Registry,
  repo: string,
  tag: string,
  module: Uint8Array,
): Promise<string> {
  const config = new TextEncoder().encode(
    JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers" } }),
  );
  const layer = new Uint8Array(gzipSync(tarOf("plugin.wasm", module)));
  const cd = await pushBlob(r, repo, config);
  const ld = await pushBlob(r, repo, layer);
  return await pushManifest(r, repo, tag, {
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: {
      mediaType: "application/vnd.docker.container.image.v1+json",
      digest: cd,
      size: config.length,
    },
    layers: [{
      mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip",
      digest: ld,
      size: layer.length,
    }],
  });
}
