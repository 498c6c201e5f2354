/** The xDS client against a hostile control plane on real HTTP/2 (node:http2, h2c on loopback):
 * a type never subscribed, a garbage type URL, duplicate names, a message announced larger than
 * the limit, a stream that ends in the middle of a message. Each is NACKed or ends that stream
 * only; the client keeps what it accepted and resubscribes with it (xds.md §4, §9, §17). */
import assert from "node:assert/strict";
import http2 from "node:http2";
import { Buffer } from "node:buffer";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BASE, meshYaml } from "./_test_fixtures.ts";
import { XdsClient } from "./client.ts";
import { buildNode } from "./control_plane/build.ts";
import { parseMesh } from "./control_plane/mesh.ts";
import { ADS_SOTW_PATH } from "./grpc_transport.ts";
import { type DiscoveryRequest, DiscoveryRequestSchema, DiscoveryResponseSchema } from "./proto.ts";
import { CLUSTER, EXTENSION_CONFIG } from "./type_urls.ts";
import { setLogSink } from "../core/mod.ts";

const built = buildNode(parseMesh(meshYaml(10)), "node-a");
const clusters = [...built.get(CLUSTER)!.values()].map((b) => b.any);

function frame(bytes: Uint8Array): Buffer {
  const b = Buffer.alloc(5 + bytes.length);
  b.writeUInt32BE(bytes.length, 1);
  b.set(bytes, 5);
  return b;
}

const response = (init: Record<string, unknown>) =>
  frame(toBinary(DiscoveryResponseSchema, create(DiscoveryResponseSchema, init)));

/** One ADS stream as the server sees it: the requests in order, and the stream to write to. */
interface Stream {
  readonly s: http2.ServerHttp2Stream;
  readonly requests: DiscoveryRequest[];
  next(pred: (r: DiscoveryRequest) => boolean): Promise<DiscoveryRequest>;
}

Deno.test("xds client vs a hostile control plane: NACKs, stream-only failures, resubscribe with what it kept", async () => {
  const restore = setLogSink(() => {});
  const streams: Stream[] = [];
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  server.on("stream", (raw, headers) => {
    const s = raw as http2.ServerHttp2Stream;
    assert.equal(headers[":path"], ADS_SOTW_PATH);
    s.respond({ ":status": 200, "content-type": "application/grpc" });
    const requests: DiscoveryRequest[] = [];
    let buf = Buffer.alloc(0);
    s.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
        const len = buf.readUInt32BE(1);
        requests.push(fromBinary(DiscoveryRequestSchema, buf.subarray(5, 5 + len)));
        buf = buf.subarray(5 + len);
        wake();
      }
    });
    s.on("error", () => {});
    let seen = 0;
    streams.push({
      s,
      requests,
      async next(pred) {
        for (;;) {
          while (seen < requests.length) {
            const r = requests[seen++]!;
            if (pred(r)) return r;
          }
          await new Promise<void>((r) => waiters.push(r));
        }
      },
    });
    wake();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const client = new XdsClient({
    server: `127.0.0.1:${port}`,
    mode: "sotw",
    nodeId: "node-a",
    base: BASE,
    initialBackoffMs: 5,
    maxBackoffMs: 20,
  });
  const stream = async (i: number): Promise<Stream> => {
    while (streams.length <= i) await new Promise<void>((r) => waiters.push(r));
    return streams[i]!;
  };
  const held = () => client["store"].of(CLUSTER).size;
  const byNonce = (n: string) => (r: DiscoveryRequest) => r.responseNonce === n;
  try {
    client.start();
    const one = await stream(0);
    const first = await one.next((r) => r.typeUrl === CLUSTER);
    assert.equal(first.node?.id, "node-a");

    // A type this stream never subscribed to, and a garbage type URL: NACKed, nothing applied.
    one.s.write(response({ typeUrl: EXTENSION_CONFIG, versionInfo: "e1", nonce: "evil-1" }));
    const n1 = await one.next(byNonce("evil-1"));
    assert.match(n1.errorDetail!.message, /was not subscribed/);
    one.s.write(response({ typeUrl: "type.googleapis.com/evil.Type", nonce: "evil-2" }));
    const n2 = await one.next(byNonce("evil-2"));
    assert.match(n2.errorDetail!.message, /unknown type URL/);

    // Good clusters: ACK; then the same name twice: NACK with the previous version.
    one.s.write(
      response({ typeUrl: CLUSTER, versionInfo: "v1", nonce: "c1", resources: clusters }),
    );
    const ack = await one.next(byNonce("c1"));
    assert.equal(ack.errorDetail, undefined);
    assert.equal(ack.versionInfo, "v1");
    assert.equal(held(), clusters.length);
    one.s.write(response({
      typeUrl: CLUSTER,
      versionInfo: "v2",
      nonce: "c2",
      resources: [clusters[0]!, clusters[0]!],
    }));
    const dup = await one.next(byNonce("c2"));
    assert.match(dup.errorDetail!.message, /named twice/);
    assert.equal(dup.versionInfo, "v1");
    assert.equal(held(), clusters.length, "full state not applied from a NACKed response");

    // A message announced past the 256 MiB limit: that stream ends, nothing buffered.
    const huge = Buffer.alloc(5);
    huge.writeUInt32BE(300 * 1024 * 1024, 1);
    one.s.write(huge);
    const two = await stream(1);
    const again = await two.next((r) => r.typeUrl === CLUSTER);
    assert.equal(again.node?.id, "node-a", "node again on the new stream");
    assert.equal(again.responseNonce, "", "nonces are forgotten");
    assert.equal(again.versionInfo, "v1", "the last accepted version is resent");
    assert.equal(held(), clusters.length);

    // Half a message, then the stream ends: nothing of it applies; a third stream follows.
    const full = response({ typeUrl: CLUSTER, versionInfo: "v3", nonce: "c3", resources: [] });
    two.s.end(full.subarray(0, 12));
    const three = await stream(2);
    const third = await three.next((r) => r.typeUrl === CLUSTER);
    assert.equal(third.versionInfo, "v1");
    assert.equal(
      held(),
      clusters.length,
      "an empty full state that never fully came removes nothing",
    );
  } finally {
    await client.close();
    for (const s of sessions) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    restore();
  }
});
