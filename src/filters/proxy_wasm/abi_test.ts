import { assert, assertEquals } from "../../../tests/support/assert.ts";
import { decodePairs, detectAbi, encodePairs } from "./abi.ts";
import { functionImports } from "./module_info.ts";
import { getProperty, splitPath } from "./properties.ts";
import { request } from "../../../tests/support/proxy_wasm_kit.ts";
import { fromWasmPlugin, hostOptionsFromWasmPlugin } from "./loader.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("map serialisation matches the spec example byte for byte", () => {
  const bytes = encodePairs([["a", "1"], ["b", "22"]]);
  assertEquals(
    hex(bytes),
    "02000000" + "01000000" + "01000000" + "01000000" + "02000000" + "6100" + "3100" + "6200" +
      "323200",
  );
  assertEquals(decodePairs(bytes), [["a", "1"], ["b", "22"]]);
});

Deno.test("map serialisation: empty maps, UTF-8, malformed input", () => {
  assertEquals(decodePairs(new Uint8Array(0)), []);
  assertEquals(decodePairs(Uint8Array.of(0)), []);
  assertEquals(decodePairs(encodePairs([])), []);
  assertEquals(decodePairs(encodePairs([["k", "é✓"]])), [["k", "é✓"]]);
  assertEquals(decodePairs(Uint8Array.of(5, 0, 0, 0, 1, 0)), undefined);
  const truncated = encodePairs([["key", "value"]]).subarray(0, 20);
  assertEquals(decodePairs(truncated), undefined);
});

Deno.test("ABI marker detection prefers the newest version", () => {
  assertEquals(detectAbi(new Set(["proxy_abi_version_0_2_0"])), "0.2.0");
  assertEquals(detectAbi(new Set(["proxy_abi_version_0_1_0"])), "0.1.0");
  assertEquals(detectAbi(new Set(["proxy_abi_version_0_2_1", "malloc"])), "0.2.1");
  assertEquals(detectAbi(new Set(["malloc"])), undefined);
});

Deno.test("function imports are read with their result types", () => {
  // (module (type (func (param i32) (result i64))) (import "env" "f" (func (type 0)))
  //         (import "env" "m" (memory 1)) (type (func))) hand-assembled:
  const bytes = Uint8Array.of(
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00, // magic, version
    0x01,
    0x09,
    0x02,
    0x60,
    0x01,
    0x7f,
    0x01,
    0x7e,
    0x60,
    0x00,
    0x00, // types
    0x02,
    0x12,
    0x02, // imports: 2 entries
    0x03,
    0x65,
    0x6e,
    0x76,
    0x01,
    0x66,
    0x00,
    0x00, // env.f func type 0
    0x03,
    0x65,
    0x6e,
    0x76,
    0x01,
    0x6d,
    0x02,
    0x00,
    0x01, // env.m memory min 1
  );
  new WebAssembly.Module(bytes); // the fixture is a valid module
  assertEquals(functionImports(bytes), [{ module: "env", name: "f", results: ["i64"] }]);
});

Deno.test("properties: Envoy encodings for strings, ints, bools and unknown paths", () => {
  const req = request({ "user-agent": "curl/8" }, { path: "/a/b?q=1" });
  const scope = {
    pluginName: "p",
    rootId: "r",
    vmId: "",
    nodeId: "node-1",
    nodeCluster: "echo.default",
    nodeMetadata: { NAME: "pod-a", LABELS: { app: "echo" }, REPLICAS: 3, NESTED: { a: { b: 1 } } },
    req,
    res: undefined,
    startMs: 5,
    written: undefined,
  };
  const bytes = (path: string): Uint8Array => {
    const v = getProperty(splitPath(path), scope);
    if (!(v instanceof Uint8Array)) throw new Error(`${path}: ${String(v)}`);
    return v;
  };
  const text = (path: string) => new TextDecoder().decode(bytes(path));
  const int = (path: string) => new DataView(bytes(path).buffer).getBigInt64(0, true);
  assertEquals(text("request\0path"), "/a/b?q=1");
  assertEquals(text("request\0url_path"), "/a/b");
  assertEquals(text("request\0useragent"), "curl/8");
  assertEquals(text("source\0address"), "127.0.0.7:40123");
  assertEquals(int("destination\0port"), 8080n);
  assertEquals(int("request\0time"), 5_000_000n);
  assertEquals(getProperty(["connection", "mtls"], scope), Uint8Array.of(1));
  assertEquals(text("source.principal"), "spiffe://cluster.local/ns/default/sa/client");
  // The request's local workload (inbound: the destination) overlays the configured metadata.
  assertEquals(text("node\0metadata\0NAME"), "echo");
  assertEquals(text("node\0metadata\0NAMESPACE"), "default");
  assertEquals(text("node\0metadata\0SERVICE_ACCOUNT"), "echo");
  assertEquals(text("xds\0node\0metadata\0NAME"), "echo");
  assertEquals(decodePairs(bytes("node\0metadata\0LABELS")), [["app", "echo"]]);
  // Struct numbers are doubles; a nested struct is a Struct message; the whole metadata too.
  assertEquals(new DataView(bytes("node\0metadata\0REPLICAS").buffer).getFloat64(0, true), 3);
  assertEquals(bytes("node\0metadata\0NESTED")[0], 0x0a, "Struct field 1 (fields), wire type 2");
  assertEquals(text("node\0id"), "node-1");
  assertEquals(text("xds\0node\0cluster"), "echo.default");
  assert(text("node\0metadata").includes("echo"));
  assertEquals(
    getProperty(["node", "metadata", "NAME"], { ...scope, req: undefined }),
    new TextEncoder().encode("pod-a"),
    "without a request (root context): the configured metadata",
  );
  assertEquals(text("cluster_name"), "inbound|8080||echo.default.svc.cluster.local");
  assertEquals(text("xds\0cluster_name"), "inbound|8080||echo.default.svc.cluster.local");
  assertEquals(text("route_name"), "echo.default.svc.cluster.local:8080");
  assertEquals(int("listener_direction"), 1n);
  assertEquals(int("xds\0listener_direction"), 1n);
  assertEquals(text("plugin_root_id"), "r");
  assertEquals(getProperty(["response", "code"], scope), undefined);
  assertEquals(getProperty(["nope"], scope), undefined);
});

Deno.test("WasmPlugin mapping: FilterRef fields and vmConfig.env", () => {
  const spec = {
    name: "wp",
    pluginName: "root-a",
    url: "file:///x.wasm",
    phase: "AUTHN" as const,
    priority: 7,
    pluginConfig: { a: 1 },
    vmConfig: {
      env: [
        { name: "MODE", value: "strict" },
        { name: "HOME", valueFrom: "HOST" as const },
        { name: "WEFT_SURELY_UNSET_VAR", valueFrom: "HOST" as const },
      ],
    },
  };
  const r = fromWasmPlugin(spec);
  // The filter is the WasmPlugin; pluginName is only the root id the guest sees.
  assertEquals(r.name, "wp");
  assertEquals(r.runtime?.rootId, "root-a");
  assertEquals(r.runtime?.env, { MODE: "strict", HOME: Deno.env.get("HOME")! });
  assertEquals(r.type, "weft.proxy_wasm");
  assertEquals([r.phase, r.priority, r.failPolicy], ["AUTHN", 7, "FAIL_CLOSE"]);
  assertEquals(r.config, { a: 1 });
  assertEquals(hostOptionsFromWasmPlugin(spec).env, {
    MODE: "strict",
    HOME: Deno.env.get("HOME")!,
  });
  assertEquals(fromWasmPlugin({ name: "n", url: "u" }).phase, "UNSPECIFIED");
});
