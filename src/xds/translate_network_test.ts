import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { BASE } from "./_test_fixtures.ts";
import { IstioAddressSchema } from "./proto.ts";
import { applyResources } from "./apply.ts";
import { ResourceStore } from "./store.ts";
import { Translator } from "./translate.ts";
import { ADDRESS } from "./type_urls.ts";

const ip = (s: string) => new Uint8Array(s.split(".").map(Number));

// deno-lint-ignore no-explicit-any
function workload(name: string, addrs: string[], extra: Record<string, any> = {}) {
  return anyPack(
    IstioAddressSchema,
    create(IstioAddressSchema, {
      type: {
        case: "workload",
        value: {
          uid: `c//Pod/default/${name}`,
          name,
          namespace: "default",
          addresses: addrs.map(ip),
          tunnelProtocol: 1,
          serviceAccount: "echo",
          node: "node-b",
          services: {
            "default/echo.default.svc.cluster.local": {
              ports: [{ servicePort: 80, targetPort: 8080 }],
            },
          },
          ...extra,
        },
      },
    }),
  );
}

const service = anyPack(
  IstioAddressSchema,
  create(IstioAddressSchema, {
    type: {
      case: "service",
      value: {
        name: "echo",
        namespace: "default",
        hostname: "echo.default.svc.cluster.local",
        addresses: [{ network: "", address: ip("127.10.9.1") }],
        ports: [{ servicePort: 80, targetPort: 8080 }],
      },
    },
  }),
);

Deno.test("translate: Workload network and network_gateway (field 19) reach the endpoints", () => {
  const store = new ResourceStore();
  const r = applyResources(store, ADDRESS, [
    { name: undefined, version: "1", any: service },
    { name: undefined, version: "1", any: workload("local", ["127.0.9.1"]) },
    {
      name: undefined,
      version: "1",
      any: workload("by-ip", ["10.2.0.7"], {
        network: "n2",
        networkGateway: {
          destination: { case: "address", value: { network: "n2", address: ip("10.2.0.50") } },
        },
      }),
    },
    {
      // istiod's shape for a workload of another network: no address, only its gateway.
      name: undefined,
      version: "1",
      any: workload("by-name", [], {
        network: "n2",
        networkGateway: {
          destination: {
            case: "hostname",
            value: { namespace: "istio-system", hostname: "eastwest.istio-system.svc" },
          },
          hboneMtlsPort: 15009,
        },
      }),
    },
  ], () => true);
  assert.deepEqual(r.errors, []);
  const snap = new Translator(BASE).build(store, "1");
  const eps = snap.services.find((s) => s.name === "echo")!.endpoints;
  assert.deepEqual(
    eps.map((e) => [e.workload, e.address, e.hboneAddress, e.network, e.networkGateway]),
    [
      ["local", "127.0.9.1", "127.0.9.1:15008", undefined, undefined],
      ["by-ip", "10.2.0.7", "10.2.0.7:15008", "n2", {
        destination: { kind: "address", network: "n2", ip: "10.2.0.50" },
        hboneMtlsPort: 15008,
      }],
      ["by-name", "", undefined, "n2", {
        destination: {
          kind: "hostname",
          namespace: "istio-system",
          hostname: "eastwest.istio-system.svc",
        },
        hboneMtlsPort: 15009,
      }],
    ],
  );
});

Deno.test("translate: a workload with neither address nor gateway, or a bad gateway, is NACKed", () => {
  const store = new ResourceStore();
  const r = applyResources(store, ADDRESS, [
    { name: undefined, version: "1", any: workload("nothing", []) },
    {
      name: undefined,
      version: "1",
      any: workload("bad-gw", ["10.2.0.7"], {
        networkGateway: { destination: { case: "hostname", value: { namespace: "x" } } },
      }),
    },
  ], () => true);
  assert.equal(r.errors.length, 2, r.errors.join("\n"));
  assert.match(r.errors.join("\n"), /no address/);
  assert.match(r.errors.join("\n"), /network_gateway hostname is empty/);
});
