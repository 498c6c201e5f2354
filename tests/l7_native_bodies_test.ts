/**
 * Bodies through weft's HttpProxy on Bun's native sockets (tests/support/bun_l7_proxy.ts, src/core/
 * native_socket.ts), driven from Deno: an 8 MiB chunked upload echoed back to a slow reader arrives
 * intact (backpressure on both native sockets: the proxy's writes wait for `drain`), a client
 * reset mid-upload costs only that exchange, and 64 keep-alive connections at once are all served.
 * The echo streams back while the upload goes on: until the proxy read the response while sending
 * the request (http1_duplex.ts), an echo larger than what the socket buffers of both directions
 * held deadlocked (14 MiB did here; the 8 MiB one hung once in CI). tests/l7_duplex_test.ts forces
 * that case whatever the buffers.
 * Skipped when no bun binary is present (`deno task setup` installs one).
 */
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { Buffer } from "node:buffer";
import { bunPath } from "./support/weft_proc.ts";
import { startBunProxy } from "./support/bun_l7.ts";
import { within } from "./support/within.ts";

const BUN = bunPath();

/** An upstream that streams each /echo body back (chunked) and answers others with "ok". */
async function echoUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    if (req.url === "/echo") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      req.pipe(res);
    } else {
      req.resume();
      res.end("ok");
    }
  });
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + (i >> 10)) & 0xff;
  return b;
}

function get(port: number, path: string, agent?: http.Agent): Promise<[number, string]> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve([res.statusCode ?? 0, body]));
    });
    req.on("error", reject);
  });
}

Deno.test({
  name: "native sockets (Bun): 8 MiB up and back through the proxy to a slow reader; a reset " +
    "mid-upload costs only its exchange; 64 keep-alive connections at once",
  ignore: BUN === undefined,
  fn: async () => {
    const up = await echoUpstream();
    const proxy = await startBunProxy(up.port, 10_000);
    try {
      // 8 MiB chunked up, read back slowly (a pause after every chunk).
      const data = pattern(8 << 20);
      const got = await within(
        30_000,
        "8 MiB echo",
        new Promise<Buffer>((resolve, reject) => {
          const req = http.request({
            host: "127.0.0.1",
            port: proxy.port,
            method: "POST",
            path: "/echo",
            headers: { "transfer-encoding": "chunked" },
          }, (res) => {
            const parts: Buffer[] = [];
            res.on("data", (c: Buffer) => {
              parts.push(c);
              res.pause();
              setTimeout(() => res.resume(), 1);
            });
            res.on("end", () => resolve(Buffer.concat(parts)));
            res.on("error", reject);
          });
          req.on("error", reject);
          void (async () => {
            for (let at = 0; at < data.length; at += 64 * 1024) {
              if (!req.write(data.subarray(at, at + 64 * 1024))) {
                await new Promise((r) => req.once("drain", r));
              }
            }
            req.end();
          })().catch(reject);
        }),
      );
      assert.equal(got.length, data.length);
      assert.ok(got.equals(data), "the echoed body differs");

      // A client that resets mid-upload: only its exchange ends.
      const s = net.connect(proxy.port, "127.0.0.1");
      s.on("error", () => {});
      await new Promise<void>((r) => s.once("connect", r));
      s.write("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n");
      s.write(pattern(1 << 20));
      await new Promise((r) => setTimeout(r, 50));
      s.destroy();
      assert.deepEqual(
        await within(10_000, "GET after the reset", get(proxy.port, "/after-reset")),
        [
          200,
          "ok",
        ],
      );

      // 64 keep-alive connections at once, 4 requests each.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
      try {
        const all = await within(
          30_000,
          "256 requests on 64 connections",
          Promise.all(Array.from({ length: 256 }, (_, i) => get(proxy.port, `/n${i}`, agent))),
        );
        assert.ok(all.every(([st, b]) => st === 200 && b === "ok"), JSON.stringify(all[0]));
      } finally {
        agent.destroy();
      }
    } finally {
      const out = await proxy.stop();
      await up.close();
      assert.ok(!/unhandled/i.test(out), `the Bun proxy logged: ${out}`);
    }
  },
});
