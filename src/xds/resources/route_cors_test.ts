/** RDS CorsPolicy: the control plane writes istiod's shape (per-route CorsPolicy, the HCM's cors
 * filter); an xDS node reads it back to the same route CORS; what weft cannot run is NACKed. */
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import {
  CorsPolicySchema,
  CorsSchema,
  HttpConnectionManagerSchema,
  ListenerSchema,
  RouteConfigurationSchema,
} from "../proto.ts";
import { parseMesh } from "../control_plane/mesh.ts";
import { routeConfig } from "../control_plane/build_routes.ts";
import { listener } from "../control_plane/build_listener.ts";
import { routeType } from "./route.ts";
import { listenerType } from "./listener.ts";
import { filterFromAny } from "./http_filters.ts";
import { CORS_FILTER_NAME, routeCorsOf } from "./route_cors.ts";

const MESH = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  clusterIPs: [127.10.0.9]
  selector: { app: web }
  ports: [{ name: http-80, port: 80, targetPort: 8080, appProtocol: http }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [web]
  http:
    - match: [{ uri: { prefix: /api } }]
      corsPolicy:
        allowOrigins: [{ exact: "https://a.example" }, { regex: "https://.*[.]b[.]example" }]
        allowMethods: [GET, POST]
        allowHeaders: [x-a]
        exposeHeaders: [x-e]
        maxAge: 1m
        allowCredentials: true
        unmatchedPreflights: IGNORE
      route: [{ destination: { host: web } }]
    - route: [{ destination: { host: web } }]
`;

Deno.test("control plane → node: a VirtualService corsPolicy travels as istiod's CorsPolicy", () => {
  const m = parseMesh(MESH);
  const s = m.services.find((x) => x.name === "web")!;
  const rc = routeConfig(s, 80);
  const [api, rest] = rc.virtualHosts[0]!.routes;
  const any = api!.typedPerFilterConfig[CORS_FILTER_NAME]!;
  assert.equal(any.typeUrl, "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy");
  assert.equal(rest!.typedPerFilterConfig[CORS_FILTER_NAME], undefined);
  // The wire form, as a node receives it.
  const bytes = toBinary(RouteConfigurationSchema, rc);
  const got = routeType.decode({
    $typeName: "google.protobuf.Any",
    typeUrl: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
    value: bytes,
  });
  const rules = got.value.virtualHosts[0]!.rules;
  assert.deepEqual(rules[0]!.policy?.cors, {
    allowOrigins: [{ exact: "https://a.example" }, { regex: "https://.*[.]b[.]example" }],
    allowMethods: "GET,POST",
    allowHeaders: "x-a",
    exposeHeaders: "x-e",
    maxAge: "60",
    allowCredentials: true,
    forwardNotMatchingPreflights: false,
  });
  assert.equal(rules[1]!.policy?.cors, undefined);
  assert.deepEqual(rules[0]!.overrides, {}, "not a filter override");
  // The HCM holds the empty cors filter after the fault filter and before the router; the node
  // accepts it.
  const l = listener(s, s.ports[0]!);
  const hcm = fromBinary(HttpConnectionManagerSchema, l.apiListener!.apiListener!.value);
  assert.deepEqual(hcm.httpFilters.map((f) => f.name), [
    CORS_FILTER_NAME,
    "envoy.filters.http.router",
  ]);
  const lv = listenerType.decode(anyPack(ListenerSchema, l)).value;
  assert.equal(lv.kind, "http");
  assert.deepEqual(lv.kind === "http" ? lv.chain : undefined, [], "no filter of its own");
});

Deno.test("RDS CorsPolicy: Envoy's defaults and matchers; what weft cannot run is NACKed", () => {
  const p = (init: Parameters<typeof create<typeof CorsPolicySchema>>[1]) =>
    create(CorsPolicySchema, init);
  const plain = routeCorsOf(
    p({
      allowOriginStringMatch: [
        { matchPattern: { case: "suffix", value: ".s.example" } },
        { matchPattern: { case: "contains", value: "c+c" } },
      ],
      allowPrivateNetworkAccess: true,
    }),
    "t",
  );
  assert.deepEqual(plain, {
    allowOrigins: [{ regex: ".*\\.s\\.example" }, { regex: ".*c\\+c.*" }],
    allowMethods: "",
    allowHeaders: "",
    exposeHeaders: "",
    maxAge: "",
    allowCredentials: false,
    forwardNotMatchingPreflights: true, // Envoy's default
    allowPrivateNetworkAccess: true,
  });
  assert.equal(
    routeCorsOf(p({ filterEnabled: { defaultValue: { numerator: 0 } } }), "t"),
    undefined,
    "0% = off",
  );
  assert.throws(() => routeCorsOf(p({ filterEnabled: { defaultValue: { numerator: 50 } } }), "t"));
  assert.throws(() =>
    routeCorsOf(
      p({
        allowOriginStringMatch: [{ matchPattern: { case: "exact", value: "x" }, ignoreCase: true }],
      }),
      "t",
    )
  );
  assert.equal(
    filterFromAny(CORS_FILTER_NAME, anyPack(CorsSchema, create(CorsSchema))).kind,
    "cors",
  );
  // A malformed per-route CorsPolicy is a NACK of the route configuration.
  const rc = create(RouteConfigurationSchema, {
    name: "r",
    virtualHosts: [{
      name: "v",
      domains: ["*"],
      routes: [{
        match: { pathSpecifier: { case: "prefix", value: "/" } },
        action: { case: "route", value: { clusterSpecifier: { case: "cluster", value: "c" } } },
        typedPerFilterConfig: {
          [CORS_FILTER_NAME]: {
            $typeName: "google.protobuf.Any",
            typeUrl: "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
            value: new Uint8Array([0x0a, 0x05, 0x01]),
          },
        },
      }],
    }],
  });
  assert.throws(() => routeType.decode(anyPack(RouteConfigurationSchema, rc)));
});
