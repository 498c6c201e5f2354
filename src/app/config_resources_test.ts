import assert from "node:assert/strict";
import { loadIstioDocuments } from "../istio/mod.ts";
import { wasmPluginsFor } from "./config_resources.ts";

const plugin = (ns: string, spec: string, name = `w-${ns}`) =>
  `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: ${name}, namespace: ${ns}}
spec: ${spec}
---
`;

Deno.test("WasmPlugin attachment: targetRefs name a Service of the plugin's namespace only", () => {
  const r = loadIstioDocuments([{
    file: "w.yaml",
    text:
      plugin("istio-system", "{url: 'file:///x.wasm', targetRefs: [{kind: Service, name: echo}]}") +
      plugin("default", "{url: 'file:///x.wasm', targetRefs: [{kind: Service, name: echo}]}") +
      plugin("istio-system", "{url: 'file:///x.wasm', match: [{mode: SERVER}]}", "mesh"),
  }]);
  assert.deepEqual(r.problems, []);
  const svc = (namespace: string) => ({
    name: "echo",
    namespace,
    ports: [{ port: 80 }],
    endpoints: [{ labels: {} }],
  });
  const names = (ns: string) =>
    wasmPluginsFor(svc(ns), r.resources.wasmPlugins).map((p) => `${p.name}/${p.direction}`);
  // The root namespace's selector-less plugin applies mesh-wide; its targetRefs stay in it.
  assert.deepEqual(names("default"), [
    "w-default-outbound/outbound",
    "w-default-inbound/inbound",
    "mesh/inbound",
  ]);
  assert.deepEqual(names("other"), ["mesh/inbound"]);
});

Deno.test("WasmPlugin match: entries of different modes and ports, any one selects", () => {
  const r = loadIstioDocuments([{
    file: "w.yaml",
    text: plugin(
      "default",
      `{url: 'file:///x.wasm', match: [{mode: CLIENT, ports: [{number: 80}]},
        {mode: SERVER, ports: [{number: 9090}]}]}`,
      "split",
    ),
  }]);
  assert.deepEqual(r.problems, []);
  const on = (port: number) =>
    wasmPluginsFor(
      { name: "s", namespace: "default", ports: [{ port }], endpoints: [{ labels: {} }] },
      r.resources.wasmPlugins,
    ).map((p) => `${p.name}/${p.direction}`);
  assert.deepEqual(on(80), ["split/outbound"]);
  assert.deepEqual(on(9090), ["split/inbound"]);
  assert.deepEqual(on(7070), []);
});
