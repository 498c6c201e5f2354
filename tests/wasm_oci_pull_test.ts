/**
 * Pulling WasmPlugin modules from a real OCI registry (Debian's docker-registry, distribution
 * 2.8) through the node's fetch path (l7-semantics W2–W4): Istio's two image formats, tag and
 * digest references, digest and sha256 checks, the size bound, basic auth from a docker config
 * JSON pull secret, and the on-disk cache under IfNotPresent and Always.
 */
import assert from "node:assert/strict";
import type { FilterRef } from "../src/core/mod.ts";
import { errorCode } from "../src/core/mod.ts";
import { fetchModule } from "../src/filters/mod.ts";
import { loopbackBlock } from "./support/weft_proc.ts";
import { cAddHeaderWith } from "./support/proxy_wasm_kit.ts";
import {
  bcryptMissing,
  pushArtifact,
  pushBlob,
  pushCompat,
  pushManifest,
  type Registry,
  registryMissing,
  startRegistry,
} from "./support/oci_registry.ts";
import { openSslMissing, startTokenServer } from "./support/oci_token_server.ts";

const missing = registryMissing();

function ref(url: string, extra: Partial<FilterRef> = {}, env: Record<string, string> = {}) {
  return {
    name: "oci",
    type: "weft.proxy_wasm",
    url,
    sha256: undefined,
    config: {},
    failPolicy: "FAIL_CLOSE",
    phase: "UNSPECIFIED",
    priority: 0,
    runtime: { env },
    ...extra,
  } as FilterRef;
}

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return errorCode(e);
  }
}

async function withEnv(vars: Record<string, string>, fn: () => Promise<void>): Promise<void> {
  const old = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
  try {
    await fn();
  } finally {
    for (const [k, v] of Object.entries(old)) {
      v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
    }
  }
}

Deno.test({
  name: `OCI pull: artifact and compat images, tag and digest, bounds, cache policy${
    missing ? ` (skipped: ${missing})` : ""
  }`,
  ignore: missing !== undefined,
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    const module = await Deno.readFile(await cAddHeaderWith("oci"));
    const ip = loopbackBlock();
    const reg = await startRegistry(ip(5));
    const cache = await Deno.makeTempDir({ prefix: "weft-oci-cache-" });
    try {
      await withEnv({
        WEFT_WASM_CACHE_DIR: cache,
        WEFT_WASM_INSECURE_REGISTRIES: reg.host,
        WEFT_WASM_MAX_BYTES: String(1 << 20),
      }, async () => {
        const art = await pushArtifact(reg, "wasm/artifact", "v1", module);
        const compat = await pushCompat(reg, "wasm/compat", "v1", module);
        const same = (b: Uint8Array) => assert.deepEqual(new Uint8Array(b), module);
        same(await fetchModule(ref(`oci://${reg.host}/wasm/artifact:v1`)));
        same(await fetchModule(ref(`oci://${reg.host}/wasm/compat:v1`)));
        same(await fetchModule(ref(`oci://${reg.host}/wasm/compat@${compat}`)));
        // W3: sha256 names the image digest; another one is a sha256 failure.
        same(
          await fetchModule(ref(`oci://${reg.host}/wasm/artifact:v1`, {
            sha256: art.slice(7),
          }, { ISTIO_META_WASM_IMAGE_PULL_POLICY: "Always" })),
        );
        assert.equal(
          await code(fetchModule(ref(`oci://${reg.host}/wasm/artifact:v1`, {
            sha256: "f".repeat(64),
          }, { ISTIO_META_WASM_IMAGE_PULL_POLICY: "Always" }))),
          "filter_sha256",
        );
        // An OCI index: the linux/amd64 entry is taken (the arm64 one holds another module).
        const other = await Deno.readFile(await cAddHeaderWith("oci-arm"));
        const armDigest = await pushArtifact(reg, "wasm/multi", "arm", other);
        const amdDigest = await pushArtifact(reg, "wasm/multi", "amd", module);
        const entry = async (digest: string, architecture: string) => {
          const head = await fetch(`${reg.url}/v2/wasm/multi/manifests/${digest}`, {
            method: "HEAD",
            headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
          });
          await head.body?.cancel();
          return {
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            digest,
            size: Number(head.headers.get("content-length")),
            platform: { os: "linux", architecture },
          };
        };
        await pushManifest(reg, "wasm/multi", "v1", {
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.index.v1+json",
          manifests: [await entry(armDigest, "arm64"), await entry(amdDigest, "amd64")],
        });
        same(await fetchModule(ref(`oci://${reg.host}/wasm/multi:v1`)));
        // A digest the registry does not hold.
        assert.equal(
          await code(fetchModule(ref(`oci://${reg.host}/wasm/artifact@sha256:${"e".repeat(64)}`))),
          "filter_fetch",
        );
        // Plain HTTPS by default: this registry is plain HTTP, so without the insecure listing
        // the pull fails.
        await withEnv({ WEFT_WASM_INSECURE_REGISTRIES: "" }, async () => {
          assert.equal(
            await code(fetchModule(ref(`oci://${reg.host}/wasm/artifact:v1`, {}, {
              ISTIO_META_WASM_IMAGE_PULL_POLICY: "Always",
            }))),
            "filter_fetch",
          );
        });
        // A layer over the bound (declared size), and one whose declared size lies.
        const big = new Uint8Array((1 << 20) + 4096);
        big.set(module.subarray(0, 8));
        await pushArtifact(reg, "wasm/big", "v1", big);
        assert.equal(await code(fetchModule(ref(`oci://${reg.host}/wasm/big:v1`))), "filter_fetch");
        const cfg = new TextEncoder().encode("{}");
        const cd = await pushBlob(reg, "wasm/liar", cfg);
        const bd = await pushBlob(reg, "wasm/liar", big);
        await pushManifest(reg, "wasm/liar", "v1", {
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: { mediaType: "application/vnd.module.wasm.config.v1+json", digest: cd, size: 2 },
          layers: [{
            mediaType: "application/vnd.module.wasm.content.layer.v1+wasm",
            digest: bd,
            size: 100,
          }],
        });
        assert.equal(
          await code(fetchModule(ref(`oci://${reg.host}/wasm/liar:v1`))),
          "filter_fetch",
        );
        // Not a wasm image at all.
        await pushCompat(reg, "wasm/notwasm", "v1", new TextEncoder().encode("hello"));
        assert.equal(
          await code(fetchModule(ref(`oci://${reg.host}/wasm/notwasm:v1`))),
          "filter_fetch",
        );

        // Cache: with the registry gone, IfNotPresent is served from disk; Always (and an
        // unset policy on :latest) pull again and fail.
        await pushArtifact(reg, "wasm/artifact", "latest", module);
        same(await fetchModule(ref(`oci://${reg.host}/wasm/artifact`)));
        await reg.stop();
        same(await fetchModule(ref(`oci://${reg.host}/wasm/artifact:v1`)));
        same(await fetchModule(ref(`oci://${reg.host}/wasm/compat@${compat}`)));
        assert.equal(
          await code(fetchModule(ref(`oci://${reg.host}/wasm/artifact:v1`, {}, {
            ISTIO_META_WASM_IMAGE_PULL_POLICY: "Always",
          }))),
          "filter_fetch",
        );
        assert.equal(
          await code(fetchModule(ref(`oci://${reg.host}/wasm/artifact`))),
          "filter_fetch",
        );
        same(
          await fetchModule(ref(`oci://${reg.host}/wasm/artifact`, {}, {
            ISTIO_META_WASM_IMAGE_PULL_POLICY: "IfNotPresent",
          })),
        );
      });
    } finally {
      await reg.stop().catch(() => {});
      await Deno.remove(cache, { recursive: true });
    }
  },
});

Deno.test({
  name: `OCI pull: basic auth from an imagePullSecret (docker config JSON)${
    missing ?? bcryptMissing() ? ` (skipped: ${missing ?? bcryptMissing()})` : ""
  }`,
  ignore: missing !== undefined || bcryptMissing() !== undefined,
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    const module = await Deno.readFile(await cAddHeaderWith("oci"));
    const ip = loopbackBlock();
    const auth = { username: "puller", password: "s3cret-pw" };
    const reg = await startRegistry(ip(6), { auth });
    const cache = await Deno.makeTempDir({ prefix: "weft-oci-cache-" });
    try {
      await withEnv(
        { WEFT_WASM_CACHE_DIR: cache, WEFT_WASM_INSECURE_REGISTRIES: reg.host },
        async () => {
          await pushArtifact(reg, "wasm/private", "v1", module);
          const url = `oci://${reg.host}/wasm/private:v1`;
          assert.equal(await code(fetchModule(ref(url))), "filter_fetch");
          const wrong = JSON.stringify({
            auths: { [reg.host]: { auth: btoa("puller:wrong") } },
          });
          assert.equal(
            await code(fetchModule(ref(url, {}, { ISTIO_META_WASM_IMAGE_PULL_SECRET: wrong }))),
            "filter_fetch",
          );
          const secret = JSON.stringify({
            auths: { [`http://${reg.host}`]: { auth: btoa(`${auth.username}:${auth.password}`) } },
          });
          assert.deepEqual(
            await fetchModule(ref(url, {}, { ISTIO_META_WASM_IMAGE_PULL_SECRET: secret })),
            module,
          );
          // Cached for that secret only: a plugin without it cannot read it from the cache.
          assert.equal(await code(fetchModule(ref(url))), "filter_fetch");
        },
      );
    } finally {
      await reg.stop();
      await Deno.remove(cache, { recursive: true });
    }
  },
});

Deno.test({
  name: `OCI pull: Bearer token auth (401 challenge → token realm with the pull secret)${
    missing ?? openSslMissing() ? ` (skipped: ${missing ?? openSslMissing()})` : ""
  }`,
  ignore: missing !== undefined || openSslMissing() !== undefined,
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    const module = await Deno.readFile(await cAddHeaderWith("oci"));
    const ip = loopbackBlock();
    const dir = await Deno.makeTempDir({ prefix: "weft-oci-token-" });
    const user = { username: "robot", password: "tok-pw" };
    const tokens = await startTokenServer(ip(8), dir, user);
    let reg: Registry | undefined;
    try {
      reg = await startRegistry(ip(7), { token: tokens });
      // Push with a push-scoped token, fetched as any client would.
      const t = await fetch(
        `${tokens.realm}?service=${tokens.service}&scope=repository:wasm/tok:push,pull`,
        { headers: { authorization: `Basic ${btoa(`${user.username}:${user.password}`)}` } },
      );
      reg.pushAuthorization = `Bearer ${(await t.json()).token}`;
      await pushArtifact(reg, "wasm/tok", "v1", module);
      const url = `oci://${reg.host}/wasm/tok:v1`;
      await withEnv(
        { WEFT_WASM_CACHE_DIR: dir, WEFT_WASM_INSECURE_REGISTRIES: reg.host },
        async () => {
          const before = tokens.issued();
          // Anonymous: the token server refuses, so does the registry.
          assert.equal(await code(fetchModule(ref(url))), "filter_fetch");
          const secret = JSON.stringify({
            auths: { [reg!.host]: { username: user.username, password: user.password } },
          });
          assert.deepEqual(
            new Uint8Array(
              await fetchModule(ref(url, {}, { ISTIO_META_WASM_IMAGE_PULL_SECRET: secret })),
            ),
            module,
          );
          assert.equal(tokens.issued(), before + 1, "one token for the pull");
        },
      );
    } finally {
      await reg?.stop();
      await tokens.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: `OCI pull: a blob redirected to another origin (a CDN) is followed without the credentials${
    missing ? ` (skipped: ${missing})` : ""
  }`,
  ignore: missing !== undefined,
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    const module = await Deno.readFile(await cAddHeaderWith("oci"));
    const ip = loopbackBlock();
    const reg = await startRegistry(ip(5));
    const cache = await Deno.makeTempDir({ prefix: "weft-oci-cache-" });
    const basic = `Basic ${btoa("front:door")}`;
    const cdnAuth: (string | null)[] = [];
    // The CDN: serves blobs from the real registry, noting any Authorization it gets.
    const cdn = Deno.serve({ hostname: ip(10), port: 0, onListen: () => {} }, async (req) => {
      cdnAuth.push(req.headers.get("authorization"));
      const u = new URL(req.url);
      const r = await fetch(`http://${reg.host}${u.pathname}`);
      return new Response(r.body, { status: r.status });
    });
    const cdnHost = `${ip(10)}:${(cdn.addr as Deno.NetAddr).port}`;
    // The registry the plugin names: basic auth; manifests itself, blobs redirected to the CDN.
    const front = Deno.serve({ hostname: ip(9), port: 0, onListen: () => {} }, async (req) => {
      if (req.headers.get("authorization") !== basic) {
        return new Response(null, {
          status: 401,
          headers: { "www-authenticate": 'Basic realm="x"' },
        });
      }
      const u = new URL(req.url);
      if (u.pathname.includes("/blobs/")) {
        return new Response(null, {
          status: 307,
          headers: { location: `http://${cdnHost}${u.pathname}` },
        });
      }
      const r = await fetch(`http://${reg.host}${u.pathname}`, {
        headers: { accept: req.headers.get("accept") ?? "" },
      });
      return new Response(r.body, {
        status: r.status,
        headers: { "content-type": r.headers.get("content-type") ?? "" },
      });
    });
    const frontHost = `${ip(9)}:${(front.addr as Deno.NetAddr).port}`;
    try {
      await pushArtifact(reg, "wasm/cdn", "v1", module);
      await withEnv(
        { WEFT_WASM_CACHE_DIR: cache, WEFT_WASM_INSECURE_REGISTRIES: frontHost },
        async () => {
          const secret = JSON.stringify({ auths: { [frontHost]: { auth: btoa("front:door") } } });
          const got = await fetchModule(ref(`oci://${frontHost}/wasm/cdn:v1`, {}, {
            ISTIO_META_WASM_IMAGE_PULL_SECRET: secret,
          }));
          assert.deepEqual(new Uint8Array(got), module);
          assert.ok(cdnAuth.length >= 1, "the blob came from the CDN");
          assert.deepEqual([...new Set(cdnAuth)], [null], "no credentials sent to the CDN");
        },
      );
    } finally {
      await front.shutdown();
      await cdn.shutdown();
      await reg.stop();
      await Deno.remove(cache, { recursive: true });
    }
  },
});

Deno.test({
  name: `OCI pull: the cache stays within its bound, least recently used out first${
    missing ? ` (skipped: ${missing})` : ""
  }`,
  ignore: missing !== undefined,
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    const a = await Deno.readFile(await cAddHeaderWith("oci"));
    const b = await Deno.readFile(await cAddHeaderWith("oci-b"));
    const c = await Deno.readFile(await cAddHeaderWith("oci-c"));
    const ip = loopbackBlock();
    const reg = await startRegistry(ip(5));
    const cache = await Deno.makeTempDir({ prefix: "weft-oci-cache-" });
    try {
      // Room for two modules, not three.
      const bound = String(a.length + b.length + Math.floor(c.length / 2));
      await withEnv({
        WEFT_WASM_CACHE_DIR: cache,
        WEFT_WASM_INSECURE_REGISTRIES: reg.host,
        WEFT_WASM_CACHE_MAX_BYTES: bound,
      }, async () => {
        for (const [tag, m] of [["a", a], ["b", b], ["c", c]] as const) {
          await pushArtifact(reg, "wasm/lru", tag, m);
        }
        const url = (tag: string) => `oci://${reg.host}/wasm/lru:${tag}`;
        await fetchModule(ref(url("a")));
        await new Promise((r) => setTimeout(r, 20)); // distinct mtimes
        await fetchModule(ref(url("b")));
        await new Promise((r) => setTimeout(r, 20));
        await fetchModule(ref(url("a"))); // a cache hit: a is now the most recently used
        await new Promise((r) => setTimeout(r, 20));
        await fetchModule(ref(url("c"))); // over the bound: b goes
        await reg.stop();
        assert.deepEqual(new Uint8Array(await fetchModule(ref(url("a")))), a);
        assert.deepEqual(new Uint8Array(await fetchModule(ref(url("c")))), c);
        assert.equal(await code(fetchModule(ref(url("b")))), "filter_fetch");
      });
    } finally {
      await reg.stop().catch(() => {});
      await Deno.remove(cache, { recursive: true });
    }
  },
});
