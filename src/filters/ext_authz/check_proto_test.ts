import assert from "node:assert/strict";
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { decodeCheckResponse, encodeCheckRequest } from "./check_proto.ts";

/** The fields of one nested message, read with @bufbuild/protobuf (not weft's codec). */
function fields(b: Uint8Array): Map<number, Uint8Array | bigint> {
  const out = new Map<number, Uint8Array | bigint>();
  const r = new BinaryReader(b);
  while (r.pos < r.len) {
    const [f, w] = r.tag();
    if (w === WireType.Varint) out.set(f, BigInt(r.int64()));
    else if (w === WireType.LengthDelimited) out.set(f, r.bytes());
    else r.skip(w);
  }
  return out;
}

Deno.test("check_proto: CheckRequest as protobuf reads it, unknown size as int64 -1", () => {
  const bytes = encodeCheckRequest({
    source: { address: "10.0.0.1", port: 4321, principal: "spiffe://td/ns/a/sa/b" },
    destination: { address: "10.0.0.2", port: 8080, principal: "" },
    timeMs: 1_700_000_000_123,
    http: {
      id: "req-1",
      method: "POST",
      headers: [[":path", "/x"], ["x-a", "1,2"]],
      path: "/x",
      host: "web",
      scheme: "http",
      protocol: "HTTP/1.1",
      size: -1,
      body: new TextEncoder().encode("\u00ff\u0000raw"),
      packAsBytes: true,
    },
  });
  const attrs = fields(fields(bytes).get(1) as Uint8Array);
  const src = fields(attrs.get(1) as Uint8Array);
  assert.equal(new TextDecoder().decode(src.get(4) as Uint8Array), "spiffe://td/ns/a/sa/b");
  const sock = fields(fields(src.get(1) as Uint8Array).get(1) as Uint8Array);
  assert.equal(sock.get(3), 4321n);
  const req = fields(attrs.get(4) as Uint8Array);
  assert.equal(fields(req.get(1) as Uint8Array).get(1), 1_700_000_000n);
  const http = fields(req.get(2) as Uint8Array);
  assert.equal(http.get(9), -1n);
  assert.equal(new TextDecoder().decode(http.get(12) as Uint8Array), "\u00ff\u0000raw");
  assert.equal(new TextDecoder().decode(http.get(10) as Uint8Array), "HTTP/1.1");
});

Deno.test("check_proto: CheckResponse ok/denied; garbage throws an Error, never hangs", () => {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.Varint).int32(16).join();
  w.tag(2, WireType.LengthDelimited).fork().tag(3, WireType.LengthDelimited).string("no").join();
  const denied = decodeCheckResponse(w.finish());
  assert.deepEqual(denied, { ok: false, code: 16, httpStatus: 0, headers: [], body: "no" });
  assert.deepEqual(decodeCheckResponse(new Uint8Array(0)), {
    ok: true,
    headers: [],
    headersToRemove: [],
    responseHeadersToAdd: [],
  });
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256;
  for (let i = 0; i < 2000; i++) {
    const b = Uint8Array.from({ length: 1 + (i % 40) }, rnd);
    try {
      decodeCheckResponse(b);
    } catch (e) {
      assert.ok(e instanceof Error);
    }
  }
});
