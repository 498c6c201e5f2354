/** weft's HttpProxy in this process on node:net (Deno), with the interface of bun_l7.ts's
 * startBunProxy, so one test runs on both runtimes' socket paths. */
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { FilterChain, HttpProxy, type RoutePolicy } from "../../src/core/mod.ts";
import { TEST_PEER } from "./filter_context.ts";

/** The proxy in front of 127.0.0.1:upPort; stop() waits (bounded) for every connection handler
 * to end and fails if one does not: a handler left waiting is a hang. */
export async function startNodeProxy(
  upPort: number,
  opts: {
    readonly upstreamIdleTimeoutMs?: number;
    readonly routePolicy?: () => RoutePolicy;
    readonly upstreamProtocol?: "http1" | "h2";
  } = {},
): Promise<{ port: number; idle(): Promise<number>; stop(): Promise<string> }> {
  const proxy = new HttpProxy({
    chain: () => new FilterChain([]),
    direction: "inbound",
    ...opts,
    dialUpstream: () =>
      new Promise<Duplex>((ok, fail) => {
        const s = net.connect(upPort, "127.0.0.1");
        s.once("connect", () => ok(s));
        s.once("error", fail);
      }),
  });
  const sockets = new Set<net.Socket>();
  const handled = new Set<Promise<void>>();
  const front = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    const h = proxy.handle(s, TEST_PEER);
    handled.add(h);
    void h.finally(() => handled.delete(h));
  });
  await new Promise<void>((r) => front.listen(0, "127.0.0.1", r));
  return {
    port: (front.address() as AddressInfo).port,
    idle: () => Promise.resolve(proxy.idleUpstreams),
    stop: async () => {
      proxy.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => front.close(r));
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          Promise.all(handled),
          new Promise<never>((_, fail) => {
            timer = setTimeout(() => fail(new Error("a connection handler never ended")), 10_000);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
      return "";
    },
  };
}
