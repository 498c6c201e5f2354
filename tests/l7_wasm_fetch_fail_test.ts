/**
 * WasmPlugin whose module cannot be fetched, through real weft processes (l7-semantics.md W13,
 * W14, W16, W17): the node still becomes ready; FAIL_CLOSE (the default) serves the filter as
 * Istio's deny-all RBAC stand-in (403 `RBAC: access denied`, istio#53363), FAIL_OPEN skips it.
 * Both the weft.yaml `plugins` form and an Istio WasmPlugin (targetRefs) in the config dir.
 */
import { assertEquals } from "./support/assert.ts";
import { bunPath } from "./support/weft_proc.ts";
import { withTwoNodes } from "./support/two_node_http.ts";

const GONE = "file:///nonexistent/weft-test/gone.wasm";

const WASM_PLUGINS = `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: gone-open, namespace: default}
spec:
  targetRefs: [{kind: Service, group: "", name: echo1}]
  url: ${GONE}
  failStrategy: FAIL_OPEN
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: gone-default, namespace: default}
spec:
  targetRefs: [{kind: Service, group: "", name: echo2}]
  url: ${GONE}
  phase: AUTHN
`;

async function fetchFailure(runtime: string | undefined): Promise<void> {
  await withTwoNodes({
    runtime,
    istio: WASM_PLUGINS,
    services: [
      {
        plugins: [{
          name: "gone-close",
          url: GONE,
          type: "proxy-wasm",
          direction: "inbound",
          failStrategy: "FAIL_CLOSE",
        }],
      },
      {},
      {},
    ],
  }, async ({ b, send }) => {
    const close = await send("GET /x HTTP/1.1", 0);
    assertEquals([close.status, close.body], [403, "RBAC: access denied"], close.text);
    const open = await send("GET /x HTTP/1.1", 1);
    assertEquals(open.status, 200, open.text);
    const dflt = await send("GET /x HTTP/1.1", 2);
    assertEquals([dflt.status, dflt.body], [403, "RBAC: access denied"], dflt.text);
    // Said once, with the filter's name.
    await b.waitFor((l) => l.msg === "filter unavailable" && l.filter === "gone-close", 5000);
  });
}

Deno.test("WasmPlugin fetch failure: ready, FAIL_CLOSE denies (403 RBAC), FAIL_OPEN skips (Deno)", async () => {
  await fetchFailure(undefined);
});

Deno.test({
  name: "WasmPlugin fetch failure: ready, FAIL_CLOSE denies (403 RBAC), FAIL_OPEN skips (Bun)",
  ignore: bunPath() === undefined,
  fn: async () => await fetchFailure(bunPath()),
});
