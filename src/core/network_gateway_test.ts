import assert from "node:assert/strict";
import { baseSnapshot, workload } from "./_l4_test_kit.ts";
import { routeOutbound } from "./outbound.ts";
import { hboneFor } from "./upstream_dialer.ts";
import { connectHeaders } from "./hbone_client.ts";
import type { Endpoint, GatewayAddress, Service } from "./snapshot.ts";

const id = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

const ep = (address: string, over: Partial<Endpoint> = {}): Endpoint => ({
  workload: `w-${address}`,
  namespace: "default",
  address,
  hboneAddress: `${address}:15008`,
  node: undefined,
  identity: id("default", `w-${address}`),
  labels: {},
  weight: 1,
  ...over,
});

const byIp = (ip: string, port = 15008): GatewayAddress => ({
  destination: { kind: "address", network: "n2", ip },
  hboneMtlsPort: port,
});

const service = (name: string, vip: string, endpoints: Endpoint[], sans?: string[]): Service => ({
  name,
  namespace: name.startsWith("ew") ? "istio-system" : "default",
  hostname: `${name}.${name.startsWith("ew") ? "istio-system" : "default"}.svc.cluster.local`,
  vips: vip ? [vip] : [],
  ports: [{ port: 80, targetPort: 8080, protocol: "TCP", name: "tcp" }],
  endpoints,
  subsets: [],
  outboundFilters: [],
  inboundFilters: [],
  ...(sans ? { subjectAltNames: sans } : {}),
});

const gwEp = ep("10.2.0.50", {
  namespace: "istio-system",
  identity: id("istio-system", "ew"),
  network: "n2",
});
const ewByName: GatewayAddress = {
  destination: {
    kind: "hostname",
    namespace: "istio-system",
    hostname: "ew.istio-system.svc.cluster.local",
  },
  hboneMtlsPort: 15009,
};
const remote = ep("10.2.0.7", { network: "n2", networkGateway: byIp("10.2.0.50") });
const snap = baseSnapshot({
  node: { name: "a", hbonePort: 15008, trustDomain: "cluster.local", network: "n1" },
  workloads: [workload("client", "127.0.1.2")],
  services: [
    service("echo", "10.96.0.1", [remote], [id("default", "echo-sans")]),
    service("local", "10.96.0.2", [ep("10.1.0.7", { network: "n1" }), ep("10.1.0.8")]),
    service("nogw", "10.96.0.3", [ep("10.3.0.7", { network: "n3" })]),
    service("mixed", "10.96.0.4", [
      ep("10.3.0.8", { network: "n3" }),
      ep("10.1.0.9"),
      // Same network, no address: a gateway named for it is never used (ztunnel).
      ep("", { network: "n1", networkGateway: byIp("10.2.0.50") }),
    ]),
    service("byname", "10.96.0.5", [ep("10.2.0.9", { network: "n2", networkGateway: ewByName })]),
    service("unknowngw", "10.96.0.6", [
      ep("10.2.0.10", { network: "n2", networkGateway: byIp("10.2.0.99") }),
    ]),
    service("ew", "", [gwEp], [id("istio-system", "ew-sans")]),
    // A gateway known by its service's address (a load balancer IP) on the HBONE port.
    {
      ...service("ew-lb", "192.0.2.80", [ep("10.2.0.51", {
        namespace: "istio-system",
        identity: id("istio-system", "ew-lb"),
        network: "n2",
      })]),
      ports: [{ port: 15008, targetPort: 15008, protocol: "TCP", name: "tls-hbone" }],
    },
    service("bylb", "10.96.0.7", [
      ep("10.2.0.11", { network: "n2", networkGateway: byIp("192.0.2.80") }),
    ]),
  ],
});
const SELF = new Set([15008]);

Deno.test("network gateway: another network's endpoint goes through its gateway (double HBONE)", () => {
  const r = routeOutbound(snap, "10.96.0.1", 80, SELF);
  assert.equal(r.kind, "hbone");
  if (r.kind !== "hbone") return;
  assert.equal(r.hboneAddr, "10.2.0.50:15008", "the outer tunnel dials the gateway");
  assert.equal(r.dstIdentity, id("istio-system", "ew"), "and expects the gateway's identity");
  assert.deepEqual(r.gateway, {
    addr: "10.2.0.50:15008",
    sans: [id("istio-system", "ew")],
    authority: "echo.default.svc.cluster.local:80",
    // The service's SANs and its endpoints' identities on that network (the gateway picks).
    finalSans: [id("default", "echo-sans"), id("default", "w-10.2.0.7")],
  });
  // The same through the L7/callout dialer's helper.
  const h = hboneFor(snap, snap.services[0]!, remote, 80);
  assert.ok(typeof h === "object" && h.gateway?.authority === "echo.default.svc.cluster.local:80");
});

Deno.test("network gateway: by hostname, on its hbone_mtls_port, with its service's SANs", () => {
  const r = routeOutbound(snap, "10.96.0.5", 80, SELF);
  assert.ok(r.kind === "hbone" && r.gateway);
  assert.equal(r.gateway.addr, "10.2.0.50:15009");
  assert.deepEqual(r.gateway.sans, [id("istio-system", "ew"), id("istio-system", "ew-sans")]);
});

Deno.test("network gateway: by the address of a gateway service (its load balancer's)", () => {
  const r = routeOutbound(snap, "10.96.0.7", 80, SELF);
  assert.ok(r.kind === "hbone" && r.gateway);
  assert.equal(r.gateway.addr, "192.0.2.80:15008", "dialled at the gateway address itself");
  assert.deepEqual(r.gateway.sans, [id("istio-system", "ew-lb")]);
});

Deno.test("network gateway: same network direct, no gateway skipped, unknown gateway refused", () => {
  for (let i = 0; i < 20; i++) {
    const r = routeOutbound(snap, "10.96.0.2", 80, SELF);
    assert.ok(r.kind === "hbone" && r.gateway === undefined, "an unset network is the node's");
    const m = routeOutbound(snap, "10.96.0.4", 80, SELF);
    assert.ok(m.kind === "hbone" && m.host === "10.1.0.9", "n3 without a gateway is never picked");
  }
  const none = routeOutbound(snap, "10.96.0.3", 80, SELF);
  assert.equal(none.kind === "refuse" && none.reason, "no_healthy_upstream");
  const unknown = routeOutbound(snap, "10.96.0.6", 80, SELF);
  assert.equal(unknown.kind === "refuse" && unknown.reason, "unknown_network_gateway");
  // Another network's pod IP is no endpoint of this network: the outbound policy decides.
  assert.equal(routeOutbound(snap, "10.2.0.7", 8080, SELF).kind, "direct");
});

Deno.test("network gateway: only the inner CONNECT carries x-forwarded-network", () => {
  const base = { authority: "a.b.svc:80", clientAddr: "1.2.3.4:5", serviceHost: undefined };
  const outer = connectHeaders({ ...base, baggage: undefined });
  assert.equal(outer["x-forwarded-network"], undefined);
  const inner = connectHeaders({ ...base, baggage: undefined, network: "n1" });
  assert.equal(inner["x-forwarded-network"], "n1");
  assert.equal(inner[":authority"], "a.b.svc:80");
});
