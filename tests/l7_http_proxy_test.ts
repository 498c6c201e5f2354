/** HTTP through weft's L7 proxy with real component filters built from plugins/examples. */
import assert from "node:assert/strict";
import http2 from "node:http2";
import { startL7 } from "./support/l7_harness.ts";
import { exampleFilter } from "./support/example_plugins.ts";

async function get(
  client: Deno.HttpClient,
  url: string,
): Promise<{ status: number; headers: Headers; body: string }> {
  const r = await fetch(url, { client });
  return { status: r.status, headers: r.headers, body: await r.text() };
}

Deno.test("a chain of three component filters rewrites, answers locally, routes and fails safely", async () => {
  const rewrite = await exampleFilter("c_header_rewrite", { header: "x-hello", value: "world" });
  const local = await exampleFilter("c_local_response");
  const faulty = await exampleFilter("c_faulty", {}, { sandbox: { callBudgetMs: 30 } });
  const h = await startL7([rewrite, local, faulty]);
  const client = Deno.createHttpClient({});
  try {
    const ok = await get(client, `${h.url}/hello?x=1`);
    assert.equal(ok.status, 200);
    const echoed = JSON.parse(ok.body);
    assert.equal(echoed.headers["x-hello"], "world");
    assert.equal(echoed.headers["x-faulty"], "ok");
    assert.equal(ok.headers.get("x-weft-path"), "/hello?x=1");

    const denied = await get(client, `${h.url}/deny`);
    assert.equal(denied.status, 403);
    assert.equal(denied.body, "denied by weft\n");
    assert.equal(denied.headers.get("x-denied-by"), "c_local_response");

    const routed = await get(client, `${h.url}/v2/reviews`);
    assert.equal(routed.status, 200);
    assert.deepEqual(h.routes.at(-1), {
      service: "reviews.default.svc.cluster.local",
      subset: "v2",
    });

    const up5xx = await get(client, `${h.url}/status/503`);
    assert.equal(up5xx.status, 502);
    assert.equal(up5xx.body, "upstream failed\n");

    // FAIL_CLOSE: a trap answers 503 with an empty body; the proxy keeps serving.
    const trapped = await get(client, `${h.url}/trap`);
    assert.equal(trapped.status, 503);
    assert.equal(trapped.body, "");
    assert.equal((await get(client, `${h.url}/after-trap`)).status, 200);

    // An infinite loop is stopped within its budget while other requests keep flowing.
    const spinning = get(client, `${h.url}/spin`);
    const others = await Promise.all(
      Array.from({ length: 10 }, (_, i) => get(client, `${h.url}/ok${i}`)),
    );
    assert.ok(others.every((r) => r.status === 200));
    assert.equal((await spinning).status, 503);
  } finally {
    client.close();
    await h.close();
  }
});

Deno.test("FAIL_OPEN skips a trapping filter; delays are applied", async () => {
  const faulty = await exampleFilter("c_faulty", {}, { failPolicy: "FAIL_OPEN" });
  const local = await exampleFilter("c_local_response");
  const h = await startL7([faulty, local]);
  const client = Deno.createHttpClient({});
  try {
    const r = await get(client, `${h.url}/trap`);
    assert.equal(r.status, 200);
    const t0 = performance.now();
    assert.equal((await get(client, `${h.url}/delay`)).status, 200);
    assert.ok(performance.now() - t0 >= 19);
  } finally {
    client.close();
    await h.close();
  }
});

Deno.test("request bodies (content-length and chunked) stream through unchanged", async () => {
  const h = await startL7([await exampleFilter("c_header_rewrite", { value: "v" })]);
  const client = Deno.createHttpClient({});
  try {
    const big = "x".repeat(300_000);
    const r1 = await fetch(`${h.url}/post`, { method: "POST", body: big, client });
    assert.equal(r1.status, 200);
    assert.equal(JSON.parse(await r1.text()).headers["content-length"], String(big.length));
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode("part1"));
        c.enqueue(new TextEncoder().encode("part2"));
        c.close();
      },
    });
    const r2 = await fetch(`${h.url}/chunked`, { method: "POST", body: stream, client });
    assert.equal(r2.status, 200);
    assert.equal(JSON.parse(await r2.text()).headers["transfer-encoding"], "chunked");
  } finally {
    client.close();
    await h.close();
  }
});

Deno.test("h2c (prior knowledge) requests run the same chain and reach the HTTP/1.1 upstream", async () => {
  const h = await startL7([
    await exampleFilter("c_header_rewrite", { header: "x-hello", value: "h2" }),
    await exampleFilter("c_local_response"),
  ]);
  const session = http2.connect(h.url);
  const request = (
    path: string,
    method = "GET",
    body?: string,
  ): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> =>
    new Promise((resolve, reject) => {
      const req = session.request({ ":path": path, ":method": method });
      let data = "";
      let head: http2.IncomingHttpHeaders = {};
      req.on("response", (hd) => (head = hd));
      req.setEncoding("utf8");
      req.on("data", (c: string) => (data += c));
      req.on("end", () => resolve({ status: Number(head[":status"]), headers: head, body: data }));
      req.on("error", reject);
      req.end(body);
    });
  try {
    const ok = await request("/h2/path");
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).headers["x-hello"], "h2");
    assert.equal(ok.headers["x-weft-path"], "/h2/path");
    const denied = await request("/deny");
    assert.equal(denied.status, 403);
    assert.equal(denied.body, "denied by weft\n");
    const posted = await request("/post", "POST", "payload");
    assert.equal(posted.status, 200);
    assert.equal(JSON.parse(posted.body).headers["transfer-encoding"], "chunked");
    const all = await Promise.all(Array.from({ length: 10 }, (_, i) => request(`/c${i}`)));
    assert.ok(all.every((r) => r.status === 200));
  } finally {
    await new Promise<void>((r) => session.close(() => r()));
    await h.close();
  }
});

Deno.test("h2c to an HTTP/2 upstream keeps trailers (gRPC) and applies the chain", async () => {
  const h = await startL7([
    await exampleFilter("c_header_rewrite", { header: "x-hello", value: "grpc" }),
    await exampleFilter("c_local_response"),
  ], { upstream: "h2" });
  const session = http2.connect(h.url);
  const call = (
    path: string,
  ): Promise<
    {
      status: number;
      body: string;
      trailers: http2.IncomingHttpHeaders;
      headers: http2.IncomingHttpHeaders;
    }
  > =>
    new Promise((resolve, reject) => {
      const req = session.request({
        ":path": path,
        ":method": "POST",
        "content-type": "application/grpc",
      });
      let head: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      let body = "";
      req.on("response", (hd) => (head = hd));
      req.on("trailers", (t) => (trailers = t));
      req.setEncoding("utf8");
      req.on("data", (c: string) => (body += c));
      req.on("end", () =>
        resolve({ status: Number(head[":status"]), body, trailers, headers: head }));
      req.on("error", reject);
      req.end("msg");
    });
  try {
    const r = await call("/pkg.Svc/Method");
    assert.equal(r.status, 200);
    const echoed = JSON.parse(r.body);
    assert.equal(echoed.headers["x-hello"], "grpc");
    assert.equal(echoed.body, "msg");
    assert.equal(r.trailers["grpc-status"], "0");
    assert.equal(r.headers["x-weft-path"], "/pkg.Svc/Method"); // response phase ran
    // A filter's 403 to a gRPC request is Envoy's gRPC local reply: trailers-only, HTTP 200,
    // grpc-status 7 (PERMISSION_DENIED), no body.
    const denied = await call("/deny");
    assert.equal(denied.status, 200);
    assert.equal(denied.headers["grpc-status"], "7");
    assert.equal(denied.body, "");
  } finally {
    await new Promise<void>((r) => session.close(() => r()));
    await h.close();
  }
});
