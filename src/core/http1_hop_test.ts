import assert from "node:assert/strict";
import { HeaderList } from "./header_map.ts";
import { stripRequestHop, stripResponseNamed } from "./http1_hop.ts";

const list = (...pairs: [string, string][]): HeaderList => new HeaderList(pairs);

Deno.test("request hop-by-hop: named fields, te as trailers, framing fields and host never named away", () => {
  const h = list(
    ["host", "a"],
    ["connection", "keep-alive, X-A, content-length, host, transfer-encoding, te"],
    ["x-a", "1"],
    ["content-length", "3"],
    ["te", "gzip, Trailers"],
    ["keep-alive", "timeout=5"],
    ["proxy-connection", "keep-alive"],
    ["upgrade", "websocket"],
    ["x-b", "2"],
  );
  assert.equal(stripRequestHop(h, true), undefined); // Upgrade without `connection: upgrade`
  assert.deepEqual(h.entries(), [
    ["host", "a"],
    ["content-length", "3"],
    ["te", "trailers"],
    ["x-b", "2"],
  ]);
  const noTrailers = list(["te", "gzip"]);
  stripRequestHop(noTrailers, true);
  assert.equal(noTrailers.size, 0);
});

Deno.test("request upgrades: websocket kept (HTTP/1.1 only), h2c stripped, others rejected", () => {
  const ws = list(["connection", "Upgrade, X-A"], ["upgrade", "WebSocket"], ["x-a", "1"]);
  assert.equal(stripRequestHop(ws, true), "websocket");
  assert.deepEqual(ws.entries(), [["connection", "upgrade"], ["upgrade", "WebSocket"]]);
  const old = list(["connection", "upgrade"], ["upgrade", "websocket"]);
  assert.equal(stripRequestHop(old, false), undefined);
  assert.equal(old.size, 0);
  const h2c = list(["connection", "Upgrade, HTTP2-Settings"], ["upgrade", "h2c"], [
    "http2-settings",
    "AAMAAABkAAQAAP__",
  ]);
  assert.equal(stripRequestHop(h2c, true), undefined);
  assert.equal(h2c.size, 0);
  assert.equal(
    stripRequestHop(list(["connection", "upgrade"], ["upgrade", "foo"]), true),
    "rejected",
  );
});

Deno.test("response: fields its Connection names go, framing fields stay", () => {
  const h = list(["connection", "close, X-A, content-length"], ["x-a", "1"], [
    "content-length",
    "2",
  ]);
  stripResponseNamed(h);
  assert.deepEqual(h.entries(), [["connection", "close, X-A, content-length"], [
    "content-length",
    "2",
  ]]);
});
