import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { type Any, anyPack } from "@bufbuild/protobuf/wkt";
import { mentionsCheckedFilter } from "./client.ts";
import {
  DiscoveryResponseSchema,
  HttpConnectionManagerSchema,
  HTTPFaultSchema,
  ListenerSchema,
  RBACSchema,
  RouterSchema,
  TcpProxySchema,
  TypedStructSchema,
} from "./proto.ts";
import { LISTENER } from "./type_urls.ts";

/** An LDS response with one listener whose only network filter is `filter`. */
function lds(filter: Any): Uint8Array {
  const l = create(ListenerSchema, {
    name: "l",
    filterChains: [{
      filters: [{ name: "f", configType: { case: "typedConfig", value: filter } }],
    }],
  });
  return toBinary(
    DiscoveryResponseSchema,
    create(DiscoveryResponseSchema, { typeUrl: LISTENER, resources: [anyPack(ListenerSchema, l)] }),
  );
}

const hcm = (httpFilter: Any): Any =>
  anyPack(
    HttpConnectionManagerSchema,
    create(HttpConnectionManagerSchema, {
      httpFilters: [
        { name: "x", configType: { case: "typedConfig", value: httpFilter } },
        {
          name: "router",
          configType: { case: "typedConfig", value: anyPack(RouterSchema, create(RouterSchema)) },
        },
      ],
    }),
  );

Deno.test("xds client: the filter configs whose checks load lazily are found in response bytes", () => {
  const rbac = anyPack(RBACSchema, create(RBACSchema, { rules: { action: 1, policies: {} } }));
  const fault = anyPack(HTTPFaultSchema, create(HTTPFaultSchema));
  assert.equal(mentionsCheckedFilter(lds(hcm(rbac))), true, "RBAC inside an HCM");
  assert.equal(mentionsCheckedFilter(lds(hcm(fault))), true, "HTTPFault inside an HCM");
  const wrapped = anyPack(
    TypedStructSchema,
    create(TypedStructSchema, { typeUrl: "type.googleapis.com/" + RBACSchema.typeName }),
  );
  assert.equal(mentionsCheckedFilter(lds(hcm(wrapped))), true, "RBAC in a TypedStruct");
  const tcp = anyPack(TcpProxySchema, create(TcpProxySchema, { statPrefix: "RBAC HTTPFault" }));
  assert.equal(mentionsCheckedFilter(lds(tcp)), false, "an L4 listener loads nothing");
  assert.equal(mentionsCheckedFilter(lds(hcm(anyPack(RouterSchema, create(RouterSchema))))), false);
  // The name cut anywhere is not a match; at the very end of the bytes it is.
  const name = new TextEncoder().encode(RBACSchema.typeName);
  assert.equal(mentionsCheckedFilter(name.subarray(0, name.length - 1)), false);
  assert.equal(mentionsCheckedFilter(name), true);
});
