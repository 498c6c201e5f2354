// deno-lint-ignore-file no-console
/**
 * weft's HTTP proxy with the chain of the three first-party filters — authz (3 policies, 10
 * rules; the request is allowed by a later rule), fault (a header-gated delay that does not
 * match) and traffic-split (5 routes, the request takes the weighted default) — loaded from their
 * prebuilt wasm (plugins/<name>/build, `deno task plugins`) through the real filter host, in
 * front of `--upstream host:port`. Prints `{"port": N}` once listening; runs until killed.
 * Runs on Deno and on Bun (`bench:l7 --bun`). `--no-filters`: the proxy alone; `--filters
 * authz,fault`: only those filters of the chain.
 */
import net from "node:net";
import process from "node:process";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { load, loadAll } from "js-yaml";
import {
  connectNative,
  FilterChain,
  type HttpFilter,
  HttpProxy,
  installProcessGuard,
  listenNative,
  nativeSockets,
} from "../../src/core/mod.ts";
import {
  authorizationPolicyFromIstio,
  authzConfigFromPolicies,
  ComponentFilter,
  loadComponent,
  splitConfigFromVirtualService,
} from "../../src/filters/mod.ts";
import { TEST_PEER } from "../../tests/support/filter_context.ts";
import { BENCH_POLICIES } from "../../plugins/authz/authz_bench_policies.ts";

// As weft itself (src/main.ts): on Bun, jco's WASI shim starts a worker that reports an error
// event (node:worker_threads without tcp_wrap); logged and counted, not fatal.
installProcessGuard();
const argv = process.argv.slice(2);
const up = argv[argv.indexOf("--upstream") + 1] ?? "127.0.0.1:8080";
const [upHost, upPort] = up.split(":") as [string, string];

// The benchmarks' 10 rules over 3 policies, and one more ALLOW policy for the bench's peer,
// TEST_PEER (spiffe://cluster.local/ns/default/sa/client), which none of the others allows; it
// is reached after every rule of the three (deny-bad does not match it).
const POLICIES = `${BENCH_POLICIES}---
metadata: {name: allow-bench-client, namespace: default}
spec:
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/client"]}}]
    to: [{operation: {methods: ["GET", "HEAD"], paths: ["/hello", "/warmup"]}}]`;

const VS = `
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: echo, subset: v2}}]
  - match: [{uri: {prefix: /static/}}, {uri: {prefix: /assets/}}]
    route: [{destination: {host: cdn}}]
  - match: [{uri: {regex: "/api/v[0-9]+/users/[0-9]+"}, method: {exact: DELETE}}]
    route: [{destination: {host: users, subset: admin}}]
  - match: [{queryParams: {canary: {exact: "1"}}}]
    route: [{destination: {host: echo, subset: v3}}]
  - route:
    - {destination: {host: echo, subset: v1}, weight: 90}
    - {destination: {host: echo, subset: v2}, weight: 10}`;

async function firstParty(name: string, config: unknown): Promise<HttpFilter> {
  const file = new URL(`../../plugins/${name}/build/${name}.wasm`, import.meta.url).pathname;
  const component = await loadComponent(new Uint8Array(readFileSync(file)), {
    maxMemoryBytes: 16 * 1024 * 1024,
  });
  return await ComponentFilter.create(`bench-${name}`, "FAIL_CLOSE", component, config);
}

// `--filters authz,fault`: a part of the chain (to see what each filter costs).
const only = argv.includes("--filters") ? argv[argv.indexOf("--filters") + 1]!.split(",") : [];
const wanted = (name: string): boolean =>
  !argv.includes("--no-filters") && (only.length === 0 || only.includes(name));
const filters: HttpFilter[] = [];
if (wanted("authz")) {
  filters.push(
    await firstParty(
      "authz",
      authzConfigFromPolicies(loadAll(POLICIES).map((d) => authorizationPolicyFromIstio(d))),
    ),
  );
}
if (wanted("fault")) {
  filters.push(
    await firstParty("fault", {
      delay: { fixedDelayMs: 100, percentage: { numerator: 10 } },
      headers: [{ name: "x-chaos", exact: "on" }],
      maxActiveFaults: 100,
    }),
  );
}
if (wanted("traffic-split")) {
  filters.push(await firstParty("traffic-split", splitConfigFromVirtualService(load(VS))));
}
const chain = new FilterChain(filters);
// On Bun the proxy's sockets are native (src/core/native_socket.ts) unless `--node-net`.
const native = nativeSockets && !argv.includes("--node-net");
const proxy = new HttpProxy({
  chain: () => chain,
  direction: "inbound",
  dialUpstream: () =>
    native
      ? connectNative(upHost, Number(upPort)).then((s) => s.asDuplex())
      : new Promise<Duplex>((ok, fail) => {
        const s = net.connect(Number(upPort), upHost);
        s.setNoDelay(true);
        s.once("connect", () => ok(s));
        s.once("error", fail);
      }),
});
const serve = (s: Duplex): void => {
  proxy.handle(s, TEST_PEER).catch((e: unknown) => console.error(String(e)));
};
const exitAfter = argv.indexOf("--exit-after-ms");
if (exitAfter >= 0) setTimeout(() => process.exit(0), Number(argv[exitAfter + 1])); // profiling
if (native) {
  const l = listenNative("127.0.0.1", 0, (s) => serve(s.asDuplex()));
  console.log(JSON.stringify({ port: l.port, sockets: "native" }));
} else {
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    serve(s);
  });
  server.listen(0, "127.0.0.1", () => {
    console.log(
      JSON.stringify({ port: (server.address() as AddressInfo).port, sockets: "node:net" }),
    );
  });
}
