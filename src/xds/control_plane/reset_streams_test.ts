/**
 * A peer that resets its gRPC streams in the same packet that opens them, against the control
 * plane's real gRPC server (bench/fuzz.ts --target xds found it): on Deno, node:http2 announces
 * such a stream already destroyed, and grpc-js answered an unknown method (or a bad content-type)
 * with `stream.respond`, which threw ERR_HTTP2_INVALID_STREAM out of the 'stream' event.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { encodeHeaders } from "../../core/h2/hpack.ts";
import {
  frame,
  FrameType,
  headersFrames,
  PREFACE,
  rstStreamFrame,
  settingsFrame,
} from "../../core/h2/frames.ts";
import { setLogSink } from "../../core/mod.ts";
import { meshYaml } from "../_test_fixtures.ts";
import { ADS_SOTW_PATH } from "../grpc_transport.ts";
import { startControlPlane } from "./mod.ts";
import { loopbackBlock } from "../../../tests/support/weft_proc.ts";

Deno.test("control plane: streams reset as they open (unknown method, bad content-type, ADS) end only themselves", async () => {
  const restore = setLogSink(() => {});
  const dir = await Deno.makeTempDir({ prefix: "weft-cp-rst-" });
  const configPath = join(dir, "mesh.yaml");
  await Deno.writeTextFile(configPath, meshYaml(10));
  const cp = await startControlPlane({ configPath, address: `${loopbackBlock()(1)}:0` });
  const [host, port] = [
    cp.address.slice(0, cp.address.lastIndexOf(":")),
    cp.address.split(":").pop(),
  ];
  try {
    const head = (id: number, path: string, type: string): Uint8Array =>
      headersFrames(
        id,
        encodeHeaders([
          [":method", "POST"],
          [":scheme", "http"],
          [":path", path],
          [":authority", cp.address],
          ["content-type", type],
          ["te", "trailers"],
        ]),
        false,
        16384,
      );
    for (let round = 0; round < 3; round++) {
      const s = net.connect({ host, port: Number(port) });
      s.on("error", () => {});
      await new Promise((r) => s.once("connect", r));
      const parts: Uint8Array[] = [PREFACE, settingsFrame(new Map())];
      for (let i = 0; i < 30; i++) {
        const id = 1 + 2 * i;
        const [path, type] = [
          ["/envoy.service.discovery.v3.Nope/Call", "application/grpc"],
          [ADS_SOTW_PATH, "text/plain"],
          [ADS_SOTW_PATH, "application/grpc"],
        ][i % 3]!;
        parts.push(head(id, path!, type!), rstStreamFrame(id, 8));
      }
      // What the fuzzer sent: a stream opened, then a connection error (SETTINGS on a stream)
      // in the same packet, so the session is torn down before the stream is announced.
      parts.push(head(61, "/envoy.service.discovery.v3.Nope/Call", "application/grpc"));
      parts.push(frame(FrameType.SETTINGS, 0, 61, new Uint8Array(6)));
      parts.push(frame(FrameType.PING, 0, 0, new Uint8Array(8)));
      s.write(Buffer.concat(parts));
      await new Promise((r) => setTimeout(r, 200));
      s.destroy();
    }
    // The control plane still serves: a fresh session gets an answer to a plain request.
    const s = net.connect({ host, port: Number(port) });
    s.on("error", () => {});
    await new Promise((r) => s.once("connect", r));
    const got = new Promise<number>((r) => s.once("data", (c: Uint8Array) => r(c.length)));
    s.write(Buffer.concat([PREFACE, settingsFrame(new Map())]));
    assert.ok((await got) > 0);
    s.destroy();
  } finally {
    await cp.close();
    await Deno.remove(dir, { recursive: true });
    restore();
  }
});
