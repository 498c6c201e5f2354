/**
 * Structure-aware HTTP/2 inputs for the live fuzzer: valid frame scripts (an HBONE CONNECT with a
 * request inside, h2c GET/POST/gRPC calls) mutated at the frame level — flags flipped, stream ids
 * moved (0, even, reused, huge), declared lengths off by ±1 or huge, frames duplicated into floods
 * (CONTINUATION, SETTINGS, PING, RST_STREAM, empty DATA), dropped, swapped, unknown/PRIORITY/
 * PUSH_PROMISE frames spliced in, window updates that overflow, SETTINGS garbage, data after
 * END_STREAM — and in HPACK (bad indexes, huge lengths, Huffman garbage, table-size updates),
 * then sometimes byte-mutated as a whole (tools/fuzz/engine.ts `mutate`).
 */
import { encodeHeaders } from "../../src/core/h2/hpack.ts";
import { PREFACE } from "../../src/core/h2/frames.ts";
import { mutate } from "../../tools/fuzz/engine.ts";

export interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Uint8Array;
  /** Declared length when it lies about the payload. */
  len?: number;
}

const T = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST: 3,
  SETTINGS: 4,
  PUSH: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW: 8,
  CONT: 9,
} as const;
const END_STREAM = 1;
const END_HEADERS = 4;

const enc = (s: string) => new TextEncoder().encode(s);
const u32 = (n: number) => Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
const cat = (...a: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(a.reduce((n, b) => n + b.length, 0));
  let o = 0;
  for (const b of a) out.set(b, o), o += b.length;
  return out;
};
const settings = (pairs: [number, number][]) =>
  cat(...pairs.map(([k, v]) => cat(Uint8Array.of(k >> 8, k & 255), u32(v))));

export function encodeFrames(frames: readonly Frame[]): Uint8Array {
  return cat(...frames.map((f) => {
    const len = f.len ?? f.payload.length;
    const h = Uint8Array.of(
      (len >>> 16) & 255,
      (len >>> 8) & 255,
      len & 255,
      f.type & 255,
      f.flags & 255,
      ...u32(f.id),
    );
    return cat(h, f.payload);
  }));
}

const hdrs = (id: number, list: [string, string][], end: boolean): Frame => ({
  type: T.HEADERS,
  flags: END_HEADERS | (end ? END_STREAM : 0),
  id,
  payload: encodeHeaders(list),
});
const data = (id: number, s: string | Uint8Array, end: boolean): Frame => ({
  type: T.DATA,
  flags: end ? END_STREAM : 0,
  id,
  payload: typeof s === "string" ? enc(s) : s,
});
const SETTINGS0: Frame = { type: T.SETTINGS, flags: 0, id: 0, payload: new Uint8Array(0) };

/** Seeds for 15008: CONNECTs to the workload, to the service host, with a request inside. */
export function hboneSeeds(workload: string, port: number): Frame[][] {
  const connect = (id: number, authority: string): Frame =>
    hdrs(id, [[":method", "CONNECT"], [":authority", authority], ["baggage", "k=v"]], false);
  const req = `GET /h HTTP/1.1\r\nHost: web\r\n\r\n`;
  const pp2 = cat(
    Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21),
    Uint8Array.of(0x11, 0, 12, 127, 0, 0, 1, 127, 0, 0, 2, 0x1f, 0x90, 0x1f, 0x91),
  );
  return [
    [SETTINGS0, connect(1, `${workload}:${port}`), data(1, req, false)],
    [SETTINGS0, connect(1, `web.default.svc.cluster.local:80`), data(1, req, true)],
    [
      SETTINGS0,
      connect(1, `${workload}:${port}`),
      connect(3, `${workload}:${port}`),
      data(3, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n" + req, false),
      data(1, cat(pp2, enc(req)), false),
      { type: T.WINDOW, flags: 0, id: 0, payload: u32(1 << 20) },
    ],
    [SETTINGS0, connect(1, `[${workload}]:${port}`), {
      type: T.RST,
      flags: 0,
      id: 1,
      payload: u32(8),
    }],
  ];
}

/** Seeds for an h2c L7 port: GET, POST with a body and trailers, a gRPC call. */
export function h2cSeeds(authority: string): Frame[][] {
  const base: [string, string][] = [[":scheme", "http"], [":authority", authority]];
  const get = (id: number, path: string): Frame =>
    hdrs(id, [[":method", "GET"], [":path", path], ...base], true);
  const grpcMsg = Uint8Array.of(0, 0, 0, 0, 3, 0x0a, 0x01, 0x41);
  return [
    [SETTINGS0, get(1, "/a"), get(3, "/b?x=1")],
    [
      SETTINGS0,
      hdrs(1, [[":method", "POST"], [":path", "/p"], ...base, ["content-length", "5"]], false),
      data(1, "hel", false),
      data(1, "lo", false),
      hdrs(1, [["x-trailer", "1"]], true),
    ],
    [
      SETTINGS0,
      hdrs(1, [
        [":method", "POST"],
        [":path", "/pkg.Svc/Call"],
        ...base,
        ["content-type", "application/grpc"],
        ["te", "trailers"],
      ], false),
      data(1, grpcMsg, true),
    ],
    [
      SETTINGS0,
      get(1, "/admin/x"),
      { type: T.RST, flags: 0, id: 1, payload: u32(8) },
      get(3, "/c"),
    ],
  ];
}

const HPACK_DICT = [
  Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f), // index past everything
  Uint8Array.of(0x80 | 62), // first dynamic index (empty table)
  Uint8Array.of(0x80), // index 0
  Uint8Array.of(0x3f, 0xe1, 0xff, 0xff, 0x0f), // table size update, huge
  Uint8Array.of(0x40, 0x7f, 0xff, 0xff, 0xff, 0x0f), // literal, name length huge
  Uint8Array.of(0x40, 0x85, 0xff, 0xff, 0xff, 0xff, 0xff), // Huffman garbage (EOS padding)
  Uint8Array.of(0x00, 0x01, 0x00, 0x01, 0x00), // NUL name and value
  Uint8Array.of(0x40, 0x01, 0x3a, 0x01, 0x78), // ":" pseudo
  enc("\r\n"),
];

type Rand = () => number;
const int = (rand: Rand, n: number) => Math.floor(rand() * n);
const pick = <T>(rand: Rand, a: readonly T[]): T => a[int(rand, a.length)]!;

function randomFrame(rand: Rand, ids: number[]): Frame {
  const id = pick(rand, [0, 1, 2, 3, 0x7fffffff, ...ids]);
  switch (int(rand, 9)) {
    case 0:
      return {
        type: T.PRIORITY,
        flags: 0,
        id,
        payload: cat(u32(pick(rand, [id, 0, 3])), Uint8Array.of(255)),
      };
    case 1:
      return {
        type: 0x20 + int(rand, 200),
        flags: int(rand, 256),
        id,
        payload: new Uint8Array(int(rand, 64)),
      };
    case 2:
      return {
        type: T.WINDOW,
        flags: 0,
        id,
        payload: u32(pick(rand, [0, 1, 0x7fffffff, 0x80000000, 0xffffffff])),
      };
    case 3:
      return {
        type: T.SETTINGS,
        flags: pick(rand, [0, 0, 1]),
        id: pick(rand, [0, 0, 1]),
        payload: settings([
          [
            pick(rand, [1, 2, 3, 4, 5, 6, 8, 0, 0xffff]),
            pick(rand, [0, 1, 2, 16383, 16777216, 0x7fffffff, 0x80000000, 0xffffffff]),
          ],
        ]).subarray(0, pick(rand, [6, 6, 6, 5, 7])),
      };
    case 4:
      return {
        type: T.PUSH,
        flags: END_HEADERS,
        id,
        payload: cat(u32(2), encodeHeaders([[":method", "GET"]])),
      };
    case 5:
      return {
        type: T.PING,
        flags: int(rand, 2),
        id: pick(rand, [0, 0, 1]),
        payload: new Uint8Array(pick(rand, [8, 8, 7, 9])),
      };
    case 6:
      return {
        type: T.GOAWAY,
        flags: 0,
        id: pick(rand, [0, 1]),
        payload: cat(u32(pick(rand, [0, 1, 0x7fffffff])), u32(int(rand, 16))).subarray(
          0,
          pick(rand, [8, 8, 4]),
        ),
      };
    case 7:
      return {
        type: T.RST,
        flags: 0,
        id,
        payload: u32(int(rand, 16)).subarray(0, pick(rand, [4, 4, 3])),
      };
    default:
      return {
        type: T.CONT,
        flags: pick(rand, [0, END_HEADERS]),
        id,
        payload: pick(rand, HPACK_DICT),
      };
  }
}

/** One frame-level mutation of `frames` (in place). */
function mutateFrames(frames: Frame[], rand: Rand, seeds: readonly Frame[][]): void {
  if (frames.length === 0) return void frames.push(randomFrame(rand, [1]));
  const i = int(rand, frames.length);
  const f = frames[i]!;
  const ids = [...new Set(frames.map((x) => x.id))];
  switch (int(rand, 14)) {
    case 0:
      f.flags ^= 1 << int(rand, 8);
      break;
    case 1:
      f.id = pick(rand, [0, 2, 0x7fffffff, 0x80000001, f.id + 2, ...ids]);
      break;
    case 2:
      f.len = pick(rand, [
        f.payload.length + 1,
        Math.max(0, f.payload.length - 1),
        0,
        0xffffff,
        16385,
      ]);
      break;
    case 3: { // floods: the same frame many times
      const n = pick(rand, [2, 10, 200, 2000]);
      frames.splice(i, 0, ...Array.from({ length: n }, () => ({ ...f })));
      break;
    }
    case 4:
      frames.splice(i, 1);
      break;
    case 5: {
      const j = int(rand, frames.length);
      [frames[i], frames[j]] = [frames[j]!, f];
      break;
    }
    case 6:
    case 7:
      frames.splice(int(rand, frames.length + 1), 0, randomFrame(rand, ids));
      break;
    case 8: { // a header block split into CONTINUATIONs, sometimes endless
      if (f.type !== T.HEADERS) break;
      const n = pick(rand, [2, 5, 500]);
      const block = f.payload;
      const step = Math.max(1, Math.ceil(block.length / n));
      const parts: Frame[] = [];
      for (let at = 0; at < block.length; at += step) {
        parts.push({ type: T.CONT, flags: 0, id: f.id, payload: block.subarray(at, at + step) });
      }
      f.flags &= ~END_HEADERS;
      f.payload = parts.shift()?.payload ?? new Uint8Array(0);
      if (rand() < 0.7 && parts.length) parts[parts.length - 1]!.flags |= END_HEADERS;
      else {for (let k = 0; k < 3000; k++) {
          parts.push({ type: T.CONT, flags: 0, id: f.id, payload: Uint8Array.of(0x40, 0) });
        }}
      frames.splice(i + 1, 0, ...parts);
      break;
    }
    case 9: // HPACK / payload bytes
      f.payload = mutate(
        f.payload,
        rand,
        [],
        f.type === T.HEADERS || f.type === T.CONT ? HPACK_DICT : [],
        1 << 16,
      );
      break;
    case 10: // data after END_STREAM
      frames.push({ type: T.DATA, flags: int(rand, 2), id: f.id, payload: enc("more") });
      break;
    case 11: // padding lies
      if (f.type === T.DATA || f.type === T.HEADERS) {
        f.flags |= 0x8;
        f.payload = cat(Uint8Array.of(pick(rand, [0, 1, 255, f.payload.length])), f.payload);
      }
      break;
    case 12: { // splice in frames of another seed (interleaving two exchanges)
      const other = pick(rand, seeds);
      const at = int(rand, frames.length + 1);
      frames.splice(at, 0, ...other.slice(1).map((x) => ({ ...x, id: x.id + 4 })));
      break;
    }
    default: // a huge header list
      if (f.type === T.HEADERS) {
        f.payload = cat(
          f.payload,
          encodeHeaders(
            Array.from(
              { length: pick(rand, [50, 500]) },
              (_, k) => [`x-h${k}`, "v".repeat(pick(rand, [1, 200]))],
            ),
          ),
        );
      }
  }
}

const MAX_FRAMES = 4000;
const MAX_BYTES = 1 << 20;

/** An input: the preface (mostly intact), the mutated frames, sometimes byte-mutated whole. */
export function h2Input(seeds: readonly Frame[][], rand: Rand): Uint8Array {
  let frames = pick(rand, seeds).map((f) => ({ ...f }));
  const rounds = 1 + int(rand, 4);
  for (let r = 0; r < rounds; r++) {
    mutateFrames(frames, rand, seeds);
    // Bounded inputs: floods of floods would grow without end.
    if (frames.length > MAX_FRAMES) frames = frames.slice(0, MAX_FRAMES);
  }
  let bytes = cat(
    rand() < 0.97 ? PREFACE : enc("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"),
    encodeFrames(frames),
  );
  if (bytes.length > MAX_BYTES) bytes = bytes.subarray(0, MAX_BYTES);
  if (rand() < 0.2) bytes = mutate(bytes, rand, [], HPACK_DICT, MAX_BYTES);
  return bytes;
}
