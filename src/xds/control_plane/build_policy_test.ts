import assert from "node:assert/strict";
import { anyPack } from "@bufbuild/protobuf/wkt";
import type { AuthorizationPolicy, Workload } from "../../core/mod.ts";
import { authorizeL4 } from "../../core/mod.ts";
import { IstioAuthorizationSchema } from "../proto.ts";
import { authorizationType } from "../resources/authorization.ts";
import { authorizationOf } from "./build_policy.ts";
import type { Mesh } from "./mesh.ts";

const mesh = { rootNamespace: "istio-system" } as Mesh;

/** Control plane → Istio Authorization bytes → the node's decoder. */
function roundTrip(p: AuthorizationPolicy): AuthorizationPolicy {
  return authorizationType.decode(anyPack(IstioAuthorizationSchema, authorizationOf(mesh, p)))
    .value;
}

Deno.test("Authorization over xDS: IPv6 and IPv4 ipBlocks survive the round trip", () => {
  const p: AuthorizationPolicy = {
    name: "deny-v6",
    namespace: "default",
    selector: undefined,
    action: "DENY",
    dryRun: false,
    rules: [{ from: [{ source: { ipBlocks: ["2001:db8::/32", "10.1.0.0/16", "192.0.2.7"] } }] }],
  };
  const got = roundTrip(p);
  assert.deepEqual(got.rules[0]?.from?.[0]?.source.ipBlocks, [
    "2001:db8::/32",
    "10.1.0.0/16",
    "192.0.2.7/32",
  ]);
  const w = {
    name: "echo",
    namespace: "default",
    serviceAccount: "echo",
    identity: "spiffe://cluster.local/ns/default/sa/echo",
    address: "10.9.0.1",
    ports: [80],
    labels: {},
    mtlsMode: "PERMISSIVE",
  } as unknown as Workload;
  const snap = { policies: [got], rootNamespace: "istio-system" } as never;
  const at = (ip: string) =>
    authorizeL4(snap, w, {
      sourcePrincipal: undefined,
      sourceIp: ip,
      destinationIp: w.address,
      destinationPort: 80,
    }).allowed;
  assert.equal(at("2001:db8::5"), false);
  assert.equal(at("2001:db9::5"), true);
  assert.equal(at("10.1.2.3"), false);
});
