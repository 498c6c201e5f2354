// deno-lint-ignore-file no-console
/**
 * weft's HTTP proxy with the chain of the three first-party filters — authz (3 policies, 10
 * rules; the request is allowed by a later rule), fault (a header-gated delay that does not
 * match) and traffic-split (5 routes, the request takes the weighted default) — loaded from their
 * prebuilt wasm (plugins/<name>/build, `deno task plugins`) through the real filter host, in
 * front of `--upstream host:port`. Prints `{"port": N}` once listening; runs until killed.
 * Runs on Deno and on Bun (`bench:l7 --bun`). `--no-filters`: the proxy alone; `--filters
 * authz,fault`: only those filters of the chain. Requests take Istio's default route policy (the
 * default retries every outbound L7 route carries) unless `--no-route-policy`.
 */
import net from "node:net";
import process from "node:process";
import { writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import {
  connectNative,
  defaultRoute,
  FilterChain,
  type HttpFilter,
  HttpProxy,
  type HttpRequestContext,
  type HttpResponseContext,
  installProcessGuard,
  listenNative,
  nativeSockets,
} from "../../src/core/mod.ts";
import { TEST_PEER } from "../../tests/support/filter_context.ts";
import { BENCH_FILTERS, benchFilters } from "./bench_chain.ts";

// As weft itself (src/main.ts): on Bun, jco's WASI shim starts a worker that reports an error
// event (node:worker_threads without tcp_wrap); logged and counted, not fatal.
installProcessGuard();
const argv = process.argv.slice(2);
const up = argv[argv.indexOf("--upstream") + 1] ?? "127.0.0.1:8080";
const [upHost, upPort] = up.split(":") as [string, string];

// `--filters authz,fault`: a part of the chain (to see what each filter costs).
const only = argv.includes("--filters") ? argv[argv.indexOf("--filters") + 1]!.split(",") : [];
const filters = argv.includes("--no-filters")
  ? []
  : await benchFilters(only.length ? only : BENCH_FILTERS);
// `--time-chain`: the chain's own time inside the proxy (two clock reads per phase), printed on
// SIGUSR2 as µs per request: compare with chain_cost.ts, the same chain in process.
const chain = argv.includes("--time-chain") ? timedChain(filters) : new FilterChain(filters);

function timedChain(fs: HttpFilter[]): FilterChain {
  const acc = { req: 0, res: 0, done: 0, n: 0 };
  process.on("SIGUSR2", () => {
    const us = (ms: number): string => (ms * 1000 / acc.n).toFixed(2);
    console.error(
      `chain in proxy: request ${us(acc.req)} µs, response ${us(acc.res)} µs, onDone ${
        us(acc.done)
      } µs per request over ${acc.n}`,
    );
    acc.req =
      acc.res =
      acc.done =
      acc.n =
        0;
  });
  return new class extends FilterChain {
    override onRequest(ctx: HttpRequestContext): ReturnType<FilterChain["onRequest"]> {
      const t0 = performance.now();
      const v = super.onRequest(ctx);
      acc.req += performance.now() - t0;
      acc.n++;
      return v;
    }
    override onResponse(
      ctx: HttpRequestContext,
      res: HttpResponseContext,
    ): ReturnType<FilterChain["onResponse"]> {
      const t0 = performance.now();
      const v = super.onResponse(ctx, res);
      acc.res += performance.now() - t0;
      return v;
    }
    override onDone(ctx: HttpRequestContext): void {
      const t0 = performance.now();
      super.onDone(ctx);
      acc.done += performance.now() - t0;
    }
  }(fs);
}
// On Bun the proxy's sockets are native (src/core/native_socket.ts) unless `--node-net`.
const native = nativeSockets && !argv.includes("--node-net");
const route = argv.includes("--no-route-policy") ? undefined : defaultRoute();
const proxy = new HttpProxy({
  chain: () => chain,
  direction: "inbound",
  ...(route ? { routePolicy: () => route } : {}),
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
// `--alloc-probe` (Bun): SIGUSR2 once to take a heap census after a full GC, again to print the
// objects allocated since, by type (garbage included: a census walks every cell, marked or
// not; a GC in between spoils it, so keep the batch small).
if (argv.includes("--alloc-probe") && "Bun" in globalThis) {
  const jsc = await import("bun:jsc" as string);
  let base: Record<string, number> | undefined;
  process.on("SIGUSR2", () => {
    if (!base) {
      jsc.fullGC();
      base = { ...jsc.heapStats().objectTypeCounts };
      return;
    }
    const now: Record<string, number> = jsc.heapStats().objectTypeCounts;
    const diff = Object.entries(now).map(([k, v]) => [k, v - (base![k] ?? 0)] as const)
      .filter(([, d]) => d > 0).sort((a, b) => b[1] - a[1]);
    console.error(JSON.stringify(Object.fromEntries(diff)));
    base = undefined;
  });
}
// `--jsc-profile FILE` (Bun): JSC's sampling profiler; its stack traces go to FILE at exit.
const profile = argv.indexOf("--jsc-profile");
if (profile >= 0 && "Bun" in globalThis) {
  const jsc = await import("bun:jsc" as string);
  jsc.startSamplingProfiler();
  process.on("exit", () => {
    writeFileSync(argv[profile + 1]!, JSON.stringify(jsc.samplingProfilerStackTraces()));
  });
}
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
