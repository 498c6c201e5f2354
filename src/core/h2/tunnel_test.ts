import assert from "node:assert/strict";
import type { TLSSocket } from "node:tls";
import { H2Session } from "./tunnel.ts";
import {
  collect,
  echo,
  echoThrough,
  makePki,
  mtlsConnect,
  mtlsListen,
  pattern,
  type Pki,
} from "./_h2_test_kit.ts";

const pki: Pki = await makePki();

/** Our client ↔ our server over one real mTLS connection; `setup` configures the server. */
async function withPair(
  setup: (server: H2Session) => void,
  body: (client: H2Session, servers: H2Session[]) => Promise<void>,
): Promise<void> {
  const servers: H2Session[] = [];
  const l = await mtlsListen(pki, (s: TLSSocket) => {
    const h = new H2Session(s, "server");
    servers.push(h);
    setup(h);
  });
  const client = new H2Session(await mtlsConnect(pki, l.port), "client");
  try {
    await body(client, servers);
  } finally {
    client.destroy();
    await client.closed;
    for (const s of servers) s.destroy();
    await Promise.all(servers.map((s) => s.closed));
    await l.close();
  }
}

const echoServer = (h: H2Session): void =>
  h.onConnect((headers, respond) => {
    if (headers[":method"] !== "CONNECT") return void respond(400);
    echo(respond(200, { "x-authority": headers[":authority"] ?? "" })!);
  });

Deno.test("h2 tunnel: 1 MiB echo on one stream, and 4 concurrent streams", async () => {
  await withPair(echoServer, async (client) => {
    const data = pattern(1 << 20);
    const { status, stream } = await client.openConnect({ ":authority": "10.0.0.1:80" });
    assert.equal(status, 200);
    assert.deepEqual(await echoThrough(stream, data), data);
    const opened = await Promise.all(
      [1, 2, 3, 4].map((i) => client.openConnect({ ":authority": `10.0.0.${i}:80` })),
    );
    const outs = await Promise.all(
      opened.map((o, i) => echoThrough(o.stream, pattern(300_000, i))),
    );
    outs.forEach((o, i) => assert.deepEqual(o, pattern(300_000, i)));
    assert.equal(client.streamCount, 0);
  });
});

Deno.test("h2 tunnel: non-2xx answer ends the stream; half-close keeps the other direction", async () => {
  await withPair((h) =>
    h.onConnect((headers, respond) => {
      if (headers[":authority"] === "deny:1") return void respond(401);
      const s = respond(200)!;
      // Half-close: read the whole request first, then answer after the client's END_STREAM.
      collect(s).then((req) => s.end(`got ${req.length}`));
    }), async (client) => {
    const denied = await client.openConnect({ ":authority": "deny:1" });
    assert.equal(denied.status, 401);
    assert.equal((await collect(denied.stream)).length, 0);
    const { stream } = await client.openConnect({ ":authority": "ok:1" });
    const reply = collect(stream);
    stream.end(pattern(100_000));
    assert.equal(new TextDecoder().decode(await reply), "got 100000");
  });
});

Deno.test("h2 tunnel: destroying a stream resets it on the peer", async () => {
  let serverErr: ((e: Error) => void) | undefined;
  const reset = new Promise<Error>((r) => (serverErr = r));
  await withPair((h) =>
    h.onConnect((_h, respond) => {
      const s = respond(200)!;
      s.on("error", (e) => serverErr!(e));
      s.resume();
    }), async (client) => {
    const { stream } = await client.openConnect({ ":authority": "a:1" });
    stream.write("x");
    stream.destroy();
    assert.match((await reset).message, /peer reset it \(code 8\)/);
  });
});

Deno.test("h2 tunnel: GOAWAY drains: open stream finishes, new streams refused", async () => {
  await withPair(echoServer, async (client, servers) => {
    const { stream } = await client.openConnect({ ":authority": "a:1" });
    const back = collect(stream);
    stream.write("before");
    const drained = servers[0]!.close();
    await client.ping(); // the GOAWAY has reached the client
    await assert.rejects(client.openConnect({ ":authority": "b:1" }), /draining/);
    assert.equal(client.usable, false);
    stream.end("after");
    assert.equal(new TextDecoder().decode(await back), "beforeafter");
    await drained;
  });
});

Deno.test("h2 tunnel: slow reader: flow control bounds what the receiver buffers", async () => {
  const win = 256 * 1024;
  let serverStream: import("node:stream").Duplex | undefined;
  let ready: () => void;
  const gotStream = new Promise<void>((r) => (ready = r));
  const servers: H2Session[] = [];
  const l = await mtlsListen(pki, (s) => {
    const h = new H2Session(s, "server", { streamWindowBytes: win, streamHighWaterMark: 16384 });
    servers.push(h);
    h.onConnect((_h, respond) => {
      serverStream = respond(200)!;
      serverStream.pause();
      ready();
    });
  });
  const client = new H2Session(await mtlsConnect(pki, l.port), "client");
  const { stream } = await client.openConnect({ ":authority": "a:1" });
  await gotStream;
  const data = pattern(2 << 20);
  stream.end(data); // all queued in the client stream's writable buffer
  await client.ping();
  await servers[0]!.ping();
  await client.ping();
  // The receiver holds at most one window (+ its high-water mark); the rest waits at the sender.
  const buffered = serverStream!.readableLength;
  assert.ok(buffered > 0 && buffered <= win + 16384, `receiver buffered ${buffered}`);
  assert.ok(stream.writableLength >= data.length - win - 65536, `sender ${stream.writableLength}`);
  // Reading reopens the window and everything arrives intact.
  serverStream!.resume();
  assert.deepEqual(await collect(serverStream!), data);
  serverStream!.end();
  assert.equal((await collect(stream)).length, 0);
  client.destroy();
  for (const s of servers) s.destroy();
  await Promise.all([client.closed, ...servers.map((s) => s.closed)]);
  await l.close();
});

Deno.test("h2 tunnel: the L4 copy's send() and data sink keep order, backpressure and end", async () => {
  // Small windows so that direct writes block on flow control and the sink meets a paused
  // stream: every path of send()/deliver() (direct, waiting, Writable after direct) is taken.
  const opts = { streamWindowBytes: 65535, streamHighWaterMark: 16384 };
  const servers: H2Session[] = [];
  const l = await mtlsListen(pki, (s: TLSSocket) => {
    const h = new H2Session(s, "server", opts);
    servers.push(h);
    h.onConnect((_headers, respond) => {
      const st = respond(200)!;
      // The L4 copy (l4_conn.ts pump) into itself: sink + 'data' listener, send, pause on false.
      const onData = function (this: typeof st, c: Uint8Array): void {
        if (!st.send(c)) {
          st.pause();
          st.once("drain", () => st.resume());
        }
      };
      st.setDataSink(onData);
      st.on("data", onData);
      st.on("end", () => st.end());
    });
  });
  const client = new H2Session(await mtlsConnect(pki, l.port), "client", opts);
  try {
    const { stream } = await client.openConnect({ ":authority": "10.0.0.1:80" });
    const data = pattern(1 << 20, 7);
    const got = collect(stream);
    let o = 0;
    for (let i = 0; o < data.length; i++) {
      const n = [100, 70_000, 9000, 1][i % 4]!;
      const piece = data.subarray(o, o + n);
      o += piece.length;
      const ok = i % 3 === 0 ? stream.write(piece) : stream.send(piece);
      if (!ok) await new Promise((r) => stream.once("drain", r));
    }
    stream.end();
    assert.deepEqual(await got, data);
  } finally {
    client.destroy();
    await client.closed;
    for (const s of servers) s.destroy();
    await Promise.all(servers.map((s) => s.closed));
    await l.close();
  }
});
