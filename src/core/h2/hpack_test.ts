import assert from "node:assert/strict";
import { encodeHeaders, type HeaderList, HpackDecoder, huffmanDecode } from "./hpack.ts";

const hex = (s: string): Uint8Array => new Uint8Array(s.match(/../g)!.map((b) => parseInt(b, 16)));

const req1: HeaderList = [[":method", "GET"], [":scheme", "http"], [":path", "/"], [
  ":authority",
  "www.example.com",
]];
const req2: HeaderList = [...req1, ["cache-control", "no-cache"]];
const req3: HeaderList = [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [
  ":authority",
  "www.example.com",
], ["custom-key", "custom-value"]];
const resp1: HeaderList = [[":status", "302"], ["cache-control", "private"], [
  "date",
  "Mon, 21 Oct 2013 20:13:21 GMT",
], ["location", "https://www.example.com"]];
const resp2: HeaderList = [[":status", "307"], ...resp1.slice(1)];
const resp3: HeaderList = [
  [":status", "200"],
  ["cache-control", "private"],
  [
    "date",
    "Mon, 21 Oct 2013 20:13:22 GMT",
  ],
  ["location", "https://www.example.com"],
  ["content-encoding", "gzip"],
  [
    "set-cookie",
    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
  ],
];

type Vector = [string, HeaderList, number];
function runVectors(tableSize: number, vectors: Vector[]): void {
  const d = new HpackDecoder(tableSize);
  for (const [h, want, size] of vectors) {
    assert.deepEqual(d.decode(hex(h)), want);
    assert.equal(d.dynamicTableSize, size);
  }
}

Deno.test("hpack: RFC 7541 C.3 requests without Huffman", () => {
  runVectors(4096, [
    ["828684410f7777772e6578616d706c652e636f6d", req1, 57],
    ["828684be58086e6f2d6361636865", req2, 110],
    ["828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565", req3, 164],
  ]);
});

Deno.test("hpack: RFC 7541 C.4 requests with Huffman", () => {
  runVectors(4096, [
    ["828684418cf1e3c2e5f23a6ba0ab90f4ff", req1, 57],
    ["828684be5886a8eb10649cbf", req2, 110],
    ["828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf", req3, 164],
  ]);
});

Deno.test("hpack: RFC 7541 C.5 responses without Huffman, 256-byte table with eviction", () => {
  runVectors(256, [
    [
      "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d",
      resp1,
      222,
    ],
    ["4803333037c1c0bf", resp2, 222],
    [
      "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31",
      resp3,
      215,
    ],
  ]);
});

Deno.test("hpack: RFC 7541 C.6 responses with Huffman", () => {
  runVectors(256, [
    [
      "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
      resp1,
      222,
    ],
    ["4883640effc1c0bf", resp2, 222],
    [
      "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
      resp3,
      215,
    ],
  ]);
});

Deno.test("hpack: dynamic table size update evicts and is bounded by our setting", () => {
  const d = new HpackDecoder(4096);
  d.decode(hex("828684410f7777772e6578616d706c652e636f6d"));
  assert.equal(d.dynamicTableSize, 57);
  d.decode(hex("20")); // size update to 0 empties the table
  assert.equal(d.dynamicTableSize, 0);
  assert.throws(() => d.decode(hex("be")), /out of range/);
  assert.throws(() => new HpackDecoder(4096).decode(hex("3fe21f")), /above limit/); // 4096+1
  assert.throws(() => new HpackDecoder().decode(hex("8220")), /after a field/);
});

Deno.test("hpack: malformed input is rejected", () => {
  assert.throws(() => huffmanDecode(hex("f1e3c2e5f23a6ba0ab90f4fe")), /padding/); // zero pad bit
  assert.throws(() => huffmanDecode(hex("ffffffff")), /EOS|padding/);
  assert.throws(() => new HpackDecoder().decode(hex("80")), /index 0/);
  assert.throws(() => new HpackDecoder().decode(hex("410f7777")), /truncated/);
  assert.throws(() => new HpackDecoder().decode(hex("ffffffffffff")), /overflow|truncated/);
  assert.throws(
    () => new HpackDecoder().decode(hex("410f7777772e6578616d706c652e636f6d"), 40),
    /too large/,
  );
});

Deno.test("hpack: encoder output round-trips and leaves the peer table untouched", () => {
  const headers: HeaderList = [
    [":method", "CONNECT"],
    [":authority", "10.244.1.17:8080"],
    [
      "baggage",
      "k8s.namespace.name=shop",
    ],
    [":status", "200"],
    ["x-long", "v".repeat(300)],
    ["x-utf8", "é✓"],
  ];
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(encodeHeaders(headers)), headers);
  assert.equal(d.dynamicTableSize, 0);
  assert.deepEqual([...encodeHeaders([[":status", "200"]])], [0x88]);
});
