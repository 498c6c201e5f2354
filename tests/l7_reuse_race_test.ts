/**
 * The keep-alive reuse race, forced: the upstream closes a pooled connection exactly when the
 * proxy reuses it (it reads the request, then closes without answering, as a server whose
 * keep-alive timer fired as the request arrived does). A request without a body is then sent
 * again once on a fresh connection (a 200, not a 503), from an HTTP/1.1 downstream on Deno and
 * Bun, and from an h2c downstream (http2_to_http1.ts).
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { Buffer } from "node:buffer";
import { bunPath } from "./support/weft_proc.ts";
import { startBunProxy } from "./support/bun_l7.ts";
import { startNodeProxy } from "./support/node_l7.ts";
import { rawClient } from "./support/raw_http_client.ts";
import { closeSession, h2Call } from "./support/h2c_client.ts";

const BUN = bunPath();

/** Answers the first request of each connection with 200 "ok" and closes the connection at its
 * second request, unanswered. */
async function closeAtReuse(): Promise<
  { port: number; accepted(): number; close(): Promise<void> }
> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    let buf = Buffer.alloc(0);
    let seen = 0;
    s.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (let end = buf.indexOf("\r\n\r\n"); end >= 0; end = buf.indexOf("\r\n\r\n")) {
        buf = buf.subarray(end + 4);
        if (++seen === 1) s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        else return void s.destroy();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => accepted,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

for (const runtime of ["deno", "bun"] as const) {
  Deno.test({
    name: `reuse race (${runtime}, HTTP/1.1 downstream): a pooled connection the upstream ` +
      "closes as it is reused costs one fresh try, not a 503",
    ignore: runtime === "bun" && BUN === undefined,
    fn: async () => {
      const up = await closeAtReuse();
      const proxy = runtime === "bun"
        ? await startBunProxy(up.port, 10_000)
        : await startNodeProxy(up.port);
      const c = await rawClient(proxy.port);
      try {
        for (let i = 0; i < 3; i++) {
          const r = await c.roundTrip("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
          assert.equal(r.status, 200, `request ${i}: ${r.head}`);
        }
        assert.equal(up.accepted(), 3);
      } finally {
        c.close();
        const out = await proxy.stop();
        await up.close();
        assert.ok(!/unhandled/i.test(out), `the proxy logged: ${out}`);
      }
    },
  });
}

Deno.test("reuse race (deno, h2c downstream): a pooled connection the upstream closes as it is reused costs one fresh try, not a 503", async () => {
  const up = await closeAtReuse();
  const proxy = await startNodeProxy(up.port);
  const s = http2.connect(`http://127.0.0.1:${proxy.port}`);
  try {
    for (let i = 0; i < 3; i++) {
      const r = await h2Call(s, "/", { method: "GET" });
      assert.equal(r.status, 200, `request ${i}: ${r.body}`);
      assert.equal(r.body, "ok");
    }
    assert.equal(up.accepted(), 3);
  } finally {
    await closeSession(s);
    await proxy.stop();
    await up.close();
  }
});

for (const how of ["GOAWAY", "a closed socket"] as const) {
  Deno.test(`reuse race (deno, h2c upstream): a session the upstream ends with ${how} while idle is replaced for the next request`, async () => {
    const sessions = new Set<http2.ServerHttp2Session>();
    let opened = 0;
    const server = http2.createServer();
    server.on("session", (ss) => {
      opened++;
      sessions.add(ss);
      ss.on("close", () => sessions.delete(ss));
    });
    server.on("stream", (s0) => {
      // Cast: depending on the other files in a check, the overload may type it as Http2Stream.
      const st = s0 as http2.ServerHttp2Stream;
      st.resume();
      st.on("end", () => {
        st.respond({ ":status": 200 });
        st.end("ok");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const upPort = (server.address() as AddressInfo).port;
    const proxy = await startNodeProxy(upPort, { upstreamProtocol: "h2" });
    const s = http2.connect(`http://127.0.0.1:${proxy.port}`);
    try {
      assert.equal((await h2Call(s, "/", { method: "GET" })).status, 200);
      const closed = [...sessions].map((ss) =>
        new Promise<void>((r) => {
          ss.once("close", () => r());
          if (how === "GOAWAY") ss.close();
          else ss.destroy();
        })
      );
      await Promise.all(closed);
      const again = await h2Call(s, "/", { method: "GET" });
      assert.equal(again.status, 200, again.body);
      assert.equal(again.body, "ok");
      assert.equal(opened, 2);
    } finally {
      await closeSession(s);
      await proxy.stop();
      for (const ss of sessions) ss.destroy();
      await new Promise((r) => server.close(r));
    }
  });
}
