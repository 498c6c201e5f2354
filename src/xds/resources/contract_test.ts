/** One contract every xDS resource type meets: a valid resource decodes to its name, decoding
 * is deterministic, and a wrong type URL, malformed bytes or an invalid body are WeftErrors
 * with a "Cannot ..." message (they become NACK entries). */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { type Any, anyPack } from "@bufbuild/protobuf/wkt";
import { WeftError } from "../../core/mod.ts";
import { buildNode } from "../control_plane/build.ts";
import { parseMesh } from "../control_plane/mesh.ts";
import { compactMeshYaml } from "../_test_fixtures.ts";
import { meshManifestsFromYaml } from "../../../tests/support/istio_manifests.ts";
import {
  ClusterLoadAssignmentSchema,
  ClusterSchema,
  IstioAddressSchema,
  IstioAuthorizationSchema,
  ListenerSchema,
  RouteConfigurationSchema,
  TypedExtensionConfigSchema,
  WasmSchema,
} from "../proto.ts";
import {
  ADDRESS,
  AUTHORIZATION,
  CLUSTER,
  ENDPOINT,
  EXTENSION_CONFIG,
  LISTENER,
  ROUTE,
} from "../type_urls.ts";
import { RESOURCE_TYPES } from "./registry.ts";

const built = buildNode(
  parseMesh(
    meshManifestsFromYaml(
      compactMeshYaml(10).replace(
        "authorizationPolicies:",
        `  - name: plug
    ports: [{ port: 81, protocol: HTTP }]
    plugins: [{ name: hdr, url: "file:///p/hdr.wasm", sha256: "${
          "a".repeat(64)
        }", pluginConfig: { k: 1 } }]
authorizationPolicies:`,
      ),
    ),
  ),
  "node-a",
);

const first = (t: string): { name: string; any: Any } => {
  const [name, b] = [...built.get(t)!].at(-1)!;
  return { name, any: b.any };
};

/** A body of the right type that validation must refuse. */
const INVALID: Record<string, Any> = {
  [LISTENER]: anyPack(ListenerSchema, create(ListenerSchema, { name: "l", filterChains: [] })),
  [ROUTE]: anyPack(
    RouteConfigurationSchema,
    create(RouteConfigurationSchema, { name: "r", virtualHosts: [{ name: "v", domains: [] }] }),
  ),
  [CLUSTER]: anyPack(
    ClusterSchema,
    create(ClusterSchema, { name: "c", clusterDiscoveryType: { case: "type", value: 3 } }),
  ),
  [ENDPOINT]: anyPack(
    ClusterLoadAssignmentSchema,
    create(ClusterLoadAssignmentSchema, {
      clusterName: "c",
      endpoints: [{
        lbEndpoints: [{
          hostIdentifier: {
            case: "endpoint",
            value: {
              address: {
                address: {
                  case: "socketAddress",
                  value: { address: "not-an-ip", portSpecifier: { case: "portValue", value: 80 } },
                },
              },
            },
          },
        }],
      }],
    }),
  ),
  [EXTENSION_CONFIG]: anyPack(
    TypedExtensionConfigSchema,
    create(TypedExtensionConfigSchema, {
      name: "e",
      typedConfig: anyPack(WasmSchema, create(WasmSchema, { config: { name: "w" } })),
    }),
  ),
  [ADDRESS]: anyPack(
    IstioAddressSchema,
    create(IstioAddressSchema, {
      type: { case: "workload", value: { uid: "u", name: "n", namespace: "ns" } },
    }),
  ),
  [AUTHORIZATION]: anyPack(
    IstioAuthorizationSchema,
    create(IstioAuthorizationSchema, { name: "", namespace: "" }),
  ),
};

for (const [typeUrl, type] of RESOURCE_TYPES) {
  Deno.test(`contract ${typeUrl.split("/")[1]}: valid decodes, deterministic`, () => {
    const { name, any } = first(typeUrl);
    const a = type.decode(any);
    assert.equal(a.name, name);
    assert.deepEqual(type.decode(any), a);
    for (const d of type.deps(a.value)) assert.ok(RESOURCE_TYPES.has(d.typeUrl) && d.name);
  });

  Deno.test(`contract ${typeUrl.split("/")[1]}: wrong type, malformed bytes, invalid body rejected`, () => {
    const { any } = first(typeUrl);
    const other = typeUrl === LISTENER ? CLUSTER : LISTENER;
    const cases: Any[] = [
      { ...any, typeUrl: first(other).any.typeUrl },
      { ...any, value: new Uint8Array([0x0a, 0xff, 0x01]) },
      INVALID[typeUrl]!,
    ];
    for (const c of cases) {
      assert.throws(
        () => type.decode(c),
        (e: unknown) => e instanceof WeftError && /^Cannot /.test(e.message),
      );
    }
  });
}

/** Deterministic byte flips (xorshift), so a failure reproduces. */
function* mutations(bytes: Uint8Array, count: number): Generator<Uint8Array> {
  let x = 0x9e3779b9;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  for (let i = 0; i < count; i++) {
    const b = bytes.slice();
    for (let k = 0; k < 1 + (next() % 3); k++) b[next() % b.length] = next() & 0xff;
    yield b;
  }
}

for (const [typeUrl, type] of RESOURCE_TYPES) {
  Deno.test(`contract ${typeUrl.split("/")[1]}: corrupted bytes decode or fail as WeftError`, () => {
    const { any } = first(typeUrl);
    for (const value of mutations(any.value, 300)) {
      try {
        type.decode({ ...any, value });
      } catch (e) {
        assert.ok(e instanceof WeftError, `not a WeftError: ${e}`);
      }
    }
  });
}
