/**
 * A minimal SotW ADS server (gRPC over h2c on loopback) that serves a fixed set of resources:
 * each type's resources (the requested names, or all) once per subscription change, and records
 * every NACK. For tests that need an xDS server sending what weft's control plane does not write.
 */
import http2 from "node:http2";
import { Buffer } from "node:buffer";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Any } from "@bufbuild/protobuf/wkt";
import { DiscoveryRequestSchema, DiscoveryResponseSchema } from "../../src/xds/proto.ts";
import { ADS_SOTW_PATH } from "../../src/xds/grpc_transport.ts";

export interface StaticAds {
  /** "127.0.0.1:<port>" */
  readonly address: string;
  /** NACK messages received, in order. */
  readonly nacks: string[];
  close(): Promise<void>;
}

function frame(bytes: Uint8Array): Buffer {
  const b = Buffer.alloc(5 + bytes.length);
  b.writeUInt32BE(bytes.length, 1);
  b.set(bytes, 5);
  return b;
}

/** `resources`: type URL → resource name → Any. */
export async function startStaticAds(
  resources: ReadonlyMap<string, ReadonlyMap<string, Any>>,
): Promise<StaticAds> {
  const nacks: string[] = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createServer();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
    s.on("error", () => {});
  });
  server.on("stream", (raw, headers) => {
    const s = raw as http2.ServerHttp2Stream;
    s.on("error", () => {});
    if (headers[":path"] !== ADS_SOTW_PATH) {
      s.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, {
        endStream: true,
      });
      return;
    }
    s.respond({ ":status": 200, "content-type": "application/grpc" });
    const sent = new Map<string, string>();
    let nonce = 0;
    let buf = Buffer.alloc(0);
    s.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
        const len = buf.readUInt32BE(1);
        const r = fromBinary(DiscoveryRequestSchema, buf.subarray(5, 5 + len));
        buf = buf.subarray(5 + len);
        if (r.errorDetail) nacks.push(r.errorDetail.message);
        const all = resources.get(r.typeUrl) ?? new Map<string, Any>();
        const names = r.resourceNames.length ? [...r.resourceNames].sort() : [...all.keys()];
        const key = names.join("\n");
        if (sent.get(r.typeUrl) === key) continue; // an ACK or NACK of what was sent
        sent.set(r.typeUrl, key);
        const out = names.map((n) => all.get(n)).filter((a): a is Any => a !== undefined);
        s.write(frame(toBinary(
          DiscoveryResponseSchema,
          create(DiscoveryResponseSchema, {
            typeUrl: r.typeUrl,
            versionInfo: "1",
            nonce: String(++nonce),
            resources: out,
          }),
        )));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    address: `127.0.0.1:${port}`,
    nacks,
    async close() {
      for (const s of sessions) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
