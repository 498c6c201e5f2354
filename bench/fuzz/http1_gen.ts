/**
 * HTTP/1.1 inputs for the live fuzzer: valid requests (after hyper's and Envoy's codec tests:
 * chunked with extensions and trailers, pipelining, Expect, Upgrade, CONNECT) mutated at the
 * line level — request-line parts swapped or garbled, headers duplicated, huge or obs-folded,
 * bare CR/LF and NUL spliced in, Transfer-Encoding/Content-Length combinations, chunk sizes off
 * by ±1 or huge, an h2c preface followed by garbage — then sometimes byte-mutated whole.
 * Also the admin-port inputs (random methods, paths, bodies, foreign Origins, huge queries).
 */
import { mutate } from "../../tools/fuzz/engine.ts";

type Rand = () => number;
const int = (rand: Rand, n: number) => Math.floor(rand() * n);
const pick = <T>(rand: Rand, a: readonly T[]): T => a[int(rand, a.length)]!;
const enc = (s: string) => new TextEncoder().encode(s);

export const HTTP1_SEEDS: readonly string[] = [
  "GET /a HTTP/1.1\r\nHost: web\r\n\r\n",
  "POST /p HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\n\r\nhello",
  "POST /c HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
  "GET /1 HTTP/1.1\r\nHost: web\r\n\r\nGET /2 HTTP/1.1\r\nHost: web\r\n\r\nGET /3 HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n",
  "PUT /e HTTP/1.1\r\nHost: web\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
  "GET /ws HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  "GET / HTTP/1.1\r\nHost: web\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
  "CONNECT web:80 HTTP/1.1\r\nHost: web:80\r\n\r\n",
  "GET /admin/x HTTP/1.0\r\n\r\n",
  "OPTIONS * HTTP/1.1\r\nHost: web\r\n\r\n",
  "GET http://web/abs?q=%00 HTTP/1.1\r\nHost: other\r\n\r\n",
  "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00garbage",
];

const LINES = [
  "Transfer-Encoding: chunked",
  "Transfer-Encoding: gzip, chunked",
  "Transfer-Encoding: chunked, identity",
  "Transfer-Encoding:\tchunked",
  "Transfer-Encoding : chunked",
  "Content-Length: 0",
  "Content-Length: 5, 5",
  "Content-Length: -1",
  "Content-Length: 99999999999999999999",
  "Content-Length: +5",
  "Content-Length: 0x5",
  "Connection: keep-alive, te, host, content-length",
  "Host: web",
  "Host: ",
  "X-Folded: a\r\n b",
  "X-Nul: a\x00b",
  "X-Cr: a\rb",
  "X-Lf: a\nb",
  ": empty-name",
  "X Space: v",
  "Expect: 100-continue",
  "Upgrade: websocket",
  "TE: trailers",
  "x-fault: 1",
  "Origin: http://evil.example",
];

const DICT = [
  "\r\n",
  "\n",
  "\r",
  "\x00",
  "\r\n\r\n",
  " ",
  "\t",
  ";",
  "0\r\n\r\n",
  "ffffffffffffffff\r\n",
  "HTTP/1.0",
  "HTTP/2.0",
  "HTTP/1.1",
  ...LINES.map((l) => l + "\r\n"),
].map(enc);

const MAX_TEXT = 256 * 1024;

/** One mutated HTTP/1.1 input. */
export function http1Input(rand: Rand): Uint8Array {
  let text = pick(rand, HTTP1_SEEDS);
  const rounds = 1 + int(rand, 3);
  for (let r = 0; r < rounds; r++) {
    if (text.length > MAX_TEXT) text = text.slice(0, MAX_TEXT);
    const head = text.indexOf("\r\n\r\n");
    const lines = (head >= 0 ? text.slice(0, head) : text).split("\r\n");
    const body = head >= 0 ? text.slice(head + 4) : "";
    switch (int(rand, 9)) {
      case 0:
        lines.splice(1 + int(rand, lines.length), 0, pick(rand, LINES));
        break;
      case 1: { // duplicate a header (many times: header count limits)
        const i = 1 + int(rand, Math.max(1, lines.length - 1));
        const n = pick(rand, [1, 2, 120, 1000]);
        if (lines[i] && lines[i]!.length * n < MAX_TEXT) {
          lines.splice(i, 0, ...Array(n).fill(lines[i]));
        }
        break;
      }
      case 2: // a huge header or request target
        if (rand() < 0.5) lines.push(`X-Big: ${"a".repeat(pick(rand, [8190, 65536, 200_000]))}`);
        else lines[0] = lines[0]!.replace(" /", ` /${"p".repeat(pick(rand, [8000, 70_000]))}`);
        break;
      case 3: { // request-line parts
        const parts = lines[0]!.split(" ");
        const k = int(rand, parts.length);
        parts[k] = pick(rand, [
          "",
          "G\x00T",
          "get",
          "HTTP/1.1 ",
          "/a b",
          "*",
          "HTTP/1.2",
          "HTTP/0.9",
          "\x7f",
        ]);
        lines[0] = parts.join(pick(rand, [" ", " ", "  ", "\t"]));
        break;
      }
      case 4: // chunk sizes off by ±1 / huge
        text = text.replace(
          /\r\n(\d+)(;[^\r]*)?\r\n/,
          (_m, n) =>
            `\r\n${
              pick(rand, [
                String(Number(n) + 1),
                String(Math.max(0, Number(n) - 1)),
                "fffffffffffffffff",
                "-1",
                " 5",
                "5 ",
                "0x5",
              ])
            }\r\n`,
        );
        continue;
      case 5: // Content-Length off
        text = text.replace(
          /Content-Length: (\d+)/,
          (_m, n) =>
            `Content-Length: ${pick(rand, [Number(n) + 1, Math.max(0, Number(n) - 1), 1e9])}`,
        );
        continue;
      case 6: // pipelining: repeat the whole request
        if (text.length < MAX_TEXT / 2) text = text + text;
        continue;
      case 7: // line endings
        text = text.replaceAll("\r\n", pick(rand, ["\n", "\r", "\r\r\n", "\r\n "]));
        continue;
      default:
        break;
    }
    text = `${lines.join("\r\n")}\r\n\r\n${body}`;
    // Inputs stay bounded (a doubled request of huge headers would grow without end).
    if (text.length > MAX_TEXT) text = text.slice(0, MAX_TEXT);
  }
  let bytes: Uint8Array = enc(text.slice(0, MAX_TEXT));
  if (rand() < 0.3) bytes = mutate(bytes, rand, HTTP1_SEEDS.map(enc), DICT, 256 * 1024);
  return bytes;
}

const ADMIN_PATHS = [
  "/",
  "/config_dump",
  "/logging",
  "/logging?level=debug",
  "/logging?level=bogus:trace,xds:info",
  "/logging?reset",
  "/reload",
  "/reload?filter=authz",
  "/reload?filter=%00",
  "/stats/prometheus",
  "/metrics",
  "/healthz/live",
  "/healthz/ready",
  "/quitquitquit",
  "/../etc/passwd",
  "//config_dump",
  "/config_dump?" + "q=x&".repeat(5000),
  "/%2e%2e/",
  "*",
];

/** One admin-port request; `authority` is the bound address. A request that carries the guard's
 * header never names /quitquitquit (it would stop the node). `foreign`: a state-changing request
 * the guard must refuse (checked when the bytes were not mutated as a whole: `checkable`). */
export function adminInput(
  rand: Rand,
  authority: string,
): { bytes: Uint8Array; foreign: boolean; checkable: boolean } {
  const method = pick(rand, [
    "GET",
    "POST",
    "PUT",
    "DELETE",
    "HEAD",
    "OPTIONS",
    "PATCH",
    "TRACE",
    "CONNECT",
    "BREW",
    "get",
    "",
  ]);
  const path = pick(rand, ADMIN_PATHS);
  const host = pick(rand, [
    authority,
    authority,
    "evil.example",
    `localhost:${authority.split(":")[1]}`,
    "",
    "[::1]",
  ]);
  const origin = pick(rand, [
    undefined,
    undefined,
    "http://evil.example",
    `http://${authority}`,
    "null",
  ]);
  const guard = path !== "/quitquitquit" && rand() < 0.5;
  const foreign = origin === "http://evil.example" || origin === "null" || !guard;
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`];
  if (origin) lines.push(`Origin: ${origin}`);
  if (guard) lines.push("x-weft-admin: 1");
  const body = rand() < 0.3 ? "x".repeat(pick(rand, [1, 1000, 100_000])) : "";
  if (body) {
    lines.push(rand() < 0.5 ? `Content-Length: ${body.length}` : "Transfer-Encoding: chunked");
  }
  const chunked = lines.at(-1)!.startsWith("Transfer");
  let text = `${lines.join("\r\n")}\r\n\r\n${
    chunked ? `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n` : body
  }`;
  if (rand() < 0.15) text = text.replaceAll("\r\n", "\n");
  let bytes: Uint8Array = enc(text);
  const whole = rand() < 0.2;
  if (whole) bytes = mutate(bytes, rand, [], DICT, 256 * 1024);
  const safe = method === "GET" || method === "HEAD";
  return { bytes, foreign: foreign && !safe, checkable: !whole };
}
