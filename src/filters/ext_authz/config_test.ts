import assert from "node:assert/strict";
import { extAuthzConfigFromXds } from "./config.ts";

Deno.test("ext_authz from xDS without a gate checks every request (Envoy without filter_enabled_metadata)", () => {
  const provider = {
    name: "p",
    kind: "grpc",
    service: "127.0.0.1",
    port: 9000,
    timeoutMs: 200,
    failOpen: false,
    includeRequestHeadersInCheck: [],
    includeAdditionalHeadersInCheck: {},
    headersToUpstreamOnAllow: [],
    headersToDownstreamOnDeny: [],
    headersToDownstreamOnAllow: [],
  };
  const cfg = extAuthzConfigFromXds({ provider });
  assert.deepEqual(cfg.gate.policies.map((p) => [p.action, p.rules.length]), [["DENY", 1]]);
  assert.throws(
    () => extAuthzConfigFromXds({ provider: { ...provider, port: 0 } }),
    /provider\.port/,
  );
});
