/**
 * Fuzz targets: the decoders weft runs on bytes from peers, control planes and operators.
 * - http1: HTTP/1.1 request heads and bodies (content-length, chunked with trailers), pipelined,
 *   through ByteReader → parseHead → checkRequestLine → framingOf → bodyChunks; and response heads.
 * - h2: HTTP/2 frames (FrameReader, unpad, SETTINGS) and HPACK blocks (one decoder per input).
 * - socks5: the SOCKS5 greeting + CONNECT request parser.
 * - xds: a mutated protobuf `Any` of each resource type → decode + validate, and the accepted ones
 *   translated into a snapshot with the rest of a valid node view.
 * - config: weft.yaml text → YAML parse + validation (must answer problems, never throw).
 * Refusals are WeftErrors (codes below); anything else thrown is a finding.
 */
import { Buffer } from "node:buffer";
import { PassThrough } from "node:stream";
import type { Any } from "@bufbuild/protobuf/wkt";
import { WeftError } from "../../src/core/mod.ts";
import {
  bodyChunks,
  ByteReader,
  checkRequestLine,
  checkStatusLine,
  framingOf,
  parseHead,
} from "../../src/core/http1_codec.ts";
import { HeaderList } from "../../src/core/header_map.ts";
import {
  FrameReader,
  FrameType,
  headersFrames,
  parseSettings,
  pingFrame,
  settingsFrame,
  unpad,
} from "../../src/core/h2/frames.ts";
import { encodeHeaders, HpackDecoder } from "../../src/core/h2/hpack.ts";
import { parseSocks } from "../../src/core/socks5.ts";
import { parseConfigText } from "../../src/app/config.ts";
import { DEFAULT_CONFIG_YAML } from "../../src/app/default_config.ts";
import type { FuzzTarget } from "./engine.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const isWeft = (codes: RegExp) => (err: unknown): boolean =>
  err instanceof WeftError && codes.test(err.code);

async function http1Run(input: Uint8Array): Promise<void> {
  const stream = new PassThrough();
  const reader = new ByteReader(stream);
  stream.end(Buffer.from(input));
  try {
    for (let i = 0; i < 64; i++) {
      const raw = await reader.readHead({ maxHeadBytes: 60 * 1024 });
      if (!raw) return;
      const head = parseHead(raw);
      if (head.line[0].startsWith("HTTP/")) {
        checkStatusLine(head.line);
      } else checkRequestLine(head.line, raw);
      const headers = new HeaderList(head.headers);
      const framing = framingOf((n) => headers.getAll(n), head.line[0].startsWith("HTTP/"));
      for await (const _ of bodyChunks(reader, framing, 16 * 1024)) { /* drain */ }
    }
  } finally {
    stream.destroy();
  }
}

export const http1: FuzzTarget = {
  name: "http1",
  corpus: () =>
    [
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
      "POST /p?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
      "GET / HTTP/1.0\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    ].map(enc),
  dictionary: [
    "\r\n",
    "\n",
    "\r\n\r\n",
    "Content-Length: ",
    "Transfer-Encoding: chunked\r\n",
    "Host: x\r\n",
    "0\r\n\r\n",
    "ffffffffffff",
    " ",
    "\t",
    ":",
    ";",
    "HTTP/1.1",
    "HTTP/9.9",
    "\x00",
    ",chunked",
  ].map(enc),
  run: http1Run,
  expected: isWeft(/^http_/),
  maxBytes: 96 * 1024,
};

function h2Run(input: Uint8Array): void {
  const hpack = new HpackDecoder(4096);
  let block: Uint8Array[] = [];
  const reader = new FrameReader({
    frame(type, flags, _stream, payload) {
      if (type === FrameType.SETTINGS) parseSettings(payload);
      else if (type === FrameType.HEADERS || type === FrameType.CONTINUATION) {
        block.push(type === FrameType.HEADERS ? unpad(type, flags, payload) : payload);
        if (flags & 0x4) {
          hpack.decode(Buffer.concat(block), 16 * 1024);
          block = [];
        }
      } else if (type === FrameType.DATA) unpad(type, flags, payload);
    },
    data() {},
  }, 16 * 1024);
  reader.push(input);
}

export const h2: FuzzTarget = {
  name: "h2",
  corpus: () => {
    const hdrs = encodeHeaders([
      [":method", "CONNECT"],
      [":authority", "10.0.0.1:8080"],
      ["baggage", "k8s.namespace.name=default"],
      ["x-long", "a".repeat(300)],
    ]);
    const s = settingsFrame(new Map([[3, 100], [4, 65535]]));
    return [
      Buffer.concat([s, headersFrames(1, hdrs, false, 16384)]),
      Buffer.concat([headersFrames(3, hdrs, true, 40), pingFrame(new Uint8Array(8), false)]),
      hdrs,
    ];
  },
  dictionary: [
    Uint8Array.of(0x3f, 0xe1, 0x1f), // dynamic table size update
    Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f), // huge integer
    Uint8Array.of(0x00, 0x00, 0x04, 0x01, 0x04, 0, 0, 0, 1), // HEADERS header
    Uint8Array.of(0x00, 0x00, 0x00, 0x09, 0x04, 0, 0, 0, 1), // CONTINUATION header
    Uint8Array.of(0x80 | 62), // dynamic index just past the static table
    Uint8Array.of(0x08), // PADDED
  ],
  run: (input) => {
    // Half the inputs are raw HPACK blocks (the corpus' last entry), half frame streams.
    if (input.length > 0 && (input[0]! & 0x80)) new HpackDecoder(4096).decode(input, 16 * 1024);
    else h2Run(input);
  },
  expected: (err) => err instanceof WeftError,
};

export const socks5: FuzzTarget = {
  name: "socks5",
  corpus: () => [
    Uint8Array.of(5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80),
    Uint8Array.of(5, 2, 0, 2, 5, 1, 0, 3, 9, ...enc("localhost"), 1, 187),
    Uint8Array.of(5, 1, 0, 5, 1, 0, 4, ...new Array(15).fill(0), 1, 0, 80),
  ],
  dictionary: [Uint8Array.of(5), Uint8Array.of(3, 255), Uint8Array.of(0, 0)],
  run: (input) => {
    for (let n = 0; n <= input.length; n++) parseSocks(input.subarray(0, n));
  },
  expected: () => false, // parseSocks answers with a result, never a throw
  maxBytes: 1024,
};

const CONFIG_EXTRA = `
node: { name: n1, trustDomain: cluster.local }
listeners: { admin: "127.0.0.1:0", socks5: "" }
timeouts: { connect: 1s, idle: 1h, drain: 5s, requestHeaders: 10s }
workloads: [{ name: w, namespace: default, serviceAccount: w, address: 127.0.3.2, ports: [8080], labels: { app: w } }]
services:
  - name: w
    vips: [127.10.0.9]
    ports: [{ port: 80, targetPort: 8080, protocol: HTTP }]
    endpoints: [{ workload: w, serviceAccount: w, address: 127.0.3.2 }]
    http: [{ route: [{ destination: { subset: v1 }, weight: 100 }] }]
    subsets: [{ name: v1, labels: { app: w } }]
authorizationPolicies:
  - { name: p, namespace: default, selector: { app: w }, rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/w"] } }] }] }
`;

export const config: FuzzTarget = {
  name: "config",
  corpus: () => [enc(DEFAULT_CONFIG_YAML), enc(CONFIG_EXTRA)],
  dictionary: [
    "{",
    "}",
    "[",
    "]",
    ": ",
    "\n  - ",
    "&a",
    "*a",
    "!!binary",
    "0x",
    "-1",
    "~",
    '"',
    "1e999",
  ]
    .map(enc),
  run: (input) => {
    const r = parseConfigText(new TextDecoder().decode(input));
    if (!r.ok && r.problems.length === 0) throw new Error("invalid config without a problem");
  },
  expected: () => false, // validation reports problems; it never throws
  maxBytes: 16 * 1024,
  // 16 KiB of YAML with thousands of duplicate keys parses in ~50 ms, with outliers to ~2 s on a
  // loaded 2-core box (GC); a config is operator input read once, so only a real hang counts.
  perInputMs: 5000,
};

/** xDS: built lazily (protobuf and the control plane load only for this target). */
export async function xdsTarget(): Promise<FuzzTarget> {
  const [{ RESOURCE_TYPES }, { buildNode }, { parseMesh }, { meshYaml, BASE }, { Translator }, {
    ResourceStore,
  }, { loadFilterJson }] = await Promise.all([
    import("../../src/xds/resources/registry.ts"),
    import("../../src/xds/control_plane/build.ts"),
    import("../../src/xds/control_plane/mesh.ts"),
    import("../../src/xds/_test_fixtures.ts"),
    import("../../src/xds/translate.ts"),
    import("../../src/xds/store.ts"),
    import("../../src/xds/resources/http_filters.ts"),
  ]);
  // RBAC/HTTPFault/TypedStruct configs need protobuf-es's JSON mapping (the client loads it
  // before the first response naming one).
  await loadFilterJson();
  const built = buildNode(parseMesh(meshYaml(10)), "node-a");
  const types = [...built.keys()];
  const valid = new Map<string, Map<string, unknown>>();
  for (const [t, m] of built) {
    const byName = new Map<string, unknown>();
    for (const [name, b] of m) byName.set(name, RESOURCE_TYPES.get(t)!.decode(b.any).value);
    valid.set(t, byName);
  }
  // Input: one byte choosing the type, then the protobuf value bytes.
  const corpus: Uint8Array[] = [];
  for (const [t, m] of built) {
    for (const [, b] of m) corpus.push(Uint8Array.of(types.indexOf(t), ...b.any.value));
  }
  return {
    name: "xds",
    corpus: () => corpus,
    dictionary: [
      Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f), // field 1, huge length
      Uint8Array.of(0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
      Uint8Array.of(0x12, 0x00),
      enc("127.0.0.1"),
      enc("spiffe://"),
    ],
    run: (input) => {
      const typeUrl = types[(input[0] ?? 0) % types.length]!;
      const any = { typeUrl, value: input.subarray(1) } as unknown as Any;
      const decoded = RESOURCE_TYPES.get(typeUrl)!.decode(any);
      // Accepted: it must translate together with a valid view of the node, without a throw.
      const store = new ResourceStore();
      for (const [t, m] of valid) {
        for (const [name, value] of m) store.of(t).set(name, { version: "1", value });
      }
      store.of(typeUrl).set(decoded.name, { version: "2", value: decoded.value });
      new Translator(BASE, 0).build(store, "fuzz");
    },
    expected: isWeft(/^xds_/),
    maxBytes: 16 * 1024,
  };
}

export async function allTargets(): Promise<FuzzTarget[]> {
  return [http1, h2, socks5, config, await xdsTarget()];
}
