import { assert, assertEquals } from "../../tests/support/assert.ts";
import { parseConfigText } from "./config.ts";
import { snapshotFromConfig } from "./snapshot_builder.ts";

Deno.test("config: endpoints name their network and its east-west gateway (double HBONE)", () => {
  const r = parseConfigText(`
node: { network: n1 }
services:
  - name: echo
    ports: [{ port: 80 }]
    endpoints:
      - { address: 10.2.0.7, network: n2, networkGateway: { address: { network: n2, ip: 10.2.0.50 } } }
      - address: 10.2.0.8
        network: n2
        networkGateway:
          hostname: { namespace: istio-system, hostname: eastwest.istio-system.svc.cluster.local }
          hboneMtlsPort: 15009
      - { address: 10.1.0.7 }
`);
  assert(r.ok, JSON.stringify(!r.ok && r.problems));
  const eps = snapshotFromConfig(r.config).services[0]!.endpoints;
  assertEquals(eps[0]!.network, "n2");
  assertEquals(eps[0]!.networkGateway, {
    destination: { kind: "address", network: "n2", ip: "10.2.0.50" },
    hboneMtlsPort: 15008,
  });
  assertEquals(eps[1]!.networkGateway, {
    destination: {
      kind: "hostname",
      namespace: "istio-system",
      hostname: "eastwest.istio-system.svc.cluster.local",
    },
    hboneMtlsPort: 15009,
  });
  assertEquals(eps[2]!.network, undefined, "unset: the node's network");
  assertEquals(eps[2]!.networkGateway, undefined);
});

Deno.test("config: every network gateway problem is reported with its path", () => {
  const r = parseConfigText(`
services:
  - name: echo
    ports: [{ port: 80 }]
    endpoints:
      - { address: 10.2.0.7, networkGateway: {} }
      - address: 10.2.0.8
        networkGateway: { address: { ip: 10.2.0.50 }, hostname: { namespace: a, hostname: b } }
      - { address: 10.2.0.9, networkGateway: { address: { ip: nope, zone: x }, hboneMtlsPort: 0 } }
      - { address: 10.2.0.10, network: 7, networkGateway: { hostname: { hostname: "Bad Host" } } }
`);
  assert(!r.ok);
  const p = "services[0].endpoints";
  for (
    const w of [
      `${p}[0].networkGateway: needs exactly one of address or hostname`,
      `${p}[1].networkGateway: needs exactly one of address or hostname`,
      `${p}[2].networkGateway.address.ip: must be an IP address`,
      `${p}[2].networkGateway.address.zone: unknown field`,
      `${p}[2].networkGateway.hboneMtlsPort: must be an integer 1-65535`,
      `${p}[3].network: must be a string`,
      `${p}[3].networkGateway.hostname.namespace: is required`,
      `${p}[3].networkGateway.hostname.hostname: must be a host name`,
    ]
  ) {
    assert(r.problems.some((x) => x.startsWith(w)), `missing "${w}" in\n${r.problems.join("\n")}`);
  }
});
