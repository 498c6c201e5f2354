/**
 * Bodies and trailers on h2c downstreams (weft's own HTTP/2), to an HTTP/1.1 and to an HTTP/2
 * upstream, through real filters built from source: a proxy-wasm body filter (buffered, Envoy's
 * limits 413/500, a local reply from the body callback), a weft:filter@0.2.0 C component in
 * streamed mode, and trailers carried between an h2 trailers HEADERS frame and an HTTP/1.1 chunked
 * trailer section both ways (with no filter, a streaming filter and a proxy-wasm trailer filter).
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { Buffer } from "node:buffer";
import { encodeHeaders } from "../src/core/h2/hpack.ts";
import { Flag, frame, FrameType, PREFACE } from "../src/core/h2/frames.ts";
import { createProxyWasmFilter } from "../src/filters/proxy_wasm/mod.ts";
import { startL7, upperCaseBodies } from "./support/l7_harness.ts";
import { jsonRedact, ref, testFilter } from "./support/proxy_wasm_kit.ts";
import { exampleFilter } from "./support/example_plugins.ts";
import { closeSession, h2Call } from "./support/h2c_client.ts";
import { startRig, trailerMap } from "./support/trailer_rig.ts";

const SECRET = JSON.stringify({ user: "ann", password: "hunter2" });

Deno.test("h2c bodies: a proxy-wasm filter rewrites buffered JSON bodies, Envoy's limits apply", async () => {
  const f = await createProxyWasmFilter(ref("json-redact", await jsonRedact(), {}), {
    bodies: true,
  });
  const h = await startL7([f], { maxBufferedBodyBytes: 64 * 1024 });
  const s = http2.connect(h.url);
  try {
    // In two DATA frames, no content-length: buffered whole, sent on with its length.
    const ok = await h2Call(s, "/echo-body", { body: [SECRET.slice(0, 9), SECRET.slice(9)] });
    assert.equal(ok.status, 200);
    const got = JSON.parse(ok.body);
    assert.equal(got.received, '{"user":"ann","password":"***"}', "request body rewritten");
    assert.equal(got.contentLength, String(got.received.length));
    assert.equal(got.chunked, false);
    assert.equal(got.token, "***", "response body rewritten");
    assert.equal(ok.headers["content-length"], String(ok.body.length));

    const bad = await h2Call(s, "/echo-body", { body: ["not json"] });
    assert.equal(bad.status, 400, "local reply from the body callback");
    assert.equal(bad.body, "expected a JSON object\n");

    const big = JSON.stringify({ password: "x".repeat(70 * 1024) });
    const tooBig = await h2Call(s, "/echo-body", { body: [big] });
    assert.equal(tooBig.status, 413, "request body over the buffer limit");
    const declared = await h2Call(s, "/echo-body", {
      headers: { "content-length": String(big.length) },
      body: [big],
    });
    assert.equal(declared.status, 413, "a declared length over the limit");
    const bigRes = await h2Call(s, `/echo-body?pad=${70 * 1024}`, { body: ["{}"] });
    assert.equal(bigRes.status, 500, "response body over the buffer limit");

    // The session is still healthy after all of that.
    const again = await h2Call(s, "/echo-body", { body: [SECRET] });
    assert.equal(JSON.parse(again.body).token, "***");
  } finally {
    await closeSession(s);
    await h.close();
    f.close();
  }
});

Deno.test("h2c bodies: the buffered filter on an HTTP/2 upstream keeps gRPC trailers", async () => {
  const f = await createProxyWasmFilter(ref("json-redact", await jsonRedact(), {}), {
    bodies: true,
  });
  const h = await startL7([f], { upstream: "h2", maxBufferedBodyBytes: 64 * 1024 });
  const s = http2.connect(h.url);
  try {
    const r = await h2Call(s, "/pkg.Svc/Method", { body: [SECRET.slice(0, 5), SECRET.slice(5)] });
    assert.equal(r.status, 200);
    const echoed = JSON.parse(r.body);
    assert.equal(echoed.body, '{"user":"ann","password":"***"}');
    assert.equal(echoed.headers["content-length"], String(echoed.body.length));
    assert.equal(r.trailers["grpc-status"], "0", "upstream trailers after a buffered body");
    const tooBig = await h2Call(s, "/pkg.Svc/Method", { body: ["x".repeat(70 * 1024)] });
    assert.equal(tooBig.status, 413);
  } finally {
    await closeSession(s);
    await h.close();
    f.close();
  }
});

for (const upstream of ["http1", "h2"] as const) {
  Deno.test(`h2c bodies: a 0.2.0 C component transforms streamed chunks (${upstream} upstream)`, async () => {
    const f = await exampleFilter("c_json_body", { request: "streamed", response: "streamed" });
    const h = await startL7([f], { upstream });
    const s = http2.connect(h.url);
    try {
      const r = await h2Call(s, "/echo-body", {
        headers: { "content-length": "9" },
        body: ["abc", "def", "ghi"],
      });
      assert.equal(r.status, 200);
      assert.equal(r.headers["content-length"], undefined, "length dropped: filters may change it");
      if (upstream === "http1") {
        assert.match(r.body, /"RECEIVED":"ABCDEFGHI"/);
        assert.match(r.body, /"CHUNKED":TRUE/, "re-framed chunked to HTTP/1.1");
      } else {
        assert.match(r.body, /"BODY":"ABCDEFGHI"/);
        assert.equal(r.trailers["grpc-status"], "0");
      }
    } finally {
      await closeSession(s);
      await h.close();
    }
  });
}

for (const label of ["no filter", "streaming filter", "proxy-wasm trailer filter"] as const) {
  Deno.test(`h2c trailers: h2 trailers become chunked trailers and back (${label})`, async () => {
    const wasm = label === "proxy-wasm trailer filter"
      ? await createProxyWasmFilter(ref("test-filter", await testFilter(), {}), { bodies: true })
      : undefined;
    const rig = await startRig(
      wasm ? [wasm] : label === "streaming filter" ? [upperCaseBodies] : [],
    );
    const s = http2.connect(`http://127.0.0.1:${rig.port}`);
    try {
      const r = await h2Call(s, "/up", {
        headers: { "x-test": "trailers" },
        body: ["hel", "lo"],
        trailers: { "x-sum": "42" },
      });
      assert.equal(r.status, 200);
      assert.equal(r.body, label === "streaming filter" ? "OK" : "ok");
      const up = rig.received();
      assert.match(up, /\r\ntransfer-encoding: chunked\r\n/i, "chunked to carry trailers");
      const sent = Object.fromEntries(trailerMap(up));
      if (wasm) {
        assert.deepEqual(sent, { "x-sum": "42", "x-wasm-sum": "42", "x-wasm-count": "1" });
        assert.equal(r.trailers["x-checksum"], "wasm");
        assert.equal(r.trailers["x-wasm-response-count"], "2");
      } else {
        assert.deepEqual(sent, { "x-sum": "42" });
        assert.equal(r.trailers["x-checksum"], "abc");
      }
      assert.match(up, label === "streaming filter" ? /HELLO/ : /hello|\r\n5\r\nhello/);
      assert.equal(r.trailers["x-extra"], "v w");
      assert.equal(r.trailers["content-length"], undefined, "forbidden trailer dropped");
    } finally {
      await closeSession(s);
      await rig.close();
      wasm?.close();
    }
  });
}

Deno.test("h2c bodies: proxy-wasm sees end_of_stream on the request headers as the h2 stream says", async () => {
  const f = await createProxyWasmFilter(ref("test-filter", await testFilter(), {}), {});
  const h = await startL7([f]);
  const s = http2.connect(h.url);
  try {
    const withBody = await h2Call(s, "/echo", { headers: { "x-test": "status" }, body: ["x"] });
    assert.equal(JSON.parse(withBody.body).headers["x-eos"], "0", "a body follows (no length)");
    const none = await h2Call(s, "/echo", { method: "GET", headers: { "x-test": "status" } });
    assert.equal(JSON.parse(none.body).headers["x-eos"], "1", "END_STREAM on the headers");
    assert.equal(none.headers["x-response-eos"], "0", "the response has a body");
    const empty = await h2Call(s, "/status/204", {
      method: "GET",
      headers: { "x-test": "status" },
    });
    assert.equal(empty.headers["x-response-eos"], "1", "a 204 ends with its head");
  } finally {
    await closeSession(s);
    await h.close();
    f.close();
  }
});

Deno.test("h2c bodies: DATA that disagree with content-length never reach an HTTP/1.1 upstream", async () => {
  const rig = await startRig([]);
  const s = http2.connect(`http://127.0.0.1:${rig.port}`);
  s.on("error", () => {});
  try {
    const smuggle = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    const long = await h2Call(s, "/up", {
      headers: { "content-length": "5" },
      body: ["hello", smuggle],
    }).catch((e: Error) => e);
    assert.ok(long instanceof Error || long.status !== 200, "the stream is reset");
    const bad = await h2Call(s, "/up", { headers: { "content-length": "5, 6" }, body: ["hello"] })
      .catch((e: Error) => e);
    assert.ok(bad instanceof Error || bad.status !== 200, "a malformed content-length");
    const ok = await h2Call(s, "/up", { headers: { "content-length": "5" }, body: ["hello"] });
    assert.equal(ok.status, 200, "an exact length goes through");
    assert.ok(!rig.received().includes("/smuggled"), "nothing past the declared length");
  } finally {
    await closeSession(s).catch(() => {});
    await rig.close();
  }
});

Deno.test("h2c: a request with connection-specific fields is reset with PROTOCOL_ERROR and reaches nothing (RFC 9113 §8.2.2)", async () => {
  const rig = await startRig([]);
  const sock = net.connect(rig.port, "127.0.0.1");
  sock.on("error", () => {});
  try {
    await new Promise((r) => sock.once("connect", r));
    const req = (id: number, path: string, extra: [string, string][]): Uint8Array =>
      frame(
        FrameType.HEADERS,
        Flag.END_HEADERS | Flag.END_STREAM,
        id,
        encodeHeaders([
          [":method", "GET"],
          [":scheme", "http"],
          [":path", path],
          [":authority", "x"],
          ["content-length", "0"], // the rig answers a request with a length or chunks
          ...extra,
        ]),
      );
    sock.write(PREFACE);
    sock.write(frame(FrameType.SETTINGS, 0, 0));
    sock.write(req(1, "/conn", [["connection", "keep-alive"]]));
    sock.write(req(3, "/te", [["te", "gzip"]]));
    sock.write(req(5, "/upgrade", [["upgrade", "websocket"]]));
    sock.write(req(7, "/ok", [["te", "trailers"]]));
    // Read frames until stream 7's response head: resets per stream, by error code.
    const resets = new Map<number, number>();
    let buf = Buffer.alloc(0);
    let okStatus = false;
    await new Promise<void>((done, fail) => {
      const t = setTimeout(
        () =>
          fail(
            new Error(`timeout; resets ${[...resets]} upstream ${JSON.stringify(rig.received())}`),
          ),
        5000,
      );
      sock.on("data", (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
          const len = buf.readUIntBE(0, 3), type = buf[3]!, id = buf.readUInt32BE(5) & 0x7fffffff;
          if (type === FrameType.RST_STREAM) resets.set(id, buf.readUInt32BE(9));
          if (type === FrameType.SETTINGS && !(buf[4]! & Flag.ACK)) {
            sock.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
          }
          if (type === FrameType.HEADERS && id === 7) okStatus = true;
          buf = buf.subarray(9 + len);
        }
        if (resets.size === 3 && okStatus) {
          clearTimeout(t);
          done();
        }
      });
    });
    assert.deepEqual([...resets].sort(), [[1, 1], [3, 1], [5, 1]], "PROTOCOL_ERROR each");
    const seen = rig.received();
    assert.ok(seen.includes("GET /ok"), "the valid request on the same connection is served");
    for (const p of ["/conn", "/te", "/upgrade"]) assert.ok(!seen.includes(`GET ${p}`), p);
  } finally {
    sock.destroy();
    await rig.close();
  }
});
