import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { PassThrough } from "node:stream";
import { ByteReader, headBytes, parseHead, parseHeadList } from "./http1_codec.ts";
import { HeaderList } from "./header_map.ts";

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
