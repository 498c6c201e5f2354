import assert from "node:assert/strict";
import { create, type JsonObject, toJson } from "@bufbuild/protobuf";
import { anyPack, StringValueSchema } from "@bufbuild/protobuf/wkt";
import { HTTPFaultSchema, RBACSchema, TypedStructSchema, WasmSchema } from "../proto.ts";
import { FILTER_TYPES, filterFromAny, loadFilterJson } from "./http_filters.ts";

Deno.test("Envoy Wasm config: root_id, vm_id, vm configuration and env reach the FilterRef", () => {
  const str = (value: string) => anyPack(StringValueSchema, create(StringValueSchema, { value }));
  const any = anyPack(
    WasmSchema,
    create(WasmSchema, {
      config: {
        name: "default.probe",
        rootId: "probe_root",
        configuration: str('{"a":1}'),
        vm: {
          case: "vmConfig",
          value: {
            vmId: "vm-1",
            runtime: "envoy.wasm.runtime.v8",
            code: {
              specifier: {
                case: "local",
                value: { specifier: { case: "filename", value: "/x/probe.wasm" } },
              },
            },
            configuration: str("vm-cfg"),
            environmentVariables: { keyValues: { MODE: "strict" }, hostEnvKeys: ["HOME"] },
          },
        },
      },
    }),
  );
  const spec = filterFromAny("probe", any);
  assert.equal(spec.kind, "filter");
  if (spec.kind !== "filter") return;
  assert.equal(spec.ref.url, "file:///x/probe.wasm");
  assert.deepEqual(spec.ref.config, { a: 1 });
  assert.deepEqual(spec.ref.runtime, {
    rootId: "probe_root",
    vmId: "vm-1",
    env: { MODE: "strict", HOME: Deno.env.get("HOME")! },
    vmConfig: "vm-cfg",
  });
});

Deno.test("RBAC and HTTPFault become proto3 JSON through the generated codec; a TypedStruct-wrapped RBAC gives the same config once the JSON mapping is loaded", async () => {
  const rbac = create(RBACSchema, {
    rules: {
      action: 1,
      policies: {
        "ns[default]-policy[deny-admin]-rule[0]": {
          permissions: [{
            rule: {
              case: "urlPath",
              value: {
                rule: {
                  case: "path",
                  value: { matchPattern: { case: "prefix", value: "/admin" } },
                },
              },
            },
          }],
          principals: [{ identifier: { case: "any", value: true } }],
        },
      },
    },
  });
  const spec = filterFromAny("authz", anyPack(RBACSchema, rbac));
  assert.ok(spec.kind === "filter");
  assert.equal(spec.ref.type, FILTER_TYPES.authz);
  assert.deepEqual(spec.ref.config, toJson(RBACSchema, rbac), "what protobuf-es writes");
  const fault = create(HTTPFaultSchema, {
    abort: { errorType: { case: "httpStatus", value: 503 }, percentage: { numerator: 10 } },
    delay: {
      faultDelaySecifier: { case: "fixedDelay", value: { seconds: 1n, nanos: 500_000_000 } },
    },
  });
  const f = filterFromAny("fault", anyPack(HTTPFaultSchema, fault));
  assert.ok(f.kind === "filter");
  assert.deepEqual(f.ref.config, toJson(HTTPFaultSchema, fault));
  assert.equal((f.ref.config as { delay: { fixedDelay: string } }).delay.fixedDelay, "1.500s");

  await loadFilterJson();
  const wrapped = anyPack(
    TypedStructSchema,
    create(TypedStructSchema, {
      typeUrl: `type.googleapis.com/${RBACSchema.typeName}`,
      value: toJson(RBACSchema, rbac) as JsonObject,
    }),
  );
  const w = filterFromAny("authz", wrapped);
  assert.ok(w.kind === "filter");
  assert.deepEqual(w.ref.config, spec.ref.config);
});
