/**
 * The HTTP/1.1 L7 proxy against hostile upstreams, on Deno (node:net) and Bun (native sockets):
 * an early answer mid-request body then a reset or no more reading, a 101 nobody asked for, 1xx
 * before the final response, HEAD or content-length responses with bytes beyond them, a cut
 * response, a doubly framed one, a bad chunk, an oversized head, bytes while pooled (counted), a
 * close as a pooled connection is reused. Each ends with the client answered or closed promptly,
 * the upstream connection dropped when in doubt, and no unhandled rejection.
 */
import assert from "node:assert/strict";
import {
  answerEach,
  client,
  heads,
  type HostileCase,
  OK,
  runCases,
  type UpConn,
  waitFor,
  within,
} from "./support/hostile_l7.ts";
import net from "node:net";
import { Buffer } from "node:buffer";
import { metrics } from "../src/core/mod.ts";

/** weft_http_upstream_idle_closed_total{reason="unsolicited_bytes"} of this process. */
const unsolicited = (): number =>
  Number(
    /weft_http_upstream_idle_closed_total\{reason="unsolicited_bytes"\} (\d+)/.exec(
      metrics.render(),
    )?.[1] ?? 0,
  );

const CASES: HostileCase[] = [];
const add = (name: string, up: (c: UpConn) => void, fn: HostileCase[2]) =>
  CASES.push([name, up, fn]);

const paused: net.Socket[] = [];
for (const how of ["stops reading", "resets"] as const) {
  add(`an upstream that answers early mid-request body and ${how}`, (c) => {
    if (c.text.includes("\r\n\r\n") && !(c as UpConn & { d?: 1 }).d) {
      (c as UpConn & { d?: 1 }).d = 1;
      c.s.write("HTTP/1.1 413 Payload Too Large\r\ncontent-length: 3\r\n\r\nbig");
      if (how === "resets") setTimeout(() => c.s.destroy(), 20);
      else {
        // It reads again only once the client is gone: then only the proxy's close ends it.
        c.s.pause();
        paused.push(c.s);
      }
    }
  }, async (p, up) => {
    const c = await client(p.port);
    try {
      c.s.write("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 67108864\r\n\r\n");
      const piece = Buffer.alloc(64 * 1024, 0x61);
      // The client writes on as long as the proxy reads (64 MiB is more than the buffers hold).
      const writing = (async () => {
        for (let sent = 0; sent < 64 << 20 && !c.s.destroyed; sent += piece.length) {
          if (!c.s.write(piece)) {
            await Promise.race([new Promise((r) => c.s.once("drain", r)), c.closed]);
          }
        }
      })();
      await c.seen(/^HTTP\/1\.1 413 [^]*\r\n\r\nbig$/, "the upstream's early 413");
      // Before: with an upstream that stopped reading, both connections stayed open for good.
      await within(8_000, "the downstream ended (its body left unread)", c.ended);
      c.s.destroy();
      await writing;
      for (const u of paused.splice(0)) u.resume();
      await within(5_000, "the upstream connection closed", waitFor(() => up.open() === 0));
      assert.equal(await p.idle(), 0);
    } finally {
      c.s.destroy();
    }
  });
}

add("a 101 to a request that asked for no upgrade is refused, not a tunnel", (c) => {
  if (!c.text.includes("\r\n\r\n")) return;
  c.s.write(
    "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\nraw",
  );
}, async (p) => {
  const c = await client(p.port);
  c.s.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  await within(8_000, "the client closed", c.closed);
  assert.ok(!c.text().includes("101"), c.text());
  assert.match(c.text(), /^(HTTP\/1\.1 502 [^]*)?$/);
});

add("a HEAD response followed by body bytes: the connection is not reused", (c) => {
  answerEach(c, () => "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n" + (c.n === 0 ? "forge" : ""));
}, async (p, up) => {
  const c = await client(p.port);
  try {
    c.s.write("HEAD /1 HTTP/1.1\r\nHost: a\r\n\r\n");
    await c.seen(/content-length: 5\r\n\r\n$/, "the HEAD response");
    c.s.write("HEAD /2 HTTP/1.1\r\nHost: a\r\n\r\n");
    const got = await c.seen(/\r\n\r\nHTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n$/, "the second");
    assert.ok(!got.includes("forge"), got);
    assert.equal(up.accepted(), 2);
  } finally {
    c.s.destroy();
  }
});

add("a bad chunk mid-response closes the client, the upstream connection is dropped", (c) => {
  if (!c.text.includes("\r\n\r\n")) return;
  c.s.write(
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\nzz\r\nGET /x HTTP/1.1\r\n\r\n",
  );
}, async (p, up) => {
  const c = await client(p.port);
  c.s.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  await within(8_000, "the client closed", c.closed);
  await within(5_000, "the upstream connection closed", waitFor(() => up.open() === 0));
  assert.equal(await p.idle(), 0);
});

// A head the codec refuses is an upstream protocol error: Envoy's router answers 502 UPE
// (`upstream_reset_before_response_started{protocol_error}`), not the 503 of a reset, and a
// reused connection is not tried again as if it had gone stale.
for (
  const [what, head] of [
    ["beyond the head limit", `HTTP/1.1 200 OK\r\nx-big: ${"a".repeat(70 * 1024)}\r\n`],
    ["with a bare LF", "HTTP/1.1 200 OK\nx-a: 1\r\n"],
  ] as const
) {
  add(`an upstream head ${what}: 502, the upstream dropped`, (c) => {
    if (!c.text.includes("\r\n\r\n")) return;
    c.s.write(`${head}content-length: 2\r\n\r\nok`);
  }, async (p, up) => {
    const c = await client(p.port);
    c.s.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    await c.seen(/^HTTP\/1\.1 502 [^]*\r\n\r\nupstream protocol error/, "a 502");
    await within(5_000, "the upstream connection closed", waitFor(() => up.open() === 0));
    assert.equal(up.accepted(), 1); // not tried again on a fresh connection
    c.s.destroy();
  });
}

add("a reused connection whose next head is refused: 502, not tried again as stale", (c) => {
  answerEach(c, (i) => i === 0 ? OK : "HTTP/1.1 200 OK\nx-a: 1\r\ncontent-length: 2\r\n\r\nok");
}, async (p, up) => {
  const c = await client(p.port);
  try {
    c.s.write("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n");
    await c.seen(/^HTTP\/1\.1 200 [^]*\r\n\r\n/, "the first answer");
    c.s.write("GET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
    await c.seen(/HTTP\/1\.1 502 [^]*\r\n\r\nupstream protocol error/, "a 502");
    assert.equal(up.accepted(), 1);
  } finally {
    c.s.destroy();
  }
});

add("1xx responses before the final one are skipped", (c) => {
  if (!c.text.includes("\r\n\r\n") || (c as UpConn & { d?: 1 }).d) return;
  (c as UpConn & { d?: 1 }).d = 1;
  c.s.write("HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n");
  setTimeout(() => c.s.write(OK), 50);
}, async (p) => {
  const c = await client(p.port);
  try {
    c.s.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    const got = await c.seen(/\r\n\r\nok$/, "the final response");
    assert.match(got.slice(got.lastIndexOf("HTTP/1.1")), /^HTTP\/1\.1 200/);
  } finally {
    c.s.destroy();
  }
});

add("a response longer than its content-length: the rest is not a next response", (c) => {
  answerEach(c, (i) => i === 0 ? OK + "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nforge" : OK);
}, async (p, up) => {
  const c = await client(p.port);
  try {
    c.s.write("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n");
    await c.seen(/\r\n\r\nok$/, "the first response");
    c.s.write("GET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
    const got = await c.seen(/\r\n\r\nok[^]*\r\n\r\nok$/, "the second response");
    assert.ok(!got.includes("forge"), got);
    assert.equal(up.accepted(), 2);
  } finally {
    c.s.destroy();
  }
});

add("a response cut short of its content-length closes the client", (c) => {
  if (!c.text.includes("\r\n\r\n")) return;
  c.s.write("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nok");
  setTimeout(() => c.s.destroy(), 50);
}, async (p) => {
  const c = await client(p.port);
  c.s.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  await within(8_000, "the client closed", c.closed);
  assert.match(c.text(), /^(HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nok)?$/);
});

add("a response with content-length and transfer-encoding is a 502", (c) => {
  if (!c.text.includes("\r\n\r\n")) return;
  c.s.write(
    "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
  );
}, async (p) => {
  const c = await client(p.port);
  c.s.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  await c.seen(/^HTTP\/1\.1 502 /, "a 502");
  await within(8_000, "the client closed", c.closed);
});

add("bytes from an upstream while pooled: it leaves the pool", (c) => {
  answerEach(c, () => {
    if (c.n === 0) {
      setTimeout(() => c.s.write("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nforge"), 100);
    }
    return OK;
  });
}, async (p, up) => {
  const unsolicited0 = unsolicited();
  const c = await client(p.port);
  try {
    c.s.write("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n");
    await c.seen(/\r\n\r\nok$/, "the first response");
    await within(
      5_000,
      "the pooled connection dropped",
      waitFor(async () => await p.idle() === 0 && up.open() === 0),
    );
    c.s.write("GET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
    const got = await c.seen(/\r\n\r\nok[^]*\r\n\r\nok$/, "the second response");
    assert.ok(!got.includes("forge"), got);
    assert.equal(up.accepted(), 2);
    // Counted (readable here when the proxy runs in this process).
    if (p.pid === Deno.pid) assert.equal(unsolicited(), unsolicited0 + 1);
  } finally {
    c.s.destroy();
  }
});

add("a POST on a pooled connection the upstream closes as it is reused: a prompt 503", (c) => {
  // Each connection answers its first request and closes at its second, unanswered.
  if (heads(c.text) === 1) answerEach(c);
  else if (heads(c.text) > 1) c.s.destroy();
}, async (p) => {
  const c = await client(p.port);
  try {
    c.s.write("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n");
    await c.seen(/\r\n\r\nok$/, "the first response");
    await within(5_000, "the connection pooled", waitFor(async () => await p.idle() === 1));
    // A body is not sent again: 503 (upstream reset before the response started), at once.
    c.s.write("POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
    const got = await c.seen(/\r\n\r\nok[^]*HTTP\/1\.1 \d{3} /, "an answer to the POST", 5_000);
    assert.match(got.slice(got.lastIndexOf("HTTP/1.1")), /^HTTP\/1\.1 (503|200) /);
  } finally {
    c.s.destroy();
  }
});

runCases(CASES);
