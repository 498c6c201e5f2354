/** WasmPlugin validation (l7-semantics.md W1–W11): what weft cannot honour is refused with its
 * path, never attached somewhere else or dropped. */
import assert from "node:assert/strict";
import { loadIstioDocuments } from "./mod.ts";

const doc = (spec: string) =>
  `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: w, namespace: default}
spec: ${spec}`;

const problems = (spec: string): readonly string[] =>
  loadIstioDocuments([{ file: "w.yaml", text: doc(spec) }]).problems;

Deno.test("WasmPlugin: refused with its path", () => {
  const bad: [string, RegExp][] = [
    ["{url: 'oci://ghcr.io/X/y:1'}", /spec\.url: bad OCI image reference: bad repository/],
    ["{url: 'ghcr.io/x/y:t@sha256:12'}", /spec\.url: bad OCI image reference: digest must be/],
    ["{url: 'ftp://h/x.wasm'}", /spec\.url: must be oci:\/\/, file:\/\/, http:\/\/ or https:\/\//],
    [
      `{url: 'oci://h.io/x@sha256:${"a".repeat(64)}', sha256: '${"b".repeat(64)}'}`,
      /spec\.sha256: must match the url's @sha256: digest/,
    ],
    ["{url: 'oci://h.io/x', imagePullPolicy: Sometimes}", /spec\.imagePullPolicy: must be one of/],
    ["{url: 'oci://h.io/x', verificationKey: k}", /spec\.verificationKey: .*signatures/],
    ["{}", /spec\.url: is required/],
    [
      "{url: 'file:///x.wasm', selector: {matchLabels: {app: a}}, targetRefs: [{kind: Service, name: a}]}",
      /spec\.targetRefs: is mutually exclusive with spec\.selector/,
    ],
    [
      "{url: 'file:///x.wasm', targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: a}]}",
      /spec\.targetRefs\[0\]\.kind: Gateway is not supported/,
    ],
    ["{url: 'file:///x.wasm', pluginConfig: [1, 2]}", /spec\.pluginConfig: must be a mapping/],
    ["{url: 'file:///x.wasm', failStrategy: FAIL_CLOSED}", /spec\.failStrategy: must be one of/],
    ["{url: 'file:///x.wasm', phase: AUTH}", /spec\.phase: must be one of/],
    ["{url: 'file:///x.wasm', type: NETWORK}", /spec\.type: must be one of/],
    ["{url: 'file:///x.wasm', priority: 1.5}", /spec\.priority: must be an integer/],
    ["{url: 'file:///x.wasm', sha256: abc}", /spec\.sha256: must be 64 lowercase hex digits/],
    [
      "{url: 'file:///x.wasm', vmConfig: {env: [{name: A, valueFrom: ENV}]}}",
      /valueFrom: must be one of INLINE, HOST/,
    ],
    [
      "{url: 'file:///x.wasm', match: [{mode: SERVER, ports: [{number: 0}]}]}",
      /ports\[0\]\.number: must be an integer 1-65535/,
    ],
    ["{url: 'file:///x.wasm', unknownField: 1}", /spec\.unknownField: unknown field/],
    [
      "{url: 'file:///x.wasm', vmConfig: {env: [{name: HOME, valueFrom: HOST, value: x}]}}",
      /vmConfig\.env\[0\]\.value: may only be set when valueFrom is INLINE/,
    ],
    ["{url: 'file:///x.wasm', pluginName: ''}", /spec\.pluginName: must be 1-256 characters/],
  ];
  for (const [spec, want] of bad) {
    const got = problems(spec);
    assert.ok(got.some((p) => want.test(p)), `${spec}\n${got.join("\n")}`);
  }
});

Deno.test("WasmPlugin: OCI urls (W2): no scheme is oci://; pull policy and secret kept", () => {
  const r = loadIstioDocuments([{
    file: "w.yaml",
    text: doc(`{url: 'foo.bar:5000/baz:latest', imagePullPolicy: Always, imagePullSecret: reg}`),
  }]);
  assert.deepEqual(r.problems, []);
  const p = r.resources.wasmPlugins[0]!;
  assert.equal(p.url, "oci://foo.bar:5000/baz:latest");
  assert.equal(p.env.ISTIO_META_WASM_IMAGE_PULL_POLICY, "Always");
  assert.equal(p.imagePullSecret, "reg");
});

Deno.test("WasmPlugin: Istio's forms load, defaults as documented", () => {
  const r = loadIstioDocuments([{
    file: "w.yaml",
    text: doc(
      `{url: 'https://example.com/f.wasm', targetRefs: [{kind: Service, group: '', name: echo}],
      pluginConfig: {a: {b: [1]}}, phase: AUTHZ, priority: 10, match: [{mode: SERVER, ports: [{number: 8080}]}],
      vmConfig: {env: [{name: A, value: x}, {name: HOME, valueFrom: HOST}]}}`,
    ),
  }]);
  assert.deepEqual(r.problems, []);
  const w = r.resources.wasmPlugins[0]!;
  assert.equal(w.failStrategy, "FAIL_CLOSE", "FAIL_CLOSE by default");
  assert.equal(w.pluginName, "w", "pluginName defaults to the resource name");
  assert.deepEqual([w.phase, w.priority, w.match], ["AUTHZ", 10, [{
    mode: "SERVER",
    ports: [8080],
  }]]);
  assert.deepEqual(w.env, { A: "x", HOME: "$HOST:HOME" });
  const d = loadIstioDocuments([{
    file: "w.yaml",
    text: doc("{url: 'file:///x.wasm', sha256: ''}"),
  }]);
  assert.deepEqual(d.problems, [], "an empty sha256 is no pin");
  const dw = d.resources.wasmPlugins[0]!;
  assert.deepEqual([dw.phase, dw.priority, dw.match], ["UNSPECIFIED", 0, []]);
});
