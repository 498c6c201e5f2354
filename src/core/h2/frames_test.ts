import assert from "node:assert/strict";
import {
  ErrorCode,
  Flag,
  frame,
  FrameReader,
  FrameType,
  goawayFrame,
  H2ProtocolError,
  headersFrames,
  parseSettings,
  PREFACE,
  readU32,
  RecvWindow,
  SendWindow,
  settingsFrame,
  unpad,
  windowUpdateFrame,
} from "./frames.ts";

type Seen = [string, number, number, number, string];

/** Feed `bytes` split at `cut` and collect what the reader reports (DATA pieces joined). */
function readAll(bytes: Uint8Array, cut: number, maxFrame = 16384): Seen[] {
  const seen: Seen[] = [];
  let data = "";
  const r = new FrameReader({
    frame: (type, flags, id, payload) =>
      seen.push(["frame", type, flags, id, new TextDecoder().decode(payload)]),
    data: (id, piece, last, flags) => {
      data += new TextDecoder().decode(piece);
      if (last) {
        seen.push(["data", FrameType.DATA, flags, id, data]);
        data = "";
      }
    },
  }, maxFrame);
  r.push(bytes.subarray(0, cut));
  r.push(bytes.subarray(cut));
  return seen;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

Deno.test("frames: reader handles every split point, DATA streamed in pieces", () => {
  const wire = new Uint8Array([
    ...frame(FrameType.DATA, Flag.END_STREAM, 3, enc("hello world")),
    ...frame(FrameType.PING, 0, 0, enc("12345678")),
    ...frame(FrameType.DATA, Flag.PADDED, 5, new Uint8Array([2, 0x61, 0x62, 0, 0])),
    ...frame(FrameType.SETTINGS, Flag.ACK, 0),
  ]);
  const want: Seen[] = [
    ["data", 0, 1, 3, "hello world"],
    ["frame", 6, 0, 0, "12345678"],
    ["frame", 0, 8, 5, "\x02ab\0\0"],
    ["frame", 4, 1, 0, ""],
  ];
  for (let cut = 0; cut <= wire.length; cut++) {
    assert.deepEqual(readAll(wire, cut), want, `cut ${cut}`);
  }
  assert.deepEqual([...unpad(0, Flag.PADDED, new Uint8Array([2, 0x61, 0x62, 0, 0]))], [0x61, 0x62]);
});

Deno.test("frames: size limit, header splitting, settings, control frames", () => {
  const big = frame(FrameType.DATA, 0, 1, new Uint8Array(16385));
  assert.throws(
    () => readAll(big, 9),
    (e: unknown) => e instanceof H2ProtocolError && e.h2Code === ErrorCode.FRAME_SIZE_ERROR,
  );
  const block = new Uint8Array(40_000).fill(0x41);
  const hf = headersFrames(7, block, true, 16384);
  const seen = readAll(hf, 5);
  assert.deepEqual(seen.map((s) => [s[1], s[2], s[3], s[4].length]), [
    [FrameType.HEADERS, Flag.END_STREAM, 7, 16384],
    [FrameType.CONTINUATION, 0, 7, 16384],
    [FrameType.CONTINUATION, Flag.END_HEADERS, 7, 40_000 - 32768],
  ]);
  const st = settingsFrame(new Map([[4, 1 << 22], [5, 1 << 20]]));
  assert.deepEqual([...parseSettings(st.subarray(9))], [[4, 1 << 22], [5, 1 << 20]]);
  assert.throws(() => parseSettings(new Uint8Array(5)), /multiple of 6/);
  assert.equal(readU32(windowUpdateFrame(3, 1000), 9), 1000);
  assert.deepEqual([...goawayFrame(9, 2).subarray(9)], [0, 0, 0, 9, 0, 0, 0, 2]);
  assert.equal(new TextDecoder().decode(PREFACE), "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
});

Deno.test("frames: flow-control windows", () => {
  const rw = new RecvWindow(1000);
  rw.receive(400);
  assert.equal(rw.consume(400), 0); // below half a window: no update yet
  rw.receive(200);
  assert.equal(rw.consume(200), 600); // crossed half: announce everything consumed
  rw.receive(1000); // peer may use the whole replenished window
  assert.throws(() => rw.receive(1), /exceeded/);
  const sw = new SendWindow(65535);
  sw.available -= 70000; // SETTINGS shrink may take it negative
  sw.grow(10);
  assert.equal(sw.available, -4455);
  assert.throws(() => new SendWindow(0x7fffffff).grow(1), /2\^31-1/);
});
