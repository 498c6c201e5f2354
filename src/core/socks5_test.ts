import assert from "node:assert/strict";
import * as net from "node:net";
import { closed, dial, roundTrip, startEcho, startMesh } from "./_l4_test_kit.ts";
import { parseSocks, socksHandshake } from "./socks5.ts";
import { loopbackBlock } from "../../tests/support/weft_proc.ts";
import { splitHostPort } from "./ip.ts";

function request(host: string, port: number): Uint8Array {
  const v4 = /^\d+\.\d+\.\d+\.\d+$/.test(host);
  const addr = v4
    ? [1, ...host.split(".").map(Number)]
    : [3, host.length, ...new TextEncoder().encode(host)];
  return Uint8Array.from([5, 1, 0, 5, 1, 0, ...addr, port >> 8, port & 0xff]);
}

/** Greeting + CONNECT in one write (pipelined); resolves with the reply code. */
function socksConnect(s: net.Socket, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let buf = new Uint8Array(0);
    const onData = (c: Uint8Array): void => {
      const n = new Uint8Array(buf.length + c.length);
      n.set(buf);
      n.set(c, buf.length);
      buf = n;
      if (buf.length >= 12) {
        s.off("data", onData);
        s.pause();
        assert.deepEqual([...buf.subarray(0, 2)], [5, 0]);
        resolve(buf[3]!);
      }
    };
    s.on("data", onData);
    s.once("error", reject);
    s.write(request(host, port));
  });
}

Deno.test("socks5 parser: ipv6, domain, partial input, bad command", () => {
  const v6 = Uint8Array.from([5, 1, 0, 5, 1, 0, 4, ...new Array(15).fill(0), 1, 0, 80]);
  const p = parseSocks(v6);
  assert.ok("done" in p && p.req.host === "0:0:0:0:0:0:0:1" && p.req.port === 80);
  assert.ok("need" in parseSocks(v6.subarray(0, 10)));
  const bind = Uint8Array.from([5, 1, 0, 5, 2, 0, 1, 1, 2, 3, 4, 0, 80]);
  const e = parseSocks(bind);
  assert.ok("error" in e && e.error === 7);
});

Deno.test("socks5: CONNECT by service hostname and by IP tunnels over HBONE; registry-only and self-call refused", async () => {
  const m = await startMesh(41);
  const other = await startEcho("127.77.41.200");
  const socksAddr = splitHostPort(m.socks)!;
  try {
    const s = await dial(socksAddr.host, socksAddr.port, m.clientIp);
    assert.equal(await socksConnect(s, "echo.default.svc.cluster.local", 80), 0);
    assert.equal(
      new TextDecoder().decode(await roundTrip(s, new TextEncoder().encode("via-dns"))),
      "via-dns",
    );
    const s2 = await dial(socksAddr.host, socksAddr.port, m.clientIp);
    assert.equal(await socksConnect(s2, m.vip, 80), 0);
    assert.equal(
      new TextDecoder().decode(await roundTrip(s2, new TextEncoder().encode("via-vip"))),
      "via-vip",
    );
    // ALLOW_ANY: an address outside the mesh is reached directly.
    const s3 = await dial(socksAddr.host, socksAddr.port, m.clientIp);
    assert.equal(await socksConnect(s3, "127.77.41.200", other.port), 0);
    assert.equal(
      new TextDecoder().decode(await roundTrip(s3, new TextEncoder().encode("direct"))),
      "direct",
    );
    // Self-call: weft's own ports are never a destination.
    const s4 = await dial(socksAddr.host, socksAddr.port, m.clientIp);
    assert.equal(await socksConnect(s4, m.serverIp, 15008), 2);
    await closed(s4);
    await m.a.update(m.snapA({ version: "2", outboundTrafficPolicy: "REGISTRY_ONLY" }));
    const s5 = await dial(socksAddr.host, socksAddr.port, m.clientIp);
    assert.equal(await socksConnect(s5, "127.77.41.200", other.port), 2);
    await closed(s5);
  } finally {
    await other.close();
    await m.close();
  }
});

Deno.test("socks5: a client that resets right after a refused request does not reach the process as an unhandled socket error", async () => {
  // bench/fuzz.ts found it: the refusal was written after the handshake dropped its 'error'
  // listener, so the peer's RST surfaced as an uncaught ECONNRESET/EPIPE.
  const host = loopbackBlock()(1);
  let handshakes = 0;
  const refused: Promise<unknown>[] = [];
  const server = net.createServer((s) => {
    handshakes++;
    refused.push(socksHandshake(s, 2000).then((r) => r.reply(2), () => {}));
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const bad = [
      Uint8Array.of(5, 1, 0, 5, 2, 0, 1, 1, 2, 3, 4, 0, 80), // BIND: refused with code 7
      Uint8Array.of(5, 1, 2), // no no-auth method: refused with 0xff
      Uint8Array.of(5, 1, 0, 5, 1, 0, 9, 0, 0), // address type 9
      Uint8Array.of(5, 1, 0, 5, 1, 0, 1, 1, 2, 3, 4, 0, 80), // accepted, then refused by reply(2)
    ];
    for (let i = 0; i < 60; i++) {
      const c = net.connect({ host, port });
      c.on("error", () => {});
      await new Promise((r) => c.once("connect", r));
      c.write(bad[i % bad.length]!);
      // Give the server the bytes, then reset while its refusal is on the way.
      await new Promise((r) => setTimeout(r, i % 3));
      c.resetAndDestroy();
    }
    while (handshakes < 60 || refused.length < 60) await new Promise((r) => setTimeout(r, 10));
    await Promise.all(refused);
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    await new Promise((r) => server.close(r));
  }
});
