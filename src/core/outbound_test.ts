import assert from "node:assert/strict";
import { baseSnapshot, workload } from "./_l4_test_kit.ts";
import { findService, pickEndpoint, resolveSource, routeOutbound } from "./outbound.ts";
import type { Endpoint, Service } from "./snapshot.ts";

const ep = (address: string, weight: number, hbone = true): Endpoint => ({
  workload: `w-${address}`,
  namespace: "default",
  address,
  hboneAddress: hbone ? `${address}:15008` : undefined,
  node: undefined,
  identity: hbone ? `spiffe://cluster.local/ns/default/sa/w-${address}` : undefined,
  labels: {},
  weight,
});

const svc: Service = {
  name: "echo",
  namespace: "default",
  hostname: "echo.default.svc.cluster.local",
  vips: ["10.96.0.10"],
  ports: [{ port: 80, targetPort: 8080, protocol: "TCP", name: "http" }],
  endpoints: [ep("10.0.0.1", 1), ep("10.0.0.2", 3), ep("10.0.0.3", 0)],
  subsets: [],
  outboundFilters: [],
  inboundFilters: [],
};
const snap = baseSnapshot({ workloads: [workload("client", "127.0.1.2")], services: [svc] });
const SELF = new Set([15008, 15080]);

Deno.test("pickEndpoint is weighted and skips weight 0", () => {
  assert.equal(pickEndpoint(svc.endpoints, () => 0)?.address, "10.0.0.1");
  assert.equal(pickEndpoint(svc.endpoints, () => 0.3)?.address, "10.0.0.2");
  assert.equal(pickEndpoint(svc.endpoints, () => 0.999)?.address, "10.0.0.2");
  assert.equal(pickEndpoint([ep("1.1.1.1", 0)]), undefined);
});

Deno.test("routeOutbound: VIP and hostnames map to the service's target port over HBONE", () => {
  for (
    const host of [
      "10.96.0.10",
      "echo.default.svc.cluster.local",
      "echo.default",
      "echo.default.svc",
    ]
  ) {
    const r = routeOutbound(snap, host, 80, SELF);
    assert.equal(r.kind, "hbone", host);
    if (r.kind === "hbone") {
      assert.equal(r.port, 8080);
      assert.ok(r.hboneAddr.endsWith(":15008"));
      assert.equal(r.service?.name, "echo");
    }
  }
  assert.equal(findService(snap, "10.96.0.10", 81), undefined);
});

Deno.test("routeOutbound: passthrough policy, pod IPs, self-calls, non-mesh endpoints", () => {
  assert.deepEqual(routeOutbound(snap, "192.0.2.1", 443, SELF), {
    kind: "direct",
    host: "192.0.2.1",
    port: 443,
    service: undefined,
    endpoint: undefined,
  });
  const strict = { ...snap, outboundTrafficPolicy: "REGISTRY_ONLY" as const };
  assert.deepEqual(routeOutbound(strict, "192.0.2.1", 443, SELF), {
    kind: "refuse",
    reason: "registry_only",
  });
  const pod = routeOutbound(strict, "10.0.0.2", 9090, SELF);
  assert.ok(pod.kind === "hbone" && pod.port === 9090 && pod.service === undefined);
  assert.deepEqual(routeOutbound(snap, "127.0.0.1", 15008, SELF), {
    kind: "refuse",
    reason: "self_call",
  });
  assert.deepEqual(routeOutbound(snap, "127.0.1.2", 15080, SELF), {
    kind: "refuse",
    reason: "self_call",
  });
  const plain = { ...snap, services: [{ ...svc, endpoints: [ep("10.0.0.9", 1, false)] }] };
  const r = routeOutbound(plain, "10.96.0.10", 80, SELF);
  assert.ok(r.kind === "direct" && r.host === "10.0.0.9" && r.port === 8080);
});

Deno.test("resolveSource: bind address, IPv4-mapped, default workload, unknown", () => {
  assert.equal(resolveSource(snap, "127.0.1.2", undefined)?.name, "client");
  assert.equal(resolveSource(snap, "::ffff:127.0.1.2", undefined)?.name, "client");
  assert.equal(resolveSource(snap, "127.0.0.1", "default/client")?.name, "client");
  assert.equal(resolveSource(snap, "127.0.0.1", undefined), undefined);
});
