import assert from "node:assert/strict";
import { parseExtensionProviders } from "../../istio/mod.ts";
import { Checker, Problems } from "../../istio/mod.ts";
import { extAuthzBytes } from "../control_plane/build_ext_authz.ts";
import { extAuthzProviderOf } from "./ext_authz.ts";

Deno.test("ext_authz over xDS: what the control plane writes, the node reads back whole", () => {
  const problems = new Problems();
  const providers = parseExtensionProviders(new Checker(problems), "p", [
    {
      name: "h",
      envoyExtAuthzHttp: {
        service: "authz.foo.svc.cluster.local",
        port: 8000,
        timeout: "1.5s",
        pathPrefix: "/check",
        failOpen: true,
        statusOnError: "503",
        includeRequestHeadersInCheck: ["x-a", "x-pre-*", "*-suf"],
        includeAdditionalHeadersInCheck: { "x-add": "1" },
        includeRequestBodyInCheck: { maxRequestBytes: 100, packAsBytes: true },
        headersToUpstreamOnAllow: ["x-user"],
        headersToDownstreamOnDeny: ["x-reason"],
        headersToDownstreamOnAllow: ["x-seen"],
      },
    },
    { name: "g", envoyExtAuthzGrpc: { service: "127.0.0.1", port: 9191, timeout: "250ms" } },
  ]);
  assert.deepEqual(problems.list, []);
  for (const p of providers) {
    const back = extAuthzProviderOf(p.name, extAuthzBytes(p, p.service));
    assert.deepEqual(back, { ...p });
  }
});

Deno.test("ext_authz over xDS: configs weft cannot honour are refused", () => {
  // http_service.server_uri.cluster that is no outbound cluster
  const bad = Uint8Array.from([0x1a, 0x06, 0x0a, 0x04, 0x12, 0x02, 0x78, 0x78]);
  assert.throws(() => extAuthzProviderOf("x", bad), /not outbound\|<port>\|\|<host>/);
  assert.throws(
    () => extAuthzProviderOf("x", new Uint8Array(0)),
    /needs grpc_service or http_service/,
  );
  assert.throws(() => extAuthzProviderOf("x", Uint8Array.from([0x1a, 0x09])), /runs past/);
});
