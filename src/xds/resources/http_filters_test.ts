import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { anyPack, StringValueSchema } from "@bufbuild/protobuf/wkt";
import { WasmSchema } from "../proto.ts";
import { filterFromAny } from "./http_filters.ts";

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
