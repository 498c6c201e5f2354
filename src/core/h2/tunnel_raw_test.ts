/** Our session against a hand-driven peer over plain TCP: connection errors, PING, stream limits. */
import assert from "node:assert/strict";
import * as net from "node:net";
import { H2Session } from "./tunnel.ts";
import { encodeHeaders } from "./hpack.ts";
import {
  ErrorCode,
  Flag,
  frame,
  FrameReader,
  FrameType,
  headersFrames,
  PREFACE,
  readU32,
  settingsFrame,
} from "./frames.ts";

interface Raw {
  sock: net.Socket;
  /** Resolves with the first frame of `type` the session sends. */
  next(type: number): Promise<{ flags: number; id: number; payload: Uint8Array }>;
  closed: Promise<void>;
}

async function rawPeer(
  opts: { maxConcurrentStreams?: number } = {},
): Promise<Raw & { server: H2Session; stop(): Promise<void> }> {
  let server!: H2Session;
  const listener = net.createServer((s) => {
    server = new H2Session(s, "server", opts);
    server.onConnect((_h, respond) => void respond(200)!.on("error", () => {}).resume());
  });
  await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
  const sock = net.connect((listener.address() as net.AddressInfo).port, "127.0.0.1");
  await new Promise((r) => sock.once("connect", r));
  const waiters: [number, (f: { flags: number; id: number; payload: Uint8Array }) => void][] = [];
  const reader = new FrameReader({
    frame: (type, flags, id, payload) => {
      const i = waiters.findIndex(([t]) => t === type);
      if (i >= 0) waiters.splice(i, 1)[0]![1]({ flags, id, payload: payload.slice() });
    },
    data: () => {},
  }, 1 << 24);
  sock.on("data", (c: Uint8Array) => reader.push(c));
  const closed = new Promise<void>((r) => sock.once("close", () => r()));
  return {
    sock,
    get server() {
      return server;
    },
    next: (type) => new Promise((r) => waiters.push([type, r])),
    closed,
    stop: async () => {
      sock.destroy();
      server?.destroy();
      await server?.closed;
      await new Promise((r) => listener.close(r));
    },
  };
}

const connectBlock = (id: number): Uint8Array =>
  headersFrames(id, encodeHeaders([[":method", "CONNECT"], [":authority", "a:1"]]), false, 16384);

Deno.test("h2 raw: a bad preface gets GOAWAY(PROTOCOL_ERROR) and the connection closes", async () => {
  const p = await rawPeer();
  const goaway = p.next(FrameType.GOAWAY);
  p.sock.write("GET / HTTP/1.1\r\n\r\n");
  assert.equal(readU32((await goaway).payload, 4), ErrorCode.PROTOCOL_ERROR);
  await p.closed;
  await p.stop();
});

Deno.test("h2 raw: PING is answered with the same payload; SETTINGS is acknowledged", async () => {
  const p = await rawPeer();
  const ack = p.next(FrameType.SETTINGS);
  const pong = p.next(FrameType.PING);
  p.sock.write(PREFACE);
  p.sock.write(settingsFrame(new Map()));
  p.sock.write(frame(FrameType.PING, 0, 0, new TextEncoder().encode("weft-h2!")));
  assert.equal((await ack).flags, 0); // the server's own SETTINGS come first
  const got = await pong;
  assert.equal(got.flags, Flag.ACK);
  assert.equal(new TextDecoder().decode(got.payload), "weft-h2!");
  await p.stop();
});

Deno.test("h2 raw: streams beyond SETTINGS_MAX_CONCURRENT_STREAMS are refused", async () => {
  const p = await rawPeer({ maxConcurrentStreams: 1 });
  const response = p.next(FrameType.HEADERS);
  const refused = p.next(FrameType.RST_STREAM);
  p.sock.write(PREFACE);
  p.sock.write(settingsFrame(new Map()));
  p.sock.write(connectBlock(1));
  p.sock.write(connectBlock(3));
  assert.equal((await response).id, 1);
  const rst = await refused;
  assert.deepEqual([rst.id, readU32(rst.payload)], [3, ErrorCode.REFUSED_STREAM]);
  assert.equal(p.server.streamCount, 1);
  await p.stop();
});

Deno.test("h2 raw: our client honours the peer's stream limit", async () => {
  const listener = net.createServer((s) => {
    const h = new H2Session(s, "server", { maxConcurrentStreams: 1 });
    h.onConnect((_h, respond) => void respond(200)!.on("error", () => {}).resume());
    s.on("close", () => h.destroy());
  });
  await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
  const sock = net.connect((listener.address() as net.AddressInfo).port, "127.0.0.1");
  await new Promise((r) => sock.once("connect", r));
  const client = new H2Session(sock, "client");
  await client.ping(); // server SETTINGS have arrived
  const first = await client.openConnect({ ":authority": "a:1" });
  assert.equal(first.status, 200);
  first.stream.on("error", () => {});
  await assert.rejects(client.openConnect({ ":authority": "b:1" }), /peer allows 1 streams/);
  client.destroy();
  await client.closed;
  await new Promise((r) => listener.close(r));
});
