/**
 * bench/openloop.c, the benchmarks' open-loop latency client: built with the C compiler setup
 * installs, it sends every request of a fixed-rate run over keep-alive connections to a real
 * HTTP/1.1 server (Deno.serve on a random loopback address) and reports each one, timed from its
 * scheduled start and from its send. Skipped without a C compiler (the benches then fall back to
 * bench/seq_client.ts, labelled).
 */
import assert from "node:assert/strict";
import { openLoop, openLoopBinary } from "../bench/openloop.ts";
import { loopbackBlock } from "./support/weft_proc.ts";

const bin = await openLoopBinary().catch(() => undefined);

Deno.test({
  name: "openloop.c: a fixed-rate run over keep-alive connections, every request answered",
  ignore: bin === undefined,
  async fn() {
    const host = loopbackBlock()(9);
    let served = 0;
    const ac = new AbortController();
    const server = Deno.serve(
      { hostname: host, port: 0, signal: ac.signal, onListen: () => {} },
      (req) => {
        served++;
        return new Response(new URL(req.url).pathname === "/x" ? "ok\n" : "no\n");
      },
    );
    try {
      const url = `http://${host}:${server.addr.port}/x`;
      // Plain timer sleeps on the default policy (no root needed): 200 requests in 0.4 s.
      const r = await openLoop(url, 0.4, 500, { trace: true, flags: ["--warmup", "5"] });
      assert.equal(r.client, "c");
      assert.equal(r.sent, 200);
      assert.equal(r.failed, 0);
      assert.equal(served, 205); // the warm-up's 5 and the run's 200
      assert.equal(r.samples?.length, 200);
      // Evenly spaced: each scheduled start 2 ms after the one before.
      const starts = r.samples!.map((s) => s[0]);
      for (let i = 1; i < starts.length; i++) {
        assert.ok(Math.abs(starts[i]! - starts[i - 1]! - 2) < 0.01, `start ${i}`);
      }
      for (const [, ms, lag] of r.samples!) assert.ok(ms >= lag && lag >= 0);
      assert.ok(r.p50 > 0 && r.p50 <= r.p99 && r.p99 <= r.max);
      assert.ok(r.sendP50 > 0 && r.sendP50 <= r.p50 + 1e-9);
    } finally {
      ac.abort();
      await server.finished;
    }
  },
});
