/**
 * `proxy_grpc_stream` / `proxy_grpc_send` / `proxy_grpc_close` against a real bidirectional gRPC
 * server (node:http2, h2c) that answers every message as it arrives, through the C test filter
 * (built from source): replies are delivered one by one, a send after end_of_stream is refused,
 * proxy_grpc_close half-closes (the server's replies and trailers still arrive), and the stream
 * closes with the server's grpc-status.
 */
import type { ServerHttp2Stream } from "node:http2";
import { assert, assertEquals } from "../../../tests/support/assert.ts";
import { ref, request, testFilter } from "../../../tests/support/proxy_wasm_kit.ts";
import { setLogSink } from "../../core/mod.ts";
import { createProxyWasmFilter } from "./mod.ts";
import { grpcFrame as frame, startGrpcEcho } from "../../../tests/support/grpc_echo.ts";

const wasm = await testFilter();

Deno.test("proxy_grpc_stream: messages both ways as they come, half-close, status", async () => {
  const seen: string[] = [];
  const server = await startGrpcEcho({
    responseHeaders: { "x-initial": "1" },
    onStream: (headers) => seen.push(`${headers[":path"]} md=${headers["x-md"]}`),
    onMessage: (msg) => seen.push(`msg ${msg}`),
  });
  const port = server.port;
  const restore = setLogSink(() => {});
  const f = await createProxyWasmFilter(ref("grpc", wasm, {}), {
    clusters: { grpc: `127.0.0.1:${port}` },
  });
  try {
    const req = request({ "x-test": "grpc-stream" });
    const out = f.onRequest(req);
    assert(out instanceof Promise, "held while the stream runs");
    assertEquals(await out, { action: "continue" });
    f.onDone(req);
    const h = req.requestHeaders;
    assertEquals([h.get("x-grpc-send-1"), h.get("x-grpc-send-2")], ["0", "0"]);
    assertEquals(h.get("x-grpc-send-3"), "2", "BAD_ARGUMENT after end_of_stream");
    assertEquals(h.get("x-grpc-message"), "pong:a,pong:b", "each reply delivered");
    assertEquals(h.get("x-grpc-status"), "0");
    assert(Number(h.get("x-grpc-initial-count")) >= 2, "initial metadata delivered");
    assertEquals(seen.slice(0, 3), ["/test.Echo/Chat md=v", "msg a", "msg b"]);

    const half = request({ "x-test": "grpc-stream-close" });
    assertEquals(await f.onRequest(half), { action: "continue" });
    f.onDone(half);
    assertEquals(half.requestHeaders.get("x-grpc-close"), "0");
    assertEquals(half.requestHeaders.get("x-grpc-message"), "pong:a", "replies after close");
    assertEquals(half.requestHeaders.get("x-grpc-status"), "0");
  } finally {
    f.close();
    restore();
    await server.close();
  }
});

Deno.test("proxy_grpc_stream: a stream whose request ended first gets nothing more (cancelled)", async () => {
  let messages = 0;
  const server = await startGrpcEcho({ onMessage: () => messages++ });
  const restore = setLogSink(() => {});
  const f = await createProxyWasmFilter(ref("grpc-gone", wasm, {}), {
    clusters: { grpc: `127.0.0.1:${server.port}` },
  });
  try {
    const vm = f.currentVm!;
    const req = request({ "x-test": "grpc-stream" });
    const out = f.onRequest(req);
    assert(out instanceof Promise, "held while the stream runs");
    f.onDone(req); // the client went away before any reply
    await out;
    const deadline = Date.now() + 3000;
    while ((messages < 1 || vm.grpcCalls.size > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assertEquals(vm.grpcCalls.size, 0, "the call is gone");
    assertEquals(vm.export("test_grpc_deliveries")!(), 0, "no callback for a deleted context");
  } finally {
    f.close();
    restore();
    await server.close();
  }
});

Deno.test("proxy_grpc_call over TLS (ALPN h2) to a cluster with tls options", async () => {
  const { createSecureServer } = await import("node:http2");
  const { createTestPki } = await import("../../../tests/support/test_ca.ts");
  const pki = await createTestPki();
  const leaf = await pki.good("spiffe://cluster.local/ns/default/sa/grpc");
  const server = createSecureServer({ cert: leaf.certPem, key: leaf.keyPem });
  let alpn: string | false | undefined;
  server.on("stream", (s) => {
    const stream = s as ServerHttp2Stream;
    alpn = stream.session?.alpnProtocol;
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
      waitForTrailers: true,
    });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.resume();
    stream.on("end", () => stream.end(frame("pong:tls")));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const restore = setLogSink(() => {});
  const f = await createProxyWasmFilter(ref("grpc-tls", wasm, {}), {
    clusters: { grpc: { address: `127.0.0.1:${port}`, tls: { insecureSkipVerify: true } } },
  });
  try {
    const req = request({ "x-test": "grpc" });
    assertEquals(await f.onRequest(req), { action: "continue" });
    f.onDone(req);
    assertEquals(req.requestHeaders.get("x-grpc-status"), "0");
    assertEquals(req.requestHeaders.get("x-grpc-message"), "pong:tls");
    assertEquals(alpn, "h2");
  } finally {
    f.close();
    restore();
    await new Promise((r) => server.close(r));
    await pki.dispose();
  }
});
