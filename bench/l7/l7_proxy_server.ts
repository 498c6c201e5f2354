// deno-lint-ignore-file no-console
/**
 * weft's HTTP proxy with a chain of 3 component filters (built from plugins/examples), in front
 * of `--upstream host:port`. Prints `{"port": N}` once listening; runs until killed.
 */
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { FilterChain, HttpProxy } from "../../src/core/mod.ts";
import { exampleFilter } from "../../tests/support/example_plugins.ts";
import { TEST_PEER } from "../../tests/support/filter_context.ts";

const up = Deno.args[Deno.args.indexOf("--upstream") + 1] ?? "127.0.0.1:8080";
const [upHost, upPort] = up.split(":") as [string, string];
const filters = Deno.args.includes("--no-filters") ? [] : [
  await exampleFilter("c_header_rewrite", { header: "x-hello", value: "world" }),
  await exampleFilter("c_local_response"),
  await exampleFilter("c_faulty"),
];
const chain = new FilterChain(filters);
const proxy = new HttpProxy({
  chain: () => chain,
  direction: "inbound",
  dialUpstream: () =>
    new Promise<Duplex>((ok, fail) => {
      const s = net.connect(Number(upPort), upHost);
      s.setNoDelay(true);
      s.once("connect", () => ok(s));
      s.once("error", fail);
    }),
});
const server = net.createServer((s) => {
  s.setNoDelay(true);
  void proxy.handle(s, TEST_PEER);
});
const exitAfter = Deno.args.indexOf("--exit-after-ms");
if (exitAfter >= 0) setTimeout(() => Deno.exit(0), Number(Deno.args[exitAfter + 1])); // profiling runs
server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }));
});
