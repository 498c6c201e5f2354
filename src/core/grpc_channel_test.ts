/** The gRPC client on weft's own HTTP/2 against a gRPC server on the same engine over real
 * loopback TCP (h2c): unary and streaming calls, Trailers-Only errors, deadlines, message caps,
 * GOAWAY and a dropped connection under an open stream (the call ends, the channel redials),
 * keepalive against a silent peer, a refused dial. node:http2 takes no part. */
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { dialGrpc, GrpcChannel } from "./grpc_channel.ts";
import { grpcFrame } from "./grpc_call.ts";
import { GrpcCode, GrpcError, type GrpcStatus } from "./grpc_status.ts";
import { H2Session, type H2Stream, type Headers } from "./h2/mod.ts";

type Handler = (headers: Headers, stream: H2Stream, reply: Reply) => void;

interface Reply {
  head(): H2Stream;
  send(s: H2Stream, message: Uint8Array): void;
  finish(s: H2Stream, code: number, message?: string): void;
}

const reply: Reply = {
  head: () => {
    throw new Error("bound per stream");
  },
  send: (s, m) => void s.write(grpcFrame(m)),
  finish: (s, code, message = "") => {
    s.outTrailers = [["grpc-status", String(code)], ["grpc-message", encodeURIComponent(message)]];
    s.end();
  },
};

/** Messages of a request stream, as they complete. */
function onMessages(s: H2Stream, fn: (m: Uint8Array) => void): void {
  let buf = new Uint8Array(0);
  s.on("data", (c: Uint8Array) => {
    const n = new Uint8Array(buf.length + c.length);
    n.set(buf);
    n.set(c, buf.length);
    buf = n;
    while (buf.length >= 5) {
      const len = new DataView(buf.buffer, buf.byteOffset).getUint32(1);
      if (buf.length < 5 + len) break;
      fn(buf.slice(5, 5 + len));
      buf = buf.subarray(5 + len);
    }
  });
}

async function withServer(
  handler: Handler,
  body: (ch: GrpcChannel, sessions: H2Session[], port: number) => Promise<void>,
  maxConcurrentStreams = 100,
): Promise<void> {
  const sessions: H2Session[] = [];
  const server: Server = createServer((sock: Socket) => {
    const h = new H2Session(sock, "server", { maxConcurrentStreams });
    sessions.push(h);
    h.onConnect((headers, respond, stream) =>
      handler(headers, stream, {
        ...reply,
        head: () => respond(200, { "content-type": "application/grpc" })!,
      })
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const ch = new GrpcChannel({
    connect: () => dialGrpc({ host: "127.0.0.1", port }),
    authority: `127.0.0.1:${port}`,
    scheme: "http",
  });
  try {
    await body(ch, sessions, port);
  } finally {
    ch.close();
    for (const s of sessions) s.destroy();
    await Promise.all(sessions.map((s) => s.closed));
    await new Promise((r) => server.close(r));
  }
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

const echo: Handler = (headers, stream, r) => {
  const s = r.head();
  onMessages(stream, (m) => r.send(s, bytes(`${headers["authorization"]}:${text(m)}`)));
  stream.on("end", () => r.finish(s, 0));
};

Deno.test("grpc client: unary with metadata and a deadline header; bidi streaming; clean end", async () => {
  let timeout = "";
  await withServer((h, s, r) => {
    timeout = h["grpc-timeout"] ?? "";
    echo(h, s, r);
  }, async (ch) => {
    const out = await ch.unary(
      { path: "/t.S/Echo", metadata: [["Authorization", "Bearer x"]], deadlineMs: 5000 },
      bytes("hi"),
    );
    assert.equal(text(out), "Bearer x:hi");
    assert.equal(timeout, "5000m");
    const got: string[] = [];
    let headers: readonly [string, string][] = [];
    const closed = new Promise<GrpcStatus>((resolve) => {
      const c = ch.call({ path: "/t.S/Chat" }, {
        onHeaders: (h) => headers = h,
        onMessage: (m) => {
          got.push(text(m));
          if (got.length === 2) c.end();
        },
        onClose: resolve,
      });
      c.send(bytes("a"));
      c.send(bytes("b"));
    });
    const st = await closed;
    assert.equal(st.code, GrpcCode.OK);
    assert.deepEqual(got, ["undefined:a", "undefined:b"]);
    assert.ok(headers.some(([k, v]) => k === "content-type" && v === "application/grpc"));
  });
});

Deno.test("grpc client: Trailers-Only errors, HTTP errors, oversized messages", async () => {
  await withServer((h, s, r) => {
    if (h[":path"] === "/t.S/Deny") {
      s.respond(200, [
        ["content-type", "application/grpc"],
        ["grpc-status", "7"],
        ["grpc-message", "no%20entry"],
      ], true);
    } else if (h[":path"] === "/t.S/Http") s.respond(503, [], true);
    else {
      const out = r.head();
      r.send(out, new Uint8Array(2048));
      r.finish(out, 0);
    }
  }, async (ch) => {
    const code = (p: Promise<unknown>) =>
      p.then(() => -1, (e) => e instanceof GrpcError ? [e.code, e.status.message] : e);
    let headers = 0;
    const st = await new Promise<GrpcStatus>((resolve) =>
      ch.call({ path: "/t.S/Deny" }, { onHeaders: () => headers++, onClose: resolve }).end()
    );
    assert.deepEqual([st.code, st.message, headers], [7, "no entry", 0]);
    assert.deepEqual((await code(ch.unary({ path: "/t.S/Http" }, bytes(""))) as unknown[])[0], 14);
    assert.deepEqual(
      (await code(ch.unary({ path: "/t.S/Big", maxMessageBytes: 1024 }, bytes(""))) as unknown[])[
        0
      ],
      GrpcCode.RESOURCE_EXHAUSTED,
    );
    assert.equal(
      (await code(ch.unary({ path: "/t.S/Big", maxMessageBytes: 4 }, bytes("12345"))) as unknown[])[
        0
      ],
      GrpcCode.RESOURCE_EXHAUSTED,
    );
  });
});

Deno.test("grpc client: a deadline cancels the stream", async () => {
  let reset = false;
  await withServer((_h, s, r) => {
    r.head();
    s.on("error", () => reset = true);
  }, async (ch) => {
    const e = await ch.unary({ path: "/t.S/Slow", deadlineMs: 50 }, bytes("x")).catch((e) => e);
    assert.ok(e instanceof GrpcError && e.code === GrpcCode.DEADLINE_EXCEEDED, String(e));
    for (let i = 0; i < 100 && !reset; i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(reset, "the server saw RST_STREAM");
  });
});

Deno.test("grpc client: GOAWAY and a closed connection under an open stream end the call; the channel redials", async () => {
  await withServer(echo, async (ch, sessions) => {
    // Finished unary streams and an open stream on one connection (the shape that aborted
    // node:http2 on Deno when the server went away).
    for (let i = 0; i < 3; i++) await ch.unary({ path: "/t.S/Echo" }, bytes(`${i}`));
    const first = new Promise<GrpcStatus>((resolve) => {
      const c = ch.call({ path: "/t.S/Watch" }, { onMessage: () => {}, onClose: resolve });
      c.send(bytes("w"));
    });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(sessions.length, 1);
    const drained = sessions[0]!.close(); // GOAWAY, then the server leaves without waiting
    sessions[0]!.destroy();
    await drained;
    const st = await first;
    assert.equal(st.code, GrpcCode.UNAVAILABLE);
    assert.equal(text(await ch.unary({ path: "/t.S/Echo" }, bytes("again"))), "undefined:again");
    assert.equal(sessions.length, 2, "a new connection");
    // A peer that drops the TCP connection without any frame: the same.
    const second = new Promise<GrpcStatus>((resolve) => {
      ch.call({ path: "/t.S/Watch" }, { onClose: resolve }).send(bytes("w"));
    });
    await new Promise((r) => setTimeout(r, 20));
    (sessions[1]!.transport as Socket).destroy();
    assert.equal((await second).code, GrpcCode.UNAVAILABLE);
    assert.equal(text(await ch.unary({ path: "/t.S/Echo" }, bytes("3"))), "undefined:3");
  });
});

Deno.test("grpc client: past the server's stream limit a call opens a second connection; the first drains and closes", async () => {
  await withServer(echo, async (ch, sessions) => {
    let watch!: ReturnType<GrpcChannel["call"]>;
    const first = new Promise<GrpcStatus>((resolve) => {
      watch = ch.call({ path: "/t.S/Watch" }, { onClose: resolve });
      watch.send(bytes("w"));
    });
    await new Promise((r) => setTimeout(r, 30)); // the server's SETTINGS (1 stream) arrived
    assert.equal(text(await ch.unary({ path: "/t.S/Echo" }, bytes("x"))), "undefined:x");
    assert.equal(sessions.length, 2);
    watch.end();
    assert.equal((await first).code, GrpcCode.OK);
    await sessions[0]!.closed; // the client closed the drained connection
    assert.equal(text(await ch.unary({ path: "/t.S/Echo" }, bytes("y"))), "undefined:y");
    assert.equal(sessions.length, 2, "the second connection is reused");
  }, 1);
});

Deno.test("grpc client: keepalive fails a silent peer; a refused dial is UNAVAILABLE", async () => {
  const held: Socket[] = [];
  const silent = createServer((s) => held.push(s.on("data", () => {}))); // reads, never answers
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  const port = (silent.address() as AddressInfo).port;
  const ch = new GrpcChannel({
    connect: () => dialGrpc({ host: "127.0.0.1", port }),
    authority: "x",
    scheme: "http",
    keepalive: { intervalMs: 30, timeoutMs: 80 },
  });
  try {
    const started = performance.now();
    const st = await new Promise<GrpcStatus>((resolve) =>
      ch.call({ path: "/t.S/Watch" }, { onClose: resolve }).send(bytes("w"))
    );
    assert.equal(st.code, GrpcCode.UNAVAILABLE);
    assert.ok(performance.now() - started < 5000);
  } finally {
    ch.close();
    for (const s of held) s.destroy();
    await new Promise((r) => silent.close(r));
  }
  const refused = new GrpcChannel({
    connect: () => dialGrpc({ host: "127.0.0.1", port }),
    authority: "x",
    scheme: "http",
  });
  const e = await refused.unary({ path: "/t.S/X" }, bytes("")).catch((e) => e);
  assert.ok(e instanceof GrpcError && e.code === GrpcCode.UNAVAILABLE, String(e));
  refused.close();
});
