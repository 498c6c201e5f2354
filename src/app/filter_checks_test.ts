import { assertThrows } from "../../tests/support/assert.ts";
import { checkFilterConfig } from "../core/mod.ts";
import type { FilterRef } from "../core/mod.ts";
import { FIRST_PARTY_XDS_TYPE } from "../filters/mod.ts";
import { registerXdsFilterChecks } from "./filter_checks.ts";
import "../../tests/support/example_plugins.ts"; // warms jco before sanitized tests

const ref = (type: string, config: unknown): FilterRef => ({
  name: "f",
  type,
  url: undefined,
  sha256: undefined,
  config,
  failPolicy: "FAIL_CLOSE",
  phase: "UNSPECIFIED",
  priority: 0,
});

Deno.test("xDS filter checks: RBAC and HTTPFault the converters refuse are refused at decode", () => {
  registerXdsFilterChecks();
  checkFilterConfig(ref(FIRST_PARTY_XDS_TYPE.authz, { rules: { action: "ALLOW", policies: {} } }));
  checkFilterConfig(ref(FIRST_PARTY_XDS_TYPE.fault, { abort: { httpStatus: 503 } }));
  assertThrows(
    () =>
      checkFilterConfig(
        ref(FIRST_PARTY_XDS_TYPE.authz, {
          rules: {
            policies: {
              p: { permissions: [{ any: true }], principals: [{ any: true }], condition: {} },
            },
          },
        }),
      ),
    /unsupported field/,
  );
  assertThrows(
    () => checkFilterConfig(ref(FIRST_PARTY_XDS_TYPE.fault, { bogus: 1 })),
    /bogus|HTTPFault/,
  );
});
