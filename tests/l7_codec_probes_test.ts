/**
 * Hostile HTTP/1.1 probes with raw sockets against weft's HttpProxy (in-process, on a real TCP
 * listener) in front of a real TCP upstream that records every byte it receives. Each smuggling or
 * lenient-parsing probe must get its status (400/431/501/505/408), a closed connection (FIN), and
 * nothing may reach the upstream. Each test runs twice: the proxy in-process on Deno (node:net), and
 * on Bun's native sockets (tests/support/bun_l7_proxy.ts, src/core/native_socket.ts) when a bun
 * binary is present.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { Buffer } from "node:buffer";
import { FilterChain, HttpProxy } from "../src/core/mod.ts";
import { TEST_PEER } from "./support/filter_context.ts";
import { bunPath } from "./support/weft_proc.ts";
import { startBunProxy } from "./support/bun_l7.ts";

const BUN = bunPath();
type Runtime = "deno" | "bun";
const RUNTIMES: Runtime[] = ["deno", "bun"];

interface Rig {
  port: number;
  /** Bytes the upstream received since the last reset. */
  upstreamBytes(): number;
  close(): Promise<void>;
}

async function listen(s: net.Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return (s.address() as net.AddressInfo).port;
}

async function startRig(
  runtime: Runtime,
  requestHeadersTimeoutMs = 10_000,
  response = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
): Promise<Rig & { upstreamConnections(): number }> {
  let received = 0;
  let connections = 0;
  const upSockets = new Set<net.Socket>();
  // A minimal keep-alive upstream: one fixed response per request head it sees.
  const upstream = net.createServer((s) => {
    connections++;
    upSockets.add(s);
    s.on("close", () => upSockets.delete(s));
    s.on("data", (c: Buffer) => {
      received += c.length;
      const heads = c.toString("latin1").split("\r\n\r\n").length - 1;
      for (let i = 0; i < heads; i++) s.write(response);
    });
    s.on("error", () => {});
  });
  const upPort = await listen(upstream);
  const closeUpstream = async (): Promise<void> => {
    for (const s of upSockets) s.destroy();
    await new Promise((r) => upstream.close(r));
  };
  if (runtime === "bun") {
    const front = await startBunProxy(upPort, requestHeadersTimeoutMs);
    return {
      port: front.port,
      upstreamBytes: () => received,
      upstreamConnections: () => connections,
      close: async () => {
        const out = await front.stop();
        await closeUpstream();
        assert.ok(!/unhandled/i.test(out), `the Bun proxy logged: ${out}`);
      },
    };
  }
  const proxy = new HttpProxy({
    chain: () => new FilterChain([]),
    direction: "inbound",
    requestHeadersTimeoutMs,
    dialUpstream: () =>
      new Promise((ok, fail) => {
        const s = net.connect(upPort, "127.0.0.1");
        s.once("connect", () => ok(s));
        s.once("error", fail);
      }),
  });
  const downs = new Set<net.Socket>();
  const front = net.createServer((s) => {
    downs.add(s);
    s.on("close", () => downs.delete(s));
    s.on("error", () => {});
    proxy.handle(s, TEST_PEER).catch(() => {});
  });
  const port = await listen(front);
  return {
    port,
    upstreamBytes: () => received,
    upstreamConnections: () => connections,
    close: async () => {
      proxy.close();
      for (const s of downs) s.destroy();
      await new Promise((r) => front.close(r));
      await closeUpstream();
    },
  };
}

/** Sends `parts` (with `gapMs` between them), reads until the server closes; returns the status
 * line of the first response, everything read, and whether the server closed (FIN) in time. */
async function probe(
  port: number,
  parts: (string | Uint8Array)[],
  opts: { gapMs?: number; waitMs?: number } = {},
): Promise<{ status: number; text: string; closed: boolean }> {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  await new Promise<void>((r) => s.once("connect", r));
  let text = "";
  let closed = false;
  const done = new Promise<void>((r) => {
    s.on("data", (c: Buffer) => (text += c.toString("latin1")));
    s.on("end", () => {
      closed = true;
      r();
    });
    s.on("close", () => r());
  });
  for (const p of parts) {
    if (s.destroyed) break;
    s.write(p);
    if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([done, new Promise((r) => (timer = setTimeout(r, opts.waitMs ?? 3000)))]);
  clearTimeout(timer);
  s.destroy();
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text, closed };
}

/** The test once per runtime of the proxy (Bun: skipped without a bun binary). */
function forRuntimes(
  name: string,
  fn: (runtime: Runtime) => Promise<void>,
  ignore = false,
): void {
  for (const runtime of RUNTIMES) {
    Deno.test({
      name: `${name} (${runtime === "bun" ? "bun, native sockets" : "deno"})`,
      ignore: ignore || (runtime === "bun" && BUN === undefined),
      fn: () => fn(runtime),
    });
  }
}

const H = "Host: a\r\n";
const PROBES: [string, string, number][] = [
  [
    "differing Content-Length",
    `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 45\r\n\r\nhello`,
    400,
  ],
  [
    "Content-Length list that differs",
    `POST / HTTP/1.1\r\n${H}Content-Length: 5, 6\r\n\r\nhello`,
    400,
  ],
  [
    "TE + CL",
    `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    400,
  ],
  [
    "TE chunked, identity",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`,
    400,
  ],
  [
    "TE gzip, chunked",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
    501,
  ],
  [
    "TE chunked twice",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    400,
  ],
  [
    "chunk size 0x5",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n`,
    400,
  ],
  [
    "chunk size 5zz",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5zz\r\nhello\r\n0\r\n\r\n`,
    400,
  ],
  [
    "chunk size with spaces",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n 5 \r\nhello\r\n0\r\n\r\n`,
    400,
  ],
  [
    "huge chunk size",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n`,
    400,
  ],
  [
    "no CRLF after chunk data",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n`,
    400,
  ],
  ["bare LF head", `GET / HTTP/1.1\n${H.replace("\r", "")}\n`, 400],
  ["bare LF in one header", `GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n`, 400],
  ["obs-fold", `GET / HTTP/1.1\r\n${H}X-A: 1\r\n  folded\r\n\r\n`, 400],
  [
    "space before colon",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`,
    400,
  ],
  ["space in a header name", `GET / HTTP/1.1\r\n${H}X A: 1\r\n\r\n`, 400],
  ["NUL in a value", `GET / HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`, 400],
  ["no Host", `GET / HTTP/1.1\r\nX-A: 1\r\n\r\n`, 400],
  ["two Hosts", `GET / HTTP/1.1\r\n${H}${H}\r\n`, 400],
  ["HTTP/9.9", `GET / HTTP/9.9\r\n${H}\r\n`, 505],
  ["HTTP/2.0 line", `GET / HTTP/2.0\r\n${H}\r\n`, 505],
  ["garbage version", `GET / HTTX/1.1\r\n${H}\r\n`, 400],
  ["two spaces in the request line", `GET  / HTTP/1.1\r\n${H}\r\n`, 400],
  ["101 headers", `GET / HTTP/1.1\r\n${H}${"X-A: 1\r\n".repeat(100)}\r\n`, 431],
];

forRuntimes(
  "codec: smuggling and lenient-parsing probes get their status, FIN, and reach nothing",
  async (runtime) => {
    const rig = await startRig(runtime);
    try {
      for (const [name, req, want] of PROBES) {
        const before = rig.upstreamBytes();
        const r = await probe(rig.port, [req]);
        assert.equal(r.status, want, `${name}: got ${JSON.stringify(r.text.slice(0, 80))}`);
        assert.ok(r.closed, `${name}: connection not closed after ${want}`);
        assert.ok(/\r\nconnection: close\r\n/i.test(r.text), `${name}: no connection: close`);
        assert.equal(rig.upstreamBytes(), before, `${name}: bytes reached the upstream`);
      }
    } finally {
      await rig.close();
    }
  },
);

forRuntimes(
  "codec: an oversize head gets 431 in one read, in many reads, and by count",
  async (runtime) => {
    const rig = await startRig(runtime);
    try {
      const big = `GET / HTTP/1.1\r\n${H}X-Big: ${"a".repeat(96 * 1024)}\r\n\r\n`;
      const many = `GET / HTTP/1.1\r\n${H}${"X-A: 1\r\n".repeat(16_000)}\r\n`;
      const split: string[] = [];
      for (let i = 0; i < big.length; i += 1000) split.push(big.slice(i, i + 1000));
      for (
        const [name, parts] of [["one read", [big]], ["1000-byte reads", split], ["16000 headers", [
          many,
        ]]] as const
      ) {
        const r = await probe(rig.port, [...parts]);
        assert.equal(r.status, 431, name);
        assert.ok(r.closed, `${name}: not closed`);
        assert.equal(rig.upstreamBytes(), 0, `${name}: reached the upstream`);
      }
    } finally {
      await rig.close();
    }
  },
);

forRuntimes(
  "codec: valid framing still works; equal duplicate Content-Length is merged; close after Connection: close",
  async (runtime) => {
    const rig = await startRig(runtime);
    try {
      const ok = await probe(rig.port, [
        `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello` +
        `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n` +
        `GET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
      ]);
      assert.equal(ok.text.match(/HTTP\/1\.1 200/g)?.length, 3, ok.text);
      assert.ok(ok.closed, "Connection: close must end with FIN");
    } finally {
      await rig.close();
    }
  },
);

forRuntimes(
  "codec: slowloris connections are closed at the request-header timeout with 408",
  async (runtime) => {
    const rig = await startRig(runtime, 300);
    try {
      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: 20 }, () =>
          probe(rig.port, [
            "GET / HTTP/1.1\r\n",
            "Host: a\r\n",
            "X-A: 1\r\n",
            "X-B: 1\r\n",
            "X-C: 1\r\n",
          ], {
            gapMs: 100,
            waitMs: 3000,
          })),
      );
      for (const r of results) {
        assert.equal(r.status, 408);
        assert.ok(r.closed);
      }
      const silent = await probe(rig.port, [], { waitMs: 3000 });
      assert.equal(silent.status, 408);
      assert.ok(silent.closed);
      assert.ok(performance.now() - started < 5000);
      assert.equal(rig.upstreamBytes(), 0);
    } finally {
      await rig.close();
    }
  },
);

forRuntimes(
  "codec: an upstream response with framing doubt gets 502 and its connection is never reused",
  async (runtime) => {
    const rig = await startRig(
      runtime,
      10_000,
      "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 7\r\n\r\nok",
    );
    try {
      for (let i = 0; i < 3; i++) {
        const r = await probe(rig.port, [`GET / HTTP/1.1\r\n${H}\r\n`]);
        assert.equal(r.status, 502, r.text);
        assert.ok(r.closed);
      }
      assert.equal(rig.upstreamConnections(), 3, "each request must dial a fresh upstream");
    } finally {
      await rig.close();
    }
  },
);

const HAVE_H2LOAD =
  new Deno.Command("sh", { args: ["-c", "command -v h2load"] }).outputSync().success;

forRuntimes(
  "h2c prior knowledge on the same downstream: 2000 streams over 4 connections, all 200",
  async (runtime) => {
    const rig = await startRig(runtime);
    try {
      const out = await new Deno.Command("h2load", {
        args: ["-n", "2000", "-c", "4", "-m", "10", `http://127.0.0.1:${rig.port}/h2`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.match(text, /2000 succeeded, 0 failed, 0 errored/, text);
      assert.match(text, /status codes: 2000 2xx/, text);
    } finally {
      await rig.close();
    }
  },
  !HAVE_H2LOAD, // skipped without h2load (nghttp2-client)
);
