/**
 * WasmPlugins whose module is an OCI image, through real weft processes and a real registry
 * (Debian's docker-registry): Istio's artifact and compat formats load and filter requests, by
 * tag and by digest (a url without a scheme being OCI); a sha256 that does not match, an
 * unreachable registry and a layer over the size bound are fetch failures served by the fail
 * strategy (FAIL_CLOSE: 403 `RBAC: access denied`; FAIL_OPEN: bypassed) with the node ready
 * (l7-semantics W2–W4, W13–W17); a private registry needs the WasmPlugin's imagePullSecret (a
 * Secret in the config dir); an HTTPS registry (the default) works with its CA given to the node;
 * with the registries gone, a restarted node serves IfNotPresent plugins from its disk cache while
 * an Always plugin pulls again and fails.
 */
import { assertEquals } from "./support/assert.ts";
import { bunPath, loopbackBlock } from "./support/weft_proc.ts";
import { type RawResult, withTwoNodes } from "./support/two_node_http.ts";
import { cAddHeaderWith } from "./support/proxy_wasm_kit.ts";
import {
  bcryptMissing,
  pushArtifact,
  pushCompat,
  type Registry,
  registryMissing,
  startRegistry,
} from "./support/oci_registry.ts";
import { openSslMissing } from "./support/oci_token_server.ts";
import { spawnSync } from "node:child_process";

const missing = registryMissing() ?? bcryptMissing() ?? openSslMissing();
const HEADER = /\r\nx-weft-c-add-header: oci\r\n/i;

function plugin(name: string, target: string, url: string, extra = ""): string {
  return `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: ${name}, namespace: default}
spec:
  targetRefs: [{kind: Service, group: "", name: ${target}}]
  url: ${url}
${extra}---
`;
}

/** Status, and whether the plugin ran (its response header). */
const seen = (r: RawResult): [number, boolean] => [r.status, HEADER.test(r.text)];

async function ociMesh(runtime: string | undefined): Promise<void> {
  const module = await Deno.readFile(await cAddHeaderWith("oci"));
  const ip = loopbackBlock();
  const auth = { username: "puller", password: "pw-oci" };
  const regs: Registry[] = [];
  const cache = await Deno.makeTempDir({ prefix: "weft-oci-cache-" });
  const tmpDirs: string[] = [];
  try {
    const reg = await startRegistry(ip(5));
    regs.push(reg);
    const priv = await startRegistry(ip(6), { auth });
    regs.push(priv);
    // An HTTPS registry (the default: not listed as insecure), its certificate trusted as an
    // operator would: DENO_CERT (Deno) / NODE_EXTRA_CA_CERTS (Bun) in the node's environment.
    const tlsDir = await Deno.makeTempDir({ prefix: "weft-oci-tls-" });
    tmpDirs.push(tlsDir);
    const caFile = `${tlsDir}/ca.crt`, certFile = `${tlsDir}/tls.crt`;
    const keyFile = `${tlsDir}/tls.key`;
    certFor(ip(8), caFile, certFile, keyFile);
    const secure = await startRegistry(ip(8), { tls: { certFile, keyFile, caFile } });
    regs.push(secure);
    await pushArtifact(secure, "wasm/artifact", "v1", module);
    Deno.env.set("DENO_CERT", caFile);
    Deno.env.set("NODE_EXTRA_CA_CERTS", caFile);
    const down = `${ip(7)}:5000`; // nothing listens there
    const h = reg.host;
    await pushArtifact(reg, "wasm/artifact", "v1", module);
    const compat = await pushCompat(reg, "wasm/compat", "v1", module);
    const big = new Uint8Array(300_000);
    big.set(module.subarray(0, 8));
    await pushArtifact(reg, "wasm/big", "v1", big);
    await pushArtifact(priv, "wasm/private", "v1", module);
    Deno.env.set("WEFT_WASM_CACHE_DIR", cache);
    Deno.env.set("WEFT_WASM_INSECURE_REGISTRIES", `${h},${priv.host},${down}`);
    Deno.env.set("WEFT_WASM_MAX_BYTES", "200000");
    const plugins = plugin("artifact", "echo", `oci://${h}/wasm/artifact:v1`) +
      plugin("compat", "echo1", `${h}/wasm/compat@${compat}`) +
      plugin("badsha", "echo2", `oci://${h}/wasm/artifact:v1`, `  sha256: ${"f".repeat(64)}\n`) +
      plugin("down-close", "echo3", `oci://${down}/wasm/x:v1`) +
      plugin("down-open", "echo4", `oci://${down}/wasm/x:v1`, "  failStrategy: FAIL_OPEN\n") +
      plugin("big", "echo5", `oci://${h}/wasm/big:v1`) +
      plugin("always", "echo6", `oci://${h}/wasm/artifact:v1`, "  imagePullPolicy: Always\n");
    const dockerConfig = JSON.stringify({
      auths: { [priv.host]: { auth: btoa(`${auth.username}:${auth.password}`) } },
    });
    const privUrl = `oci://${priv.host}/wasm/private:v1`;
    const istio = plugins +
      plugin("private", "echo7", privUrl, "  imagePullSecret: regcred\n") +
      plugin("private-nosecret", "echo8", privUrl) +
      plugin("https", "echo9", `oci://${secure.host}/wasm/artifact:v1`) +
      `apiVersion: v1
kind: Secret
metadata: {name: regcred, namespace: default}
type: kubernetes.io/dockerconfigjson
data: {.dockerconfigjson: ${btoa(dockerConfig)}}
`;
    const services = Array.from({ length: 10 }, () => ({}));
    await withTwoNodes({ runtime, istio, services }, async ({ send }) => {
      const got = [];
      for (let i = 0; i < services.length; i++) got.push(seen(await send("GET /x HTTP/1.1", i)));
      assertEquals(got, [
        [200, true], // OCI artifact by tag
        [200, true], // compat image by digest, no scheme
        [403, false], // sha256 mismatch: FAIL_CLOSE
        [403, false], // registry down: FAIL_CLOSE
        [200, false], // registry down: FAIL_OPEN bypasses
        [403, false], // layer over the bound
        [200, true], // Always
        [200, true], // private registry with the pull secret
        [403, false], // ... without it
        [200, true], // HTTPS registry
      ]);
    });
    // The registries go; restarted nodes keep the cache dir.
    await Promise.all(regs.splice(0).map((r) => r.stop()));
    await withTwoNodes({ runtime, istio, services }, async ({ send }) => {
      assertEquals(seen(await send("GET /x HTTP/1.1", 0)), [200, true]); // IfNotPresent: cached
      assertEquals(seen(await send("GET /x HTTP/1.1", 1)), [200, true]); // by digest: cached
      assertEquals(seen(await send("GET /x HTTP/1.1", 6)), [403, false]); // Always: pulls, fails
      assertEquals(seen(await send("GET /x HTTP/1.1", 7)), [200, true]); // private: cached
    });
  } finally {
    for (
      const k of [
        "WEFT_WASM_CACHE_DIR",
        "WEFT_WASM_INSECURE_REGISTRIES",
        "WEFT_WASM_MAX_BYTES",
        "DENO_CERT",
        "NODE_EXTRA_CA_CERTS",
      ]
    ) {
      Deno.env.delete(k);
    }
    await Promise.all(regs.map((r) => r.stop()));
    await Deno.remove(cache, { recursive: true });
    for (const d of tmpDirs) await Deno.remove(d, { recursive: true });
  }
}

/** A test CA (written to `caFile`) and a server certificate for `ip` (IP SAN) it signs, by
 * openssl(1) (rustls refuses a CA certificate as the server's own). */
function certFor(ip: string, caFile: string, certFile: string, keyFile: string): void {
  const caKey = `${caFile}.key`;
  const run = (args: string[]) => {
    if (spawnSync("openssl", args, { stdio: "ignore" }).status !== 0) {
      throw new Error(`openssl ${args[0]} failed`);
    }
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  run([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    caKey,
    "-out",
    caFile,
    "-days",
    "1",
    "-subj",
    "/CN=weft-test-ca",
  ]);
  run(["req", ...ec, "-keyout", keyFile, "-out", `${certFile}.csr`, "-subj", "/CN=registry"]);
  Deno.writeTextFileSync(
    `${certFile}.ext`,
    `subjectAltName=IP:${ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
  );
  run([
    "x509",
    "-req",
    "-in",
    `${certFile}.csr`,
    "-CA",
    caFile,
    "-CAkey",
    caKey,
    "-CAcreateserial",
    "-out",
    certFile,
    "-days",
    "1",
    "-extfile",
    `${certFile}.ext`,
  ]);
}

Deno.test({
  name: `WasmPlugin oci:// through weft nodes: formats, refs, fail strategies, auth, cache (Deno)${
    missing ? ` (skipped: ${missing})` : ""
  }`,
  ignore: missing !== undefined,
  fn: async () => await ociMesh(undefined),
});

Deno.test({
  name: `WasmPlugin oci:// through weft nodes: formats, refs, fail strategies, auth, cache (Bun)${
    missing ? ` (skipped: ${missing})` : ""
  }`,
  ignore: missing !== undefined || bunPath() === undefined,
  fn: async () => await ociMesh(bunPath()),
});
