// deno-lint-ignore-file no-console
/**
 * weft's HttpProxy on Bun's native sockets (src/core/native_socket.ts), downstream and upstream,
 * for tests that drive it from Deno over TCP: `bun tests/support/bun_l7_proxy.ts --upstream
 * host:port [--headers-timeout-ms N] [--upstream-idle-ms N] [--fast-path-filters]`. No filters, or
 * with `--fast-path-filters` those of fast_path_filters.ts. Prints `{"port": N, "sockets": "native"}`
 * once listening; each line `idle` on stdin is answered with `{"idle": N}` (pooled upstream
 * connections); runs until killed (SIGTERM closes the proxy and the listener).
 */
import process from "node:process";
import {
  connectNative,
  FilterChain,
  HttpProxy,
  installProcessGuard,
  listenNative,
  nativeSockets,
} from "../../src/core/mod.ts";
import { TEST_PEER } from "./filter_context.ts";
import { fastPathFilters } from "./fast_path_filters.ts";

installProcessGuard();
if (!nativeSockets) {
  console.error("bun_l7_proxy: runs on Bun only");
  process.exit(2);
}
const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const [upHost, upPort] = (opt("--upstream") ?? "127.0.0.1:8080").split(":") as [string, string];
const chain = new FilterChain(argv.includes("--fast-path-filters") ? fastPathFilters() : []);
const proxy = new HttpProxy({
  chain: () => chain,
  direction: "inbound",
  requestHeadersTimeoutMs: Number(opt("--headers-timeout-ms") ?? 10_000),
  ...(opt("--upstream-idle-ms")
    ? { upstreamIdleTimeoutMs: Number(opt("--upstream-idle-ms")) }
    : {}),
  dialUpstream: () => connectNative(upHost, Number(upPort), 5_000).then((s) => s.asDuplex()),
});
const listener = listenNative("127.0.0.1", 0, (s) => {
  proxy.handle(s.asDuplex(), TEST_PEER).catch((e: unknown) => console.error(String(e)));
});
process.on("SIGTERM", () => {
  proxy.close();
  listener.close();
  process.exit(0);
});
process.stdin.on("data", (b: Uint8Array) => {
  for (const line of new TextDecoder().decode(b).split("\n")) {
    if (line.trim() === "idle") console.log(JSON.stringify({ idle: proxy.idleUpstreams }));
  }
});
console.log(JSON.stringify({ port: listener.port, sockets: "native" }));
