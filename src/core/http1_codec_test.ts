import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { PassThrough } from "node:stream";
import { ByteReader, headBytes, parseHead, parseHeadList } from "./http1_codec.ts";
import { HeaderList } from "./header_map.ts";
import { chunkSize } from "./http1_body.ts";

const RAW = Buffer.from(
  "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length:  3 \r\nConnection: keep-alive\r\n" +
    "X-A: 1\r\nX-A: 2\r\n\r\n",
  "latin1",
);

function parsed(raw = RAW): HeaderList {
  const h = parseHead(raw);
  return new HeaderList(h.headers, raw, h.spans);
}

Deno.test("parseHead: spans are the field lines, CRLF excluded", () => {
  const h = parseHead(RAW);
  const lines = [];
  for (let i = 0; i < h.spans.length; i += 2) {
    lines.push(RAW.toString("latin1", h.spans[i], h.spans[i + 1]));
  }
  assert.deepEqual(lines, [
    "Server: nginx",
    "Content-Length:  3 ",
    "Connection: keep-alive",
    "X-A: 1",
    "X-A: 2",
  ]);
  assert.deepEqual(h.headers[1], ["Content-Length", "3"]);
});

Deno.test("headBytes: unchanged fields go out as received, edits as asked", () => {
  const out = headBytes("HTTP/1.1 200 OK", parsed(), {
    omit: "connection",
    replace: ["content-length", "3"],
    extra: [["connection", "close"]],
  }).toString("latin1");
  assert.equal(
    out,
    "HTTP/1.1 200 OK\r\nServer: nginx\r\nX-A: 1\r\nX-A: 2\r\ncontent-length: 3\r\n" +
      "connection: close\r\n\r\n",
  );
});

Deno.test("headBytes: set, added and removed fields; line breaks never go out", () => {
  const h = parsed();
  h.set("server", "weft"); // changed: encoded in place
  h.set("content-length", "3"); // the same single value: still as received
  h.remove("x-a");
  h.add("x-b", "é");
  h.add("x-evil", "a\r\nInjected: 1");
  const out = headBytes("HTTP/1.1 200 OK", h);
  assert.equal(
    out.toString("latin1"),
    "HTTP/1.1 200 OK\r\nserver: weft\r\nContent-Length:  3 \r\nConnection: keep-alive\r\n" +
      "x-b: é\r\n\r\n",
  );
  assert.equal(out[out.length - 5], 0xe9); // latin1, one byte
});

Deno.test("headBytes: a char past U+00FF is never cut down to CR/LF (no header injection)", () => {
  // U+010D U+010A keep CR LF in their low bytes: a filter's value (a JWT claim, a wasm guest's
  // UTF-8) must not split the head on its way out. Both serialisers are checked.
  const h = parsed();
  h.add("x-claim", "bob\u010d\u010aX-Injected: yes");
  h.add("x-nul", "a\u0000b");
  h.add("x-ok", "é");
  const out = headBytes("GET / HTTP/1.1", h).toString("latin1");
  assert(!out.includes("X-Injected"), out);
  assert(!out.includes("x-nul"), out);
  assert(out.includes("x-ok: é\r\n"), out);
  const plain = headBytes("GET / HTTP/1.1", {
    entries: () => [["x-claim", "bob\u010d\u010aX-Injected: yes"], ["x-ok", "1"]],
  } as unknown as HeaderList).toString("latin1");
  assert.equal(plain, "GET / HTTP/1.1\r\nx-ok: 1\r\n\r\n");
});

Deno.test("headBytes: a list without spans (h2, filters) serialises its pairs", () => {
  const h = new HeaderList([["Host", "a"], ["Connection", "x"]]);
  assert.equal(
    headBytes("GET / HTTP/1.1", h, { omit: "connection" }).toString("latin1"),
    "GET / HTTP/1.1\r\nhost: a\r\n\r\n",
  );
});

Deno.test("parseHeadList: names lower-cased, values and spans as parseHead's", () => {
  const { line, headers } = parseHeadList(RAW);
  assert.deepEqual(line, ["HTTP/1.1", "200", "OK"]);
  assert.deepEqual(headers.entries(), parseHead(RAW).headers.map(([k, v]) => [k.toLowerCase(), v]));
  assert.equal(headBytes("HTTP/1.1 200 OK", headers).toString("latin1"), RAW.toString("latin1"));
});

Deno.test("headBytes: a tail leaves in the same buffer; a head too big to assemble still goes", () => {
  const body = Buffer.from("ok\n");
  assert.equal(
    headBytes("HTTP/1.1 200 OK", parsed(), { omit: "connection" }, body).toString("latin1"),
    "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length:  3 \r\nX-A: 1\r\nX-A: 2\r\n\r\nok\n",
  );
  const h = parsed();
  h.add("x-big", "b".repeat(70_000)); // larger than the scratch buffer: serialised instead
  const out = headBytes("HTTP/1.1 200 OK", h, { omit: "connection" }, body).toString("latin1");
  assert.ok(out.startsWith("HTTP/1.1 200 OK\r\nserver: nginx\r\ncontent-length: 3\r\n"));
  assert.ok(out.endsWith(`x-big: ${"b".repeat(70_000)}\r\n\r\nok\n`));
});

Deno.test("framingOf: the common-head fast path decides as the general rules do", async () => {
  const { framingOf } = await import("./http1_codec.ts");
  const req = (h: Record<string, string[]>) => framingOf((n) => h[n], false);
  const res = (h: Record<string, string[]>) => framingOf((n) => h[n] ?? [], true);
  assert.deepEqual(req({}), { kind: "none" });
  assert.deepEqual(res({}), { kind: "close" });
  assert.deepEqual(req({ "content-length": ["0"] }), { kind: "none" });
  assert.deepEqual(req({ "content-length": ["12"] }), { kind: "length", length: 12 });
  assert.deepEqual(res({ "content-length": ["5, 5"] }), { kind: "length", length: 5 });
  assert.deepEqual(req({ "content-length": ["5", "5"] }), { kind: "length", length: 5 });
  for (const bad of [[""], ["5, 6"], ["5", "6"], ["-1"], ["0x5"], ["1".repeat(16)]]) {
    assert.throws(() => req({ "content-length": bad }), /content-length/, JSON.stringify(bad));
  }
  assert.deepEqual(req({ "transfer-encoding": ["chunked"] }), { kind: "chunked" });
  assert.throws(() => req({ "transfer-encoding": ["chunked"], "content-length": ["5"] }));
});

Deno.test("HeaderList.receivedHead: the head as received until a field is set, added or removed", () => {
  const raw = Buffer.from("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", "latin1");
  const fresh = () => parseHeadList(raw).headers;
  let h = fresh();
  assert.equal(h.receivedHead(), raw);
  h.set("content-length", "0"); // the same value: nothing moved
  h.remove("x-absent");
  assert.equal(h.receivedHead(), raw);
  for (
    const change of [
      (x: HeaderList) => x.set("content-length", "1"),
      (x: HeaderList) => x.set("x-new", "1"),
      (x: HeaderList) => x.add("host", "b"),
      (x: HeaderList) => x.remove("host"),
    ]
  ) {
    h = fresh();
    change(h);
    assert.equal(h.receivedHead(), undefined);
  }
  assert.equal(new HeaderList([["host", "a"]]).receivedHead(), undefined);
});

Deno.test("ByteReader.detach removes only its own listeners (an L4 record's close stays)", async () => {
  const s = new PassThrough();
  const seen: string[] = [];
  s.on("close", () => seen.push("close"));
  s.on("error", () => seen.push("error"));
  const r = new ByteReader(s);
  s.write(Buffer.from("PRI * HTTP/2.0\r\n"));
  assert.equal((await r.peek(16)).toString(), "PRI * HTTP/2.0\r\n");
  assert.equal(r.detach().toString(), "PRI * HTTP/2.0\r\n");
  assert.equal(s.listenerCount("data"), 0, "the reader no longer consumes data");
  s.destroy(new Error("boom"));
  await new Promise((done) => setTimeout(done, 10));
  assert.deepEqual(seen, ["error", "close"]);
});

// ByteReader.readHead settles one Promise from its wake-ups (no async frame): every event that can
// arrive while it is parked must settle it, and none may be lost between a look and the park.

/** A Duplex whose events the test emits by hand, in the order it chooses. */
function manual(): PassThrough {
  const s = new PassThrough();
  s.pause();
  return s;
}

const HEAD = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

Deno.test("ByteReader.readHead: a head in pieces, one piece per wake-up, settles once whole", async () => {
  const s = manual();
  const r = new ByteReader(s);
  const p = r.readHead();
  for (const piece of ["GET / HT", "TP/1.1\r\nHo", "st: a\r\n", "\r", "\n"]) {
    s.emit("data", Buffer.from(piece));
  }
  assert.equal((await p)!.toString(), HEAD);
});

Deno.test("ByteReader.readHead: end while parked settles null (nothing started) or 400 (inside a head)", async () => {
  const a = manual();
  const ra = new ByteReader(a);
  const pa = ra.readHead();
  a.emit("end");
  assert.equal(await pa, null);

  const b = manual();
  const rb = new ByteReader(b);
  const pb = rb.readHead();
  b.emit("data", Buffer.from("GET / HTTP/1.1\r\n"));
  b.emit("close"); // a reset: close without end
  await assert.rejects(pb, /closed inside a message head/);
});

Deno.test("ByteReader.readHead: an error while parked rejects it", async () => {
  const s = manual();
  const r = new ByteReader(s);
  const p = r.readHead();
  s.emit("error", new Error("ECONNRESET"));
  await assert.rejects(p, /ECONNRESET/);
});

Deno.test("ByteReader.readHead: data or end that came before the read are not lost", async () => {
  const s = manual();
  const r = new ByteReader(s);
  s.emit("data", Buffer.from(HEAD + HEAD.slice(0, 5)));
  assert.equal((await r.readHead())!.toString(), HEAD);
  const second = r.readHead(); // its first bytes are buffered already
  s.emit("data", Buffer.from(HEAD.slice(5)));
  assert.equal((await second)!.toString(), HEAD);
  s.emit("end");
  assert.equal(await r.readHead(), null);
});

Deno.test("ByteReader.watch: a pooled connection's watch fires once at data, end or close; a read replaces it", async () => {
  for (const event of ["data", "end", "close", "error"] as const) {
    const s = manual();
    const r = new ByteReader(s);
    let fired = 0;
    r.watch(() => fired++);
    if (event === "data") s.emit("data", Buffer.from("x"));
    else if (event === "error") s.emit("error", new Error("reset"));
    else s.emit(event);
    s.emit("end");
    assert.equal(fired, 1, event);
  }
  // A read started after unwatch (the pool hands the connection out) gets the wake-ups.
  const s = manual();
  const r = new ByteReader(s);
  let fired = 0;
  const cb = (): void => void fired++;
  r.watch(cb);
  r.unwatch(cb);
  const p = r.readHead();
  s.emit("data", Buffer.from(HEAD));
  assert.equal((await p)!.toString(), HEAD);
  assert.equal(fired, 0);
});

Deno.test("chunkSize: the chunk-size line grammar (RFC 9112 §7.1) as the regex it replaced", () => {
  // deno-lint-ignore no-control-regex -- control characters are what is refused
  const grammar = /^([0-9A-Fa-f]{1,11})(?:[ \t]*;[^\x00-\x08\x0a-\x1f\x7f]*)?\r\n$/;
  const want = (l: string): number => {
    const m = grammar.exec(l);
    return m ? parseInt(m[1]!, 16) : -1;
  };
  const parts = ["0", "a", "F", "g", " ", "\t", ";", "=", "\r", "\x01", "\x7f", "\xff"];
  const long = ["fffffffffff", "fffffffffff0"];
  const check = (s: string, depth: number): void => {
    for (const tail of ["\r\n", "\n", ""]) assert.equal(chunkSize(s + tail), want(s + tail), s);
    if (depth > 0) { for (const p of [...parts, ...long]) check(s + p, depth - 1); }
  };
  check("", 3);
  assert.equal(chunkSize("1a;name=value\r\n"), 26);
  assert.equal(chunkSize("fffffffffff\r\n"), 0xfffffffffff);
});
