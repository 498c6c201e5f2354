/** Hand-written encoders decode equal to what protobuf-es builds from the same values. */
import assert from "node:assert/strict";
import { create, equals, fromBinary, toJson } from "@bufbuild/protobuf";
import { Cluster_DiscoveryType, ClusterLoadAssignmentSchema, ClusterSchema } from "../proto.ts";
import { meshYaml } from "../_test_fixtures.ts";
import { assignmentBytes, edsClusterBytes, fnv, ipBytes, lbEndpointBytes } from "./build_wire.ts";
import { LbEndpointSchema } from "../gen/envoy/config/endpoint/v3/endpoint_components_pb.ts";
import { parseMesh } from "./mesh.ts";

Deno.test("EDS clusters written by hand decode equal to protobuf-es messages", () => {
  for (const [subset, labels] of [["", {}], ["v2", { version: "v2", app: "a" }]] as const) {
    const got = fromBinary(ClusterSchema, edsClusterBytes("outbound|80|x|h", "h", subset, labels));
    const want = create(ClusterSchema, {
      name: "outbound|80|x|h",
      clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType.EDS },
      edsClusterConfig: { edsConfig: { configSourceSpecifier: { case: "ads", value: {} } } },
      metadata: { filterMetadata: { weft: { hostname: "h", subset, labels: { ...labels } } } },
    });
    assert.ok(equals(ClusterSchema, got, want), JSON.stringify(toJson(ClusterSchema, got)));
  }
});

Deno.test("ClusterLoadAssignments written by hand decode with every endpoint", () => {
  const mesh = parseMesh(meshYaml(10));
  const eps = mesh.workloads.slice(0, 2).map((w) => lbEndpointBytes(mesh, w, 8080));
  const got = fromBinary(ClusterLoadAssignmentSchema, assignmentBytes("c", eps));
  assert.equal(got.clusterName, "c");
  assert.equal(got.endpoints.length, 1);
  assert.equal(got.endpoints[0]!.loadBalancingWeight, 1);
  assert.ok(got.endpoints[0]!.locality !== undefined);
  assert.equal(got.endpoints[0]!.lbEndpoints.length, 2);
});

Deno.test("ipBytes: dotted quads by hand, anything else through parseIp", () => {
  assert.deepEqual([...ipBytes("10.1.255.0")], [10, 1, 255, 0]);
  assert.deepEqual([...ipBytes("::1")], [...new Uint8Array(15), 1]);
  assert.deepEqual([...ipBytes("::ffff:1.2.3.4")], [1, 2, 3, 4]);
  for (const bad of ["1.2.3", "1.2.3.256", "1..2.3", "1.2.3.4.5", "", "a.b.c.d", "1.2.3.4 "]) {
    assert.deepEqual([...ipBytes(bad)], [], bad);
  }
});

Deno.test("hand-written encoders: long and non-ASCII strings, 2- and 3-byte length prefixes", () => {
  const mesh = parseMesh(meshYaml(10));
  const w0 = mesh.workloads[0]!;
  const labels: Record<string, string> = { long: "x".repeat(200), utf8: "é-ü-😀" };
  for (let i = 0; i < 400; i++) labels[`k${i}`] = `v${i}`.repeat(20);
  const w = { ...w0, name: "n".repeat(130), labels };
  const got = fromBinary(LbEndpointSchema, lbEndpointBytes(mesh, w, 8080));
  const md = got.metadata?.filterMetadata["weft"] as Record<string, unknown>;
  assert.equal(md["workload"], w.name);
  const back = md["labels"] as Record<string, string>;
  assert.equal(Object.keys(back).length, 402);
  assert.equal(back["utf8"], "é-ü-😀");
  assert.equal(back["k399"], "v399".repeat(20));
});

Deno.test("hand-written encoders: messages across and beyond a slab stay intact", () => {
  const mesh = parseMesh(meshYaml(10));
  const w0 = mesh.workloads[0]!;
  const huge: Record<string, string> = {};
  for (let i = 0; i < 3000; i++) huge[`k${i}`] = "y".repeat(100); // > one 256 KB slab
  const made = [];
  for (let i = 0; i < 3000; i++) {
    const w = { ...w0, name: `w${i}`, labels: i === 1500 ? huge : w0.labels };
    made.push([w.name, lbEndpointBytes(mesh, w, 80)] as const);
  }
  for (const [name, bytes] of made) {
    const md = fromBinary(LbEndpointSchema, bytes).metadata?.filterMetadata["weft"];
    assert.equal((md as Record<string, unknown>)["workload"], name);
  }
  const big = fromBinary(LbEndpointSchema, made[1500]![1]).metadata?.filterMetadata["weft"];
  assert.equal(Object.keys((big as { labels: object }).labels).length, 3000);
});

Deno.test("fnv: content versions differ for one changed, moved or added byte", () => {
  const base = new TextEncoder().encode(
    "outbound|80|v1|reviews.default.svc.cluster.local weight 90",
  );
  const seen = new Set([fnv(base)]);
  for (let i = 0; i < base.length; i++) {
    const x = base.slice();
    x[i]! ^= 1;
    seen.add(fnv(x));
  }
  seen.add(fnv(base.subarray(1)));
  seen.add(fnv(new Uint8Array([...base, 0])));
  assert.equal(seen.size, base.length + 3);
  assert.equal(fnv(base), fnv(base.slice()));
});
