/**
 * Hop-by-hop fields and WebSocket upgrades through weft's L7 proxy (HTTP/1.1), against a raw
 * upstream that records the heads it receives (tests/support/ws_raw.ts): on Deno in this process
 * (with a filter chain: an authz-style deny), and on Bun's native sockets
 * (tests/support/bun_l7_proxy.ts; skipped without a bun binary).
 */
import assert from "node:assert/strict";
import net from "node:net";
import { Buffer } from "node:buffer";
import { FilterChain, type HttpFilter, HttpProxy } from "../src/core/mod.ts";
import { TEST_PEER } from "./support/filter_context.ts";
import { bunPath } from "./support/weft_proc.ts";
import { startBunProxy } from "./support/bun_l7.ts";
import {
  connect,
  field,
  type RawConn,
  type RawUpstream,
  rawUpstream,
  wsAccept,
  wsFrame,
} from "./support/ws_raw.ts";

/** Denies /deny with 403 (as an authorization filter would) and records what it saw. */
function denyFilter(seen: string[]): HttpFilter {
  return {
    name: "deny",
    failPolicy: "FAIL_CLOSE",
    wantsRequestBody: false,
    wantsResponseBody: false,
    onRequest: (ctx) => {
      seen.push(`${ctx.path} upgrade=${ctx.requestHeaders.get("upgrade") ?? ""}`);
      return ctx.path === "/deny"
        ? {
          action: "respond",
          response: { status: 403, headers: [], body: "denied", details: "denied" },
        }
        : { action: "continue" };
    },
    onResponse: () => ({ action: "continue" }),
    onDone: () => {},
  };
}

async function denoProxy(upPort: number, seen: string[]): Promise<{
  port: number;
  close(): Promise<void>;
}> {
  const chain = new FilterChain([denyFilter(seen)]);
  const proxy = new HttpProxy({
    chain: () => chain,
    direction: "inbound",
    dialUpstream: () => {
      const s = net.connect(upPort, "127.0.0.1");
      return new Promise((ok, fail) => {
        s.once("connect", () => ok(s));
        s.once("error", fail);
      });
    },
  });
  const handled = new Set<Promise<void>>();
  const server = net.createServer((s) => {
    const h = proxy.handle(s, TEST_PEER);
    handled.add(h);
    h.finally(() => handled.delete(h));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      proxy.close();
      await new Promise((r) => server.close(r));
      await Promise.all(handled);
    },
  };
}

const WS_KEY = "dGhlIHNhbXBsZSBub25jZQ==";

function wsRequest(path: string, extra = ""): string {
  return `GET ${path} HTTP/1.1\r\nHost: echo\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${WS_KEY}\r\n${extra}\r\n`;
}

/** A WebSocket exchange: the 101, three frames echoed (one of 70 000 bytes), a close, and the
 * connection's end after it. */
async function webSocketExchange(c: RawConn, path = "/ws", extra = ""): Promise<void> {
  c.sock.write(wsRequest(path, extra));
  const head = await c.head();
  assert.ok(head?.startsWith("HTTP/1.1 101 "), String(head));
  assert.equal(field(head!, "sec-websocket-accept"), wsAccept(WS_KEY));
  assert.equal(field(head!, "upgrade")?.toLowerCase(), "websocket");
  assert.equal(field(head!, "connection")?.toLowerCase(), "upgrade");
  assert.equal(field(head!, "keep-alive"), undefined, "hop-by-hop keep-alive left out");
  const big = Buffer.alloc(70_000, 0x61);
  c.sock.write(wsFrame(1, Buffer.from("hello"), true));
  c.sock.write(wsFrame(2, big, true));
  c.sock.write(wsFrame(1, Buffer.from("again"), true));
  assert.deepEqual(await c.frame(), [1, Buffer.from("echo:hello")]);
  const f2 = await c.frame();
  assert.equal(f2?.[0], 2);
  assert.ok(f2?.[1].equals(big));
  assert.deepEqual(await c.frame(), [1, Buffer.from("echo:again")]);
  c.sock.write(wsFrame(8, Buffer.from([0x03, 0xe8]), true));
  assert.deepEqual(await c.frame(), [8, Buffer.from([0x03, 0xe8])]);
  await c.until(() => (c.ended ? true : undefined));
  assert.ok(c.ended);
}

/** The request hop-by-hop checks (shared by both runtimes). */
async function hopByHop(port: number, up: RawUpstream): Promise<void> {
  const c = await connect(port);
  try {
    c.sock.write(
      "GET /h HTTP/1.1\r\nHost: echo\r\nConnection: keep-alive, X-Named\r\nX-Named: drop\r\n" +
        "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers, deflate\r\n" +
        "Upgrade: websocket\r\nX-End-To-End: kept\r\n\r\n",
    );
    const [head, body] = (await c.response())!;
    assert.ok(head.startsWith("HTTP/1.1 200 "), head);
    assert.equal(body, "ok");
    const got = up.heads.at(-1)!.toLowerCase();
    for (
      const gone of ["connection:", "x-named:", "keep-alive:", "proxy-connection:", "upgrade:"]
    ) {
      assert.ok(!got.includes(`\r\n${gone}`), `${gone} forwarded:\n${got}`);
    }
    assert.equal(field(got, "te"), "trailers");
    assert.equal(field(got, "x-end-to-end"), "kept");
    // The response's hop-by-hop fields (and the one its Connection names) stay on that hop.
    const res = head.toLowerCase();
    for (const gone of ["x-hop-res:", "keep-alive:", "proxy-connection:", "connection:"]) {
      assert.ok(!res.includes(`\r\n${gone}`), `${gone} passed back:\n${head}`);
    }
    assert.equal(field(res, "x-end-to-end"), "kept");
    // A lone `Connection: keep-alive` is not forwarded either; the connection stays open.
    c.sock.write("GET /h HTTP/1.1\r\nHost: echo\r\nConnection: keep-alive\r\n\r\n");
    assert.equal((await c.response())![1], "ok");
    assert.ok(!up.heads.at(-1)!.toLowerCase().includes("\r\nconnection:"), String(up.heads.at(-1)));
    // A TE without trailers goes nowhere; `Connection: close` closes the downstream after the
    // response and is not sent upstream.
    c.sock.write("GET /h HTTP/1.1\r\nHost: echo\r\nTE: gzip\r\nConnection: close\r\n\r\n");
    const [head2] = (await c.response())!;
    assert.equal(field(head2, "connection"), "close");
    const got2 = up.heads.at(-1)!.toLowerCase();
    assert.ok(!got2.includes("\r\nte:") && !got2.includes("\r\nconnection:"), got2);
    await c.until(() => (c.ended ? true : undefined));
    assert.ok(c.ended, "the downstream closes after Connection: close");
  } finally {
    c.sock.destroy();
  }
}

/** Upgrade edge cases (shared): no desync on any of them. */
async function upgradeEdges(port: number, up: RawUpstream): Promise<void> {
  // An upgrade type weft has no config for: Envoy's local 403, nothing sent upstream, and the
  // connection closes (what follows the head may be the other protocol's bytes).
  let c = await connect(port);
  const before = up.heads.length;
  c.sock.write(
    "GET /ws HTTP/1.1\r\nHost: echo\r\nConnection: upgrade\r\nUpgrade: foo/1\r\n\r\n" +
      "GET /smuggled HTTP/1.1\r\nHost: echo\r\n\r\n",
  );
  let r = (await c.response())!;
  assert.ok(r[0].startsWith("HTTP/1.1 403 "), r[0]);
  assert.equal(await c.head(), undefined, "nothing after the 403: the connection closed");
  assert.equal(up.heads.length, before);
  c.sock.destroy();
  c = await connect(port);
  // h2c: its upgrade fields are stripped and the request served as HTTP/1.1 on the same
  // connection.
  c.sock.write(
    "GET /h HTTP/1.1\r\nHost: echo\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n" +
      "HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
  );
  r = (await c.response())!;
  assert.ok(r[0].startsWith("HTTP/1.1 200 "), r[0]);
  const h2c = up.heads.at(-1)!.toLowerCase();
  for (const gone of ["upgrade:", "http2-settings:", "connection:"]) {
    assert.ok(!h2c.includes(`\r\n${gone}`), `${gone} forwarded:\n${h2c}`);
  }
  // A 101 to a request that did not ask to upgrade: 502, never a tunnel.
  c.sock.write("GET /sneaky-101 HTTP/1.1\r\nHost: echo\r\n\r\n");
  r = (await c.response())!;
  assert.ok(r[0].startsWith("HTTP/1.1 502 "), r[0]);
  c.sock.destroy();
  // Upgrade on HTTP/1.0 is ignored (RFC 9110 §7.8): an ordinary request without the fields.
  c = await connect(port);
  c.sock.write(
    "GET /ws HTTP/1.0\r\nHost: echo\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
  );
  r = (await c.response())!;
  assert.equal(r[1], "no upgrade");
  assert.ok(!up.heads.at(-1)!.toLowerCase().includes("\r\nupgrade:"));
  c.sock.destroy();
  // An upgrade request with a body: the body goes first, as framed, then the tunnel.
  c = await connect(port);
  c.sock.write(wsRequest("/ws", "Content-Length: 5\r\n") + "hello");
  const head = await c.head();
  assert.ok(head?.startsWith("HTTP/1.1 101 "), String(head));
  c.sock.write(wsFrame(1, Buffer.from("after body"), true));
  assert.deepEqual(await c.frame(), [1, Buffer.from("echo:after body")]);
  c.sock.destroy();
  // An upgrade the upstream declines is an ordinary response, and then the connection closes.
  c = await connect(port);
  c.sock.write(wsRequest("/h"));
  r = (await c.response())!;
  assert.ok(r[0].startsWith("HTTP/1.1 200 "), r[0]);
  assert.equal(field(r[0], "connection"), "close");
  assert.equal(await c.head(), undefined);
  c.sock.destroy();
}

Deno.test("L7 (Deno): hop-by-hop fields stay on their hop, both ways", async () => {
  const up = await rawUpstream();
  const proxy = await denoProxy(up.port, []);
  try {
    await hopByHop(proxy.port, up);
  } finally {
    await proxy.close();
    await up.close();
  }
});

Deno.test(
  "L7 (Deno): a WebSocket through the proxy; a denied one gets 403 and no upgrade; " +
    "other upgrades and odd cases never desync",
  async () => {
    const up = await rawUpstream();
    const seen: string[] = [];
    const proxy = await denoProxy(up.port, seen);
    try {
      const c = await connect(proxy.port);
      try {
        await webSocketExchange(c);
      } finally {
        c.sock.destroy();
      }
      // The filter chain saw the upgrade request's headers.
      assert.ok(seen.includes("/ws upgrade=websocket"), seen.join("\n"));
      const up0 = up.heads.at(-1)!.toLowerCase();
      assert.equal(field(up0, "upgrade"), "websocket");
      assert.equal(field(up0, "connection"), "upgrade");
      // Denied: 403, nothing upstream, no upgrade.
      const d = await connect(proxy.port);
      const before = up.heads.length;
      d.sock.write(wsRequest("/deny") + "GET /smuggled HTTP/1.1\r\nHost: echo\r\n\r\n");
      const [head, body] = (await d.response())!;
      assert.ok(head.startsWith("HTTP/1.1 403 "), head);
      assert.equal(body, "denied");
      assert.equal(await d.head(), undefined, "the connection closes after the 403");
      assert.equal(up.heads.length, before);
      d.sock.destroy();
      await upgradeEdges(proxy.port, up);
    } finally {
      await proxy.close();
      await up.close();
    }
  },
);

const BUN = bunPath();

Deno.test({
  name: "L7 (Bun, native sockets): hop-by-hop fields, a WebSocket through the proxy, upgrade " +
    "edge cases",
  ignore: BUN === undefined,
  fn: async () => {
    const up = await rawUpstream();
    const proxy = await startBunProxy(up.port, 10_000);
    try {
      await hopByHop(proxy.port, up);
      const c = await connect(proxy.port);
      try {
        await webSocketExchange(c);
      } finally {
        c.sock.destroy();
      }
      await upgradeEdges(proxy.port, up);
    } finally {
      await proxy.stop();
      await up.close();
    }
  },
});
