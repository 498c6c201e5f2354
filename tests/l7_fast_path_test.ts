/**
 * The filter chain's synchronous fast path through the HTTP/1.1 proxy, on Deno (in process,
 * node:net) and on Bun (native sockets): synchronous hooks, one that suspends for its headers, one
 * synchronous for headers and asynchronous for its streamed body, traps under FAIL_OPEN and
 * FAIL_CLOSE, local replies from both phases, all on one keep-alive connection; every hook must
 * run exactly once (tests/support/fast_path_filters.ts reports the counts on each response) and
 * the request counter must count each answer once.
 */
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import { FilterChain, HttpProxy, metrics } from "../src/core/mod.ts";
import { TEST_PEER } from "./support/filter_context.ts";
import { fastPathFilters } from "./support/fast_path_filters.ts";
import { startBunProxy } from "./support/bun_l7.ts";
import { bunPath } from "./support/weft_proc.ts";
import { rawClient, type RawResponse } from "./support/raw_http_client.ts";

const header = (r: RawResponse, name: string): string | undefined =>
  new RegExp(`\\r\\n${name}: *([^\\r]*)`, "i").exec(r.head)?.[1];

/** Upstream: JSON {url, headers, body} with content-length. */
async function echo(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.stringify({
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      res.writeHead(200, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
      }).end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

const ALL_ONCE = "req:fragile=1,req:gate=1,req:stamp=1,req:upper=1," +
  "res:fragile=1,res:gate=1,res:stamp=1,res:upper=1";
const get = (path: string): string => `GET ${path} HTTP/1.1\r\nhost: a\r\n\r\n`;

/** The scenarios, in order on one keep-alive connection; returns the count by status class. */
async function scenarios(port: number): Promise<Record<string, number>> {
  const c = await rawClient(port);
  const classes: Record<string, number> = {};
  const send = async (req: string): Promise<RawResponse> => {
    const r = await c.roundTrip(req);
    const k = `${Math.floor(r.status / 100)}xx`;
    classes[k] = (classes[k] ?? 0) + 1;
    return r;
  };
  try {
    const ok = await send(get("/ok"));
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).headers["x-stamp"], "1", "a fast-path header change");
    assert.equal(header(ok, "x-res-stamp"), "200");
    assert.equal(header(ok, "x-calls"), ALL_ONCE);

    // Synchronous headers, asynchronous streamed body: the body is replaced on the way.
    const posted = await send(
      "POST /body HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello",
    );
    assert.equal(posted.status, 200);
    const seen = JSON.parse(posted.body);
    assert.equal(seen.body, "HELLO");
    assert.equal(seen.headers["x-stamp"], "1");
    assert.match(header(posted, "x-calls")!, /^body:upper=\d+,req:fragile=1,req:gate=1,/);
    assert.ok(header(posted, "x-calls")!.endsWith(ALL_ONCE.slice(ALL_ONCE.indexOf("req:gate"))));

    // A request hook that suspends: the filters after it run once, after it, on the async path.
    const slow = await send(get("/slow-headers"));
    assert.equal(slow.status, 200);
    assert.equal(JSON.parse(slow.body).headers["x-slow"], "1");
    assert.equal(header(slow, "x-calls"), ALL_ONCE);

    // A local reply from the fast path; the connection stays open.
    const denied = await send(get("/deny"));
    assert.equal(denied.status, 403);
    assert.equal(denied.body, "no\n");
    assert.equal(header(denied, "x-denied-by"), "gate");

    // A trap under FAIL_CLOSE: 503, empty body (Envoy's wasm_fail_stream).
    const trapped = await send(get("/trap"));
    assert.equal(trapped.status, 503);
    assert.equal(trapped.body, "");

    // A trap under FAIL_OPEN: that filter is skipped, the others still run once.
    const open = await send(get("/trap-open"));
    assert.equal(open.status, 200);
    assert.equal(JSON.parse(open.body).headers["x-stamp"], "1");
    assert.equal(header(open, "x-calls"), ALL_ONCE);

    // A local reply from a response hook replaces the upstream's answer.
    const withheld = await send(get("/res-deny"));
    assert.equal(withheld.status, 451);
    assert.equal(withheld.body, "withheld\n");

    assert.equal((await send(get("/after"))).status, 200, "the connection still serves");
  } finally {
    c.close();
  }
  return classes;
}

function inbound(cls: string): number {
  const m = new RegExp(
    `^weft_http_requests_total\\{direction="inbound",code_class="${cls}"\\} (\\d+)`,
    "m",
  ).exec(metrics.render());
  return Number(m?.[1] ?? 0);
}

Deno.test("fast path through the proxy on Deno: sync and async hooks, traps, local replies, counts", async () => {
  const up = await echo();
  const done: string[] = [];
  const chain = new FilterChain(fastPathFilters(done));
  const proxy = new HttpProxy({
    chain: () => chain,
    direction: "inbound",
    dialUpstream: () =>
      new Promise<Duplex>((ok, fail) => {
        const s = net.connect(up.port, "127.0.0.1");
        s.once("connect", () => ok(s));
        s.once("error", fail);
      }),
  });
  const sockets = new Set<net.Socket>();
  const front = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    proxy.handle(s, TEST_PEER).catch((e) => assert.fail(String(e)));
  });
  await new Promise<void>((r) => front.listen(0, "127.0.0.1", r));
  const before = { "2xx": inbound("2xx"), "4xx": inbound("4xx"), "5xx": inbound("5xx") };
  try {
    const classes = await scenarios((front.address() as AddressInfo).port);
    assert.deepEqual(classes, { "2xx": 5, "4xx": 2, "5xx": 1 });
    for (const [k, n] of Object.entries(classes)) {
      assert.equal(inbound(k) - before[k as keyof typeof before], n, `requests counted, ${k}`);
    }
    // Every filter's onDone once per request, on every path (forwarded, answered locally by
    // either phase, trapped, suspended, with a streamed body).
    const paths = ["/ok", "/body", "/slow-headers", "/deny", "/trap", "/trap-open", "/res-deny"];
    const want = ["fragile", "gate", "stamp", "upper"]
      .flatMap((f) => [...paths, "/after"].map((p) => `${f} ${p}`)).sort();
    assert.deepEqual([...done].sort(), want);
  } finally {
    proxy.close();
    for (const s of sockets) s.destroy();
    await new Promise((r) => front.close(r));
    await up.close();
  }
});

Deno.test({
  name: "fast path through the proxy on Bun's native sockets: the same scenarios",
  ignore: !bunPath(),
  fn: async () => {
    const up = await echo();
    const proxy = await startBunProxy(up.port, 10_000, ["--fast-path-filters"]);
    try {
      assert.deepEqual(await scenarios(proxy.port), { "2xx": 5, "4xx": 2, "5xx": 1 });
    } finally {
      const out = await proxy.stop();
      await up.close();
      assert.doesNotMatch(out, /unhandled/i, out);
    }
  },
});

Deno.test("fast path: an upstream that cannot be reached answers 503 and still ends every filter once", async () => {
  const done: string[] = [];
  const chain = new FilterChain(fastPathFilters(done));
  const proxy = new HttpProxy({
    chain: () => chain,
    direction: "inbound",
    dialUpstream: () => Promise.reject(new Error("refused")),
  });
  const sockets = new Set<net.Socket>();
  const front = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    proxy.handle(s, TEST_PEER).catch((e) => assert.fail(String(e)));
  });
  await new Promise<void>((r) => front.listen(0, "127.0.0.1", r));
  const c = await rawClient((front.address() as AddressInfo).port);
  try {
    const r = await c.roundTrip(get("/down"));
    assert.equal(r.status, 503);
    assert.equal(r.body, "upstream connect error");
    assert.equal((await c.roundTrip(get("/down-again"))).status, 503, "the connection stays open");
    assert.deepEqual(
      [...done].sort(),
      ["fragile", "gate", "stamp", "upper"].flatMap((f) => [`${f} /down`, `${f} /down-again`])
        .sort(),
    );
  } finally {
    c.close();
    proxy.close();
    for (const s of sockets) s.destroy();
    await new Promise((r) => front.close(r));
  }
});
