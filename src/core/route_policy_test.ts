import assert from "node:assert/strict";
import { HeaderList } from "./header_map.ts";
import type { HttpRequestContext } from "./filter_api.ts";
import { type RoutePolicy, routePolicyFor } from "./route_policy.ts";
import { backoffMs, retriable } from "./route_exchange.ts";

const ctx = (path: string, headers: [string, string][] = []): HttpRequestContext => ({
  direction: "outbound",
  method: "GET",
  path,
  authority: "echo",
  scheme: "http",
  protocol: "HTTP/1.1",
  requestHeaders: new HeaderList(headers),
  peer: { sourceAddress: "127.0.0.1" } as HttpRequestContext["peer"],
  requestId: "r",
  filterState: new Map(),
  requestBody: undefined,
});

Deno.test("routePolicyFor: the first matching route decides, even without a policy", () => {
  const none = { timeoutMs: undefined, retries: undefined };
  const routes: RoutePolicy[] = [
    { match: [{ headers: { "x-plain": null } }], ...none },
    { match: [{ uri: { regex: "/api/v[0-9]+" } }], timeoutMs: 100, retries: undefined },
    {
      match: [{ uri: { prefix: "/API" }, ignoreUriCase: true, queryParams: { q: { exact: "1" } } }],
      timeoutMs: 200,
      retries: undefined,
    },
    { match: [], timeoutMs: 300, retries: undefined },
  ];
  const at = { port: 80 };
  assert.equal(routePolicyFor(routes, ctx("/api/v2", [["x-plain", ""]]), at), undefined);
  assert.equal(routePolicyFor(routes, ctx("/api/v2?q=2"), at)?.timeoutMs, 100);
  // Regexes match the whole path (Envoy's safe_regex), without the query.
  assert.equal(routePolicyFor(routes, ctx("/api/v2/x?q=1"), at)?.timeoutMs, 200);
  assert.equal(routePolicyFor(routes, ctx("/api/x?q=2"), at)?.timeoutMs, 300);
  assert.equal(routePolicyFor(undefined, ctx("/"), at), undefined);
});

Deno.test("retriable: Envoy's retry_on meanings", () => {
  assert.ok(retriable(["5xx"], 500) && retriable(["5xx"], "reset"));
  assert.ok(retriable(["5xx"], "connect-failure") && retriable(["5xx"], "per-try-timeout"));
  assert.ok(!retriable(["5xx"], 409) && retriable(["retriable-4xx"], 409));
  assert.ok(retriable(["gateway-error"], 503) && !retriable(["gateway-error"], 500));
  assert.ok(retriable(["gateway-error"], "reset"));
  assert.ok(retriable(["reset"], "per-try-timeout") && !retriable(["reset"], "connect-failure"));
  assert.ok(
    retriable(["connect-failure"], "connect-failure") && !retriable(["connect-failure"], 503),
  );
  assert.ok(retriable(["refused-stream", "503"], 503) && !retriable(["refused-stream"], "reset"));
  for (let n = 0; n < 8; n++) {
    assert.ok(backoffMs(n, 25, () => 0.999) <= 250 && backoffMs(n, 25, () => 0) === 0);
  }
  assert.equal(backoffMs(1, 25, () => 0.5), 25);
});

Deno.test("routePolicyFor: sourceLabels match the calling workload's labels", () => {
  const routes: RoutePolicy[] = [
    { match: [{ sourceLabels: { app: "canary" } }], timeoutMs: 50, retries: undefined },
    { match: [], timeoutMs: 500, retries: undefined },
  ];
  const canary = { port: 80, sourceLabels: { app: "canary", v: "1" } };
  assert.equal(routePolicyFor(routes, ctx("/"), canary)?.timeoutMs, 50);
  assert.equal(routePolicyFor(routes, ctx("/"), { port: 80, sourceLabels: {} })?.timeoutMs, 500);
  assert.equal(routePolicyFor(routes, ctx("/"), { port: 80 })?.timeoutMs, 500);
});

Deno.test("connect failure with an unsent request body: 503 and the connection closes (no desync)", async () => {
  const { HttpProxy } = await import("./http_proxy.ts");
  const { FilterChain } = await import("./filter_chain.ts");
  const net = await import("node:net");
  for (const policy of [undefined, { match: [], timeoutMs: 1000, retries: undefined }]) {
    const proxy = new HttpProxy({
      chain: () => new FilterChain([]),
      direction: "outbound",
      dialUpstream: () => Promise.reject(new Error("refused")),
      ...(policy ? { routePolicy: () => policy } : {}),
    });
    const server = net.createServer((s) => {
      proxy.handle(s, { sourceAddress: "127.0.0.1" } as never).catch(() => {});
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    const got = await new Promise<string>((resolve, reject) => {
      const c = net.connect(port, "127.0.0.1");
      let text = "";
      c.on("data", (b) => text += b.toString("latin1"));
      // A connection left open would hang the test: give up after 3 s with what arrived.
      const t = setTimeout(() => c.destroy(), 3000);
      c.on("close", () => {
        clearTimeout(t);
        resolve(text);
      });
      c.on("error", reject);
      // The body holds what would parse as a second request if it were left unread.
      const smuggled = "GET /second HTTP/1.1\r\nHost: x\r\n\r\n";
      c.write(
        `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
      );
    });
    proxy.close();
    await new Promise((r) => server.close(r));
    assert.match(got, /^HTTP\/1\.1 503 /, String(policy));
    assert.equal(got.match(/HTTP\/1\.1 /g)?.length, 1, `one response only: ${got}`);
  }
});
