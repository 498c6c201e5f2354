/**
 * How the control plane carries an OCI WasmPlugin over xDS, as istiod does (l7-semantics W2–W4):
 * the url (a scheme-less one as `oci://`) in the ECDS Wasm config's remote http_uri, the sha256,
 * and the pull policy and the imagePullSecret's docker config in the VM env
 * (ISTIO_META_WASM_IMAGE_PULL_*), decoded by the node into the FilterRef its OCI pull reads; and
 * weft.yaml's own plugins list taking oci:// urls.
 */
import assert from "node:assert/strict";
import { buildNode } from "../src/xds/control_plane/build.ts";
import { parseMesh } from "../src/xds/control_plane/mesh.ts";
import { EXTENSION_CONFIG } from "../src/xds/type_urls.ts";
import { validateConfig } from "../src/app/config.ts";
import { extensionConfigType } from "../src/xds/resources/extension_config.ts";

const DOCKER_CONFIG = JSON.stringify({ auths: { "reg.example:5000": { auth: btoa("u:p") } } });
const SHA = "a".repeat(64);

const manifests = (secret: boolean) =>
  `apiVersion: v1
kind: Service
metadata: { name: r, namespace: ns }
spec: { clusterIPs: [10.0.0.1], selector: { app: r }, ports: [{ name: http, port: 80 }] }
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: p, namespace: ns }
spec:
  targetRefs: [{ kind: Service, group: "", name: r }]
  url: reg.example:5000/wasm/p@sha256:${SHA}
  sha256: ${SHA}
  imagePullPolicy: Always
  imagePullSecret: regcred
` + (secret
    ? `---
apiVersion: v1
kind: Secret
metadata: { name: regcred, namespace: ns }
type: kubernetes.io/dockerconfigjson
stringData: { .dockerconfigjson: '${DOCKER_CONFIG}' }
`
    : "");

function pluginRef(text: string) {
  const ext = buildNode(parseMesh(text), "node-a").get(EXTENSION_CONFIG)!;
  const [entry] = [...ext.values()];
  assert.ok(entry, "one ECDS resource");
  return extensionConfigType.decode(entry.any).value.ref!;
}

Deno.test("OCI WasmPlugin over xDS: url, sha256, pull policy and pull secret reach the node", () => {
  const ref = pluginRef(manifests(true));
  assert.equal(ref.url, `oci://reg.example:5000/wasm/p@sha256:${SHA}`);
  assert.equal(ref.sha256, SHA);
  assert.equal(ref.runtime?.env?.ISTIO_META_WASM_IMAGE_PULL_POLICY, "Always");
  assert.equal(ref.runtime?.env?.ISTIO_META_WASM_IMAGE_PULL_SECRET, DOCKER_CONFIG);
});

Deno.test("OCI WasmPlugin over xDS: a missing pull Secret is a warning; the pull goes without", () => {
  const mesh = parseMesh(manifests(false));
  assert.ok(mesh.warnings.some((w) => /spec\.imagePullSecret: no .*Secret ns\/regcred/.test(w)));
  const ref = pluginRef(manifests(false));
  assert.equal(ref.runtime?.env?.ISTIO_META_WASM_IMAGE_PULL_SECRET, undefined);
});

Deno.test("OCI WasmPlugin over xDS: a malformed reference or Secret is refused with its path", () => {
  assert.throws(
    () => parseMesh(manifests(true).replace("reg.example:5000/wasm/p", "reg.example:5000/Wasm/p")),
    /WasmPlugin ns\/p: spec\.url: bad OCI image reference/,
  );
  assert.throws(
    () => parseMesh(manifests(true).replace("kubernetes.io/dockerconfigjson", "Opaque")),
    /Secret ns\/regcred: type: weft reads only kubernetes.io\/dockerconfigjson Secrets/,
  );
});

Deno.test("weft.yaml plugins: an oci:// url is taken; a malformed one is refused with its path", () => {
  const withUrl = (url: string) =>
    validateConfig({
      services: [{ name: "a", ports: [80], plugins: [{ name: "p", url, type: "proxy-wasm" }] }],
    });
  const good = withUrl("oci://127.0.0.1:5000/wasm/p:v1");
  assert.ok(good.ok, good.ok ? "" : good.problems.join("\n"));
  const bad = withUrl("oci://127.0.0.1:5000/Wasm/p:v1");
  assert.ok(!bad.ok);
  assert.ok(
    bad.problems.some((p) =>
      p.startsWith("services[0].plugins[0].url: bad OCI image reference: bad repository")
    ),
    bad.problems.join("\n"),
  );
});
