/**
 * AuthorizationPolicy CUSTOM through real weft processes (client → node A → HBONE mTLS → node B's
 * inbound chain → an echo workload) with real external authorizers on loopback
 * (tests/support/ext_authorizers.ts): Istio's `istio` ConfigMap names the providers
 * (MeshConfig extensionProviders), CUSTOM policies attach one provider per service (targetRefs).
 * Checks Envoy's ext_authz semantics: only requests the CUSTOM rules match reach the authorizer;
 * allow → upstream gets headersToUpstreamOnAllow (and loses x-envoy-auth-headers-to-remove's
 * headers), the client headersToDownstreamOnAllow; deny → the authorizer's status, body and
 * headersToDownstreamOnDeny; error/timeout/5xx/garbage → 403, statusOnError, or failOpen; a CUSTOM
 * allow still meets DENY (A7). Runs on Deno, and on Bun when installed.
 */
import { createServer } from "node:net";
import { assertEquals } from "./support/assert.ts";
import { bunPath } from "./support/weft_proc.ts";
import { withTwoNodes } from "./support/two_node_http.ts";
import { startGrpcAuthorizer, startHttpAuthorizer } from "./support/ext_authorizers.ts";

/** A loopback port nothing listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function istioYaml(httpPort: number, grpcPort: number, dead: number): string {
  const custom = (name: string, svc: string, provider: string) =>
    `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: default}
spec:
  targetRefs: [{kind: Service, group: "", name: ${svc}}]
  action: CUSTOM
  provider: {name: ${provider}}
  rules: [{to: [{operation: {paths: ["/ext/*"]}}]}]
`;
  return `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |-
    accessLogFile: /dev/stdout
    extensionProviders:
    - name: http-authz
      envoyExtAuthzHttp:
        service: 127.0.0.1
        port: ${httpPort}
        pathPrefix: /check
        timeout: 1s
        includeRequestHeadersInCheck: [x-ext-*]
        includeAdditionalHeadersInCheck: {x-added: "1"}
        headersToUpstreamOnAllow: [x-user]
        headersToDownstreamOnDeny: [x-reason]
        headersToDownstreamOnAllow: [x-seen]
    - name: grpc-authz
      envoyExtAuthzGrpc: {service: 127.0.0.1, port: ${grpcPort}, timeout: 1s}
    - name: down-closed
      envoyExtAuthzHttp: {service: 127.0.0.1, port: ${dead}, statusOnError: "503"}
    - name: down-open
      envoyExtAuthzGrpc: {service: 127.0.0.1, port: ${dead}, failOpen: true}
    - name: mesh-authz
      envoyExtAuthzHttp:
        service: ext-authz.foo.svc.cluster.local
        port: 9000
        includeRequestBodyInCheck: {maxRequestBytes: 4, allowPartialMessage: true}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-forbidden, namespace: default}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/ext/forbidden"]}}]}]
${custom("c0", "echo", "http-authz")}${custom("c1", "echo1", "grpc-authz")}${
    custom("c2", "echo2", "down-closed")
  }${custom("c3", "echo3", "down-open")}${custom("c4", "echo4", "no-such-provider")}${
    custom("c5", "echo5", "mesh-authz")
  }`;
}

const headersOf = (text: string): string => text.slice(0, text.indexOf("\r\n\r\n")).toLowerCase();

async function extAuthz(runtime: string | undefined): Promise<void> {
  const httpAuthz = await startHttpAuthorizer();
  const grpcAuthz = await startGrpcAuthorizer();
  try {
    const istio = istioYaml(httpAuthz.port, grpcAuthz.port, await deadPort());
    await withTwoNodes({
      runtime,
      istio,
      services: [{}, {}, {}, {}, {}, {}, {
        // The mesh-authz provider's service: a weft service whose endpoint is the authorizer.
        name: "ext-authz",
        namespace: "foo",
        ports: [{ port: 9000, targetPort: httpAuthz.port, protocol: "HTTP" }],
        endpoints: [{ address: "127.0.0.1", tunnel: "NONE" }],
      }],
    }, async ({ b, send }) => {
      // Not matched by the CUSTOM rules: never reaches the authorizer.
      let r = await send("GET /public HTTP/1.1");
      assertEquals(r.status, 200);
      assertEquals(httpAuthz.seen.length, 0);

      // Allowed: the check carries Host, method, pathPrefix + path, Authorization, the
      // configured headers and Content-Length 0; the upstream gets x-user, not x-hidden, and
      // loses x-strip; the client gets x-seen.
      r = await send(
        "GET /ext/ok?q=1 HTTP/1.1\r\nAuthorization: Bearer t\r\nx-ext-id: 7\r\nx-other: 1\r\nx-strip: s",
      );
      assertEquals(r.status, 200, r.text);
      const check = httpAuthz.seen[0]!;
      assertEquals([check.method, check.url], ["GET", "/check/ext/ok?q=1"]);
      assertEquals(check.headers["authorization"], "Bearer t");
      assertEquals(check.headers["x-ext-id"], "7");
      assertEquals(check.headers["x-added"], "1");
      assertEquals(check.headers["content-length"], "0");
      assertEquals(check.headers["x-other"], undefined);
      const up = JSON.parse(r.body).headers;
      assertEquals([up["x-user"], up["x-hidden"], up["x-strip"]], ["alice", undefined, undefined]);
      assertEquals(up["x-other"], "1");
      assertEquals(/\r\nx-seen: yes\r\n/.test(headersOf(r.text) + "\r\n"), true, r.text);

      // Denied: the authorizer's status, body and the headers headersToDownstreamOnDeny names.
      r = await send("GET /ext/deny HTTP/1.1");
      assertEquals([r.status, r.body], [401, "denied by authz"]);
      assertEquals(headersOf(r.text).includes("x-reason: nope"), true, r.text);
      assertEquals(headersOf(r.text).includes("x-other"), false, r.text);

      // A7: CUSTOM allows, DENY still denies.
      r = await send("GET /ext/forbidden HTTP/1.1");
      assertEquals([r.status, r.body], [403, "RBAC: access denied"]);
      assertEquals(httpAuthz.seen.at(-1)!.url, "/check/ext/forbidden");

      // Errors: timeout (1 s), 5xx, garbage, a reset, an answer over the cap → 403, no body.
      for (const path of ["/ext/slow", "/ext/boom", "/ext/garbage", "/ext/reset", "/ext/huge"]) {
        r = await send(`GET ${path} HTTP/1.1`);
        assertEquals([path, r.status, r.body], [path, 403, ""]);
      }

      // gRPC provider: CheckRequest with the request's path and the client's identity.
      const seenBefore = grpcAuthz.seen.length;
      r = await send("GET /public HTTP/1.1", 1);
      assertEquals([r.status, grpcAuthz.seen.length], [200, seenBefore]);
      r = await send("GET /ext/ok HTTP/1.1\r\nx-a: 1\r\nx-a: 2", 1);
      assertEquals(r.status, 200, r.text);
      assertEquals(JSON.parse(r.body).headers["x-user"], "bob");
      const g = grpcAuthz.seen.at(-1)!;
      assertEquals([g.method, g.path, g.host], ["GET", "/ext/ok", "echo"]);
      assertEquals(g.sourcePrincipal, "spiffe://cluster.local/ns/default/sa/sleep");
      assertEquals(g.headers["x-a"], "1,2");
      r = await send("GET /ext/deny HTTP/1.1", 1);
      assertEquals([r.status, r.body], [418, "grpc denied"]);
      assertEquals(headersOf(r.text).includes("x-reason: grpc-no"), true, r.text);
      assertEquals(headersOf(r.text).includes("x-injected"), false, r.text);
      // An OK answer cannot reframe the upstream request or the client's response: framing and
      // hop-by-hop headers it sets, adds or removes are ignored (as from an HTTP authorizer).
      for (const path of ["/ext/frame-cl", "/ext/frame-rm"]) {
        r = await send(`POST ${path} HTTP/1.1\r\nContent-Length: 5`, 1, "hello");
        assertEquals(r.status, 200, r.text);
        const echoed = JSON.parse(r.body);
        assertEquals([echoed.body, echoed.headers["x-user"]], ["hello", "bob"], path);
        assertEquals(echoed.headers["transfer-encoding"], undefined, path);
        const head = headersOf(r.text);
        assertEquals(head.includes("x-note: ok"), true, r.text);
        assertEquals(head.includes("transfer-encoding"), false, r.text);
        assertEquals(/content-length: (\d+)/.exec(head)?.[1], String(r.body.length), r.text);
      }
      assertEquals((await send("GET /ext/garbage HTTP/1.1", 1)).status, 403);
      assertEquals((await send("GET /ext/slow HTTP/1.1", 1)).status, 403); // past the 1 s timeout

      // Authorizer down: statusOnError 503; failOpen lets the request through.
      assertEquals((await send("GET /ext/x HTTP/1.1", 2)).status, 503);
      assertEquals((await send("GET /public HTTP/1.1", 2)).status, 200);
      assertEquals((await send("GET /ext/x HTTP/1.1", 3)).status, 200);
      // An unknown provider: istiod denies every request of the workload.
      r = await send("GET /public HTTP/1.1", 4);
      assertEquals([r.status, r.body], [403, "RBAC: access denied"]);

      // A provider that is a mesh service (reached through the node's dialer), with the body:
      // 4 bytes of it (allowPartialMessage), Content-Length to match.
      r = await send("POST /ext/body HTTP/1.1\r\nContent-Length: 5", 5, "hello");
      assertEquals(r.status, 200, r.text);
      const withBody = httpAuthz.seen.at(-1)!;
      assertEquals([withBody.url, withBody.body], ["/ext/body", "hell"]);
      assertEquals(withBody.headers["content-length"], "4");
      assertEquals(JSON.parse(r.body).body, "hello");

      const metrics = await (await fetch(`http://${b.ready.metrics}/metrics`)).text();
      const count = (filter: string, result: string) =>
        Number(
          new RegExp(`weft_ext_authz_total\\{filter="${filter}",result="${result}"\\} (\\d+)`)
            .exec(metrics)?.[1] ?? 0,
        );
      assertEquals(count("echo.default.ext-authz", "ok"), 2);
      assertEquals(count("echo.default.ext-authz", "denied"), 1);
      assertEquals(count("echo.default.ext-authz", "error"), 5);
      assertEquals(count("echo1.default.ext-authz", "error"), 2);
      assertEquals(count("echo.default.ext-authz", "disabled"), 1);
      assertEquals(count("echo3.default.ext-authz", "failure_mode_allowed"), 1);
      assertEquals(count("echo4.default.ext-authz", "bad_provider"), 1);
    });
  } finally {
    await httpAuthz.close();
    grpcAuthz.close();
  }
}

Deno.test("ext_authz: CUSTOM policies with HTTP and gRPC authorizers (Deno)", async () => {
  await extAuthz(undefined);
});

Deno.test({
  name: "ext_authz: CUSTOM policies with HTTP and gRPC authorizers (Bun)",
  ignore: bunPath() === undefined,
  fn: async () => await extAuthz(bunPath()),
});
