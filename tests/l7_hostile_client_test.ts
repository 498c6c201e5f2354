/**
 * The HTTP/1.1 L7 proxy against hostile clients, on Deno (node:net) and Bun (native sockets):
 * a half-close after a whole request (still answered), pipelining with bodies while a response
 * streams, smuggling shapes on a reused connection, Expect: 100-continue, a slow-loris body, a
 * FIN mid-body, resets at each point of an exchange (the upstream connection freed), and an h2c
 * stream cancelled before its response.
 */
import assert from "node:assert/strict";
import {
  answerEach,
  client,
  type HostileCase,
  runCases,
  scripted,
  type UpConn,
  waitFor,
  within,
} from "./support/hostile_l7.ts";
import http2 from "node:http2";
import { startNodeProxy } from "./support/node_l7.ts";
import { closeSession, h2Call } from "./support/h2c_client.ts";

const CASES: HostileCase[] = [];
const add = (name: string, up: (c: UpConn) => void, fn: HostileCase[2]) =>
  CASES.push([name, up, fn]);

add("a client half-close after a whole request still gets its response", answerEach, async (p) => {
  const c = await client(p.port);
  c.s.end("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
  await c.seen(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nok$/, "the response after a FIN");
  await within(5_000, "the close after", c.closed);
});

add("pipelined requests with bodies while the first response streams", (c) => {
  // The first response streams: its head at once, its end 200 ms later; then one per request.
  if ((c as UpConn & { streamed?: boolean }).streamed) {
    if ((c as UpConn & { done?: number }).done) {
      answerEach(c, (i) => `HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n${i}`);
    }
    return;
  }
  if (!c.text.includes("\r\n\r\n")) return;
  (c as UpConn & { streamed?: boolean }).streamed = true;
  c.s.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n");
  setTimeout(() => {
    c.s.write("0\r\n\r\n");
    (c as UpConn & { done?: number }).done = 1;
    answerEach(c, (i) => `HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n${i}`);
  }, 200);
}, async (p) => {
  const c = await client(p.port);
  try {
    c.s.write("POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
    await c.seen(/5\r\nfirst\r\n/, "the first response streaming");
    c.s.write(
      "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nworld" +
        "POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
        "GET /4 HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    const all = await c.seen(/\r\n\r\n3$/, "all four responses in order");
    assert.equal(all.match(/HTTP\/1\.1 200/g)?.length, 4, all);
  } finally {
    c.s.destroy();
  }
});

add(
  "smuggling shapes on a reused connection are refused (CL+TE, two CLs)",
  answerEach,
  async (p, up) => {
    for (
      const bad of [
        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcdGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
      ]
    ) {
      const c = await client(p.port);
      c.s.write("POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
      await c.seen(/\r\n\r\nok$/, "the first response");
      c.s.write(bad);
      const got = await c.seen(/HTTP\/1\.1 [45]\d\d [^]*$/m, "a refusal");
      await within(5_000, "the close after a refusal", c.closed);
      assert.match(got.slice(got.lastIndexOf("HTTP/1.1")), /^HTTP\/1\.1 (400|501)/);
    }
    assert.ok(!up.texts.some((t) => t.includes("smuggled")), up.texts.join("\n---\n"));
  },
);

add(
  "Expect: 100-continue is answered by the proxy (Envoy's default), not forwarded",
  answerEach,
  async (p, up) => {
    const c = await client(p.port);
    try {
      c.s.write("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
      // Before: nothing until the client's own expect timeout sent the body anyway (curl: 1 s).
      await c.seen(/^HTTP\/1\.1 100 Continue\r\n\r\n$/, "a 100 Continue", 800);
      c.s.write("hello");
      await c.seen(
        /100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nok$/,
        "the final response",
      );
      assert.ok(!/\r\nexpect:/i.test(up.texts[0] ?? ""), String(up.texts[0]));
    } finally {
      c.s.destroy();
    }
  },
);

add("a slow-loris body (1 byte / 50 ms) holds only its own connection", answerEach, async (p) => {
  // No timeout bounds a body that keeps moving (as Envoy: request_timeout off by default, the
  // stream idle timeout restarts at each byte); timeouts.requestHeaders bounds only the head.
  const slow = await client(p.port);
  const other = await client(p.port);
  try {
    slow.s.write("POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n");
    for (let i = 0; i < 10; i++) {
      slow.s.write("x");
      if (i === 5) {
        other.s.write("GET /other HTTP/1.1\r\nHost: a\r\n\r\n");
        await other.seen(/\r\n\r\nok$/, "another client served meanwhile", 2_000);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await slow.seen(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nok$/, "the slow request answered");
  } finally {
    slow.s.destroy();
    other.s.destroy();
  }
});

add("a client reset while the response is silent mid-body frees the upstream connection", (c) => {
  if (c.text.includes("\r\n\r\n") && !(c as UpConn & { d?: 1 }).d) {
    (c as UpConn & { d?: 1 }).d = 1;
    c.s.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart");
  }
}, async (p, up) => {
  const c = await client(p.port);
  c.s.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  await c.seen(/\r\n\r\npart$/, "the start of the response");
  c.s.resetAndDestroy();
  await within(5_000, "the upstream connection closed", waitFor(() => up.open() === 0));
});

add(
  "a client FIN in the middle of its body: refused or closed, the upstream dropped",
  answerEach,
  async (p, up) => {
    const c = await client(p.port);
    c.s.end("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly some");
    await within(8_000, "the client closed", c.closed);
    assert.match(c.text(), /^(HTTP\/1\.1 [45]\d\d [^]*)?$/);
    await within(5_000, "the upstream connection closed", waitFor(() => up.open() === 0));
    assert.equal(await p.idle(), 0);
  },
);

add("client resets at each point: others unaffected, upstream connections closed", (c) => {
  // Answers only a request whose path says so; the rest are left waiting.
  if (/GET \/answer /.test(c.text)) answerEach(c);
}, async (p, up) => {
  const shapes = [
    "POST /x HTTP/1.1\r\nHost: a\r\nCont",
    "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc",
    "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
  ];
  for (const shape of shapes) {
    const c = await client(p.port);
    c.s.write(shape);
    await new Promise((r) => setTimeout(r, 50));
    c.s.resetAndDestroy();
  }
  const ok = await client(p.port);
  try {
    ok.s.write("GET /answer HTTP/1.1\r\nHost: a\r\n\r\n");
    await ok.seen(/\r\n\r\nok$/, "another client's answer");
  } finally {
    ok.s.destroy();
  }
  await within(
    5_000,
    "the upstream connections of the reset clients closed",
    waitFor(() => up.open() <= 1),
  );
});

runCases(CASES);

// An h2c downstream (http2_to_http1.ts) that cancels its stream while the HTTP/1.1 upstream has
// not answered: the upstream connection is closed, not left waiting for an answer nobody reads.
Deno.test("hostile (deno, h2c downstream): a stream cancelled before the response frees the upstream connection", async () => {
  const up = await scripted(() => {}); // never answers
  const proxy = await startNodeProxy(up.port);
  const s = http2.connect(`http://127.0.0.1:${proxy.port}`);
  s.on("error", () => {});
  try {
    const req = s.request({ ":method": "POST", ":path": "/x" });
    req.on("error", () => {});
    req.end("abc");
    await within(
      5_000,
      "the request upstream",
      waitFor(() => up.open() === 1 && /^POST [^]*abc/.test(up.texts[0] ?? "")),
    );
    req.close(http2.constants.NGHTTP2_CANCEL);
    await within(5_000, "the upstream connection closed", waitFor(() => up.open() === 0));
  } finally {
    await new Promise<void>((r) => {
      s.once("close", () => r());
      s.destroy();
    });
    await proxy.stop();
    await up.close();
  }
});

Deno.test("hostile (deno, h2c downstream): sequential requests reuse one pooled upstream connection", async () => {
  const up = await scripted(answerEach);
  const proxy = await startNodeProxy(up.port);
  const s = http2.connect(`http://127.0.0.1:${proxy.port}`);
  try {
    for (let i = 0; i < 3; i++) {
      const r = await h2Call(s, "/", { method: "GET" });
      assert.equal(r.status, 200);
      await within(5_000, "pooled", waitFor(async () => await proxy.idle() === 1));
    }
    assert.equal(up.accepted(), 1);
  } finally {
    await closeSession(s);
    await proxy.stop();
    await up.close();
  }
});
