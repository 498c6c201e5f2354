/**
 * The live fuzzer's xDS target: a real `weft control-plane` process (plaintext h2c gRPC on a
 * loopback address, `nice -n 19`) serving the test mesh, attacked with HTTP/2 frame scripts that
 * carry ADS streams (SotW and delta): valid DiscoveryRequests for every type, then mutated —
 * protobuf bytes flipped or spliced, gRPC length prefixes off by ±1, huge or with the compressed
 * flag, several messages in one DATA frame, streams opened and abandoned — plus the frame-level
 * mutations of h2_gen.ts. The legitimate check: a real ADS stream gets its clusters within 1 s.
 */
import http2 from "node:http2";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { encodeHeaders } from "../../src/core/h2/hpack.ts";
import { DeltaDiscoveryRequestSchema, DiscoveryRequestSchema } from "../../src/xds/proto.ts";
import { ADS_DELTA_PATH, ADS_SOTW_PATH } from "../../src/xds/grpc_transport.ts";
import { meshYaml } from "../../src/xds/_test_fixtures.ts";
import { CLUSTER, LISTENER } from "../../src/xds/type_urls.ts";
import { UNHANDLED_ERROR_MSG } from "../../src/core/mod.ts";
import { mutate } from "../../tools/fuzz/engine.ts";
import { loopbackBlock, startWeft, weftCommand } from "../../tests/support/weft_proc.ts";
import { type Frame, h2Input } from "./h2_gen.ts";
import type { LiveTarget } from "./targets.ts";
import type { Subject } from "./node.ts";

const TYPES = [
  CLUSTER,
  LISTENER,
  "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
  "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
  "type.googleapis.com/istio.workload.Address",
  "type.googleapis.com/istio.security.Authorization",
  "type.googleapis.com/garbage",
];

const grpcFrame = (b: Uint8Array, len = b.length, flag = 0): Uint8Array => {
  const out = new Uint8Array(5 + b.length);
  out[0] = flag;
  new DataView(out.buffer).setUint32(1, len >>> 0);
  out.set(b, 5);
  return out;
};

function requests(): { sotw: Uint8Array[]; delta: Uint8Array[] } {
  const node = { id: "node-a", cluster: "weft", metadata: undefined };
  return {
    sotw: TYPES.map((typeUrl) =>
      toBinary(
        DiscoveryRequestSchema,
        create(DiscoveryRequestSchema, { node, typeUrl, resourceNames: [], versionInfo: "" }),
      )
    ),
    delta: TYPES.map((typeUrl) =>
      toBinary(
        DeltaDiscoveryRequestSchema,
        create(DeltaDiscoveryRequestSchema, {
          node,
          typeUrl,
          resourceNamesSubscribe: ["*"],
          initialResourceVersions: { a: "1" },
        }),
      )
    ),
  };
}

export interface XdsSubject extends Subject {
  readonly target: LiveTarget;
  stop(): Promise<void>;
}

export async function startXdsSubject(bun: string | undefined): Promise<XdsSubject> {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-fuzz-xds-" });
  const meshPath = join(dir, "mesh.yaml");
  await Deno.writeTextFile(meshPath, meshYaml(10));
  const address = `${ip(9)}:15010`;
  const command = (argv: readonly string[]): [string, string[]] => {
    const [prog, args] = weftCommand(argv, bun);
    return ["nice", ["-n", "19", prog, ...args]];
  };
  const proc = await startWeft(
    ["control-plane", "--config", meshPath, "--address", address, "--ca-dir", join(dir, "ca")],
    { command, timeoutMs: 60_000 },
  );
  const { sotw, delta } = requests();
  const headers = (id: number, path: string): Frame => ({
    type: 1,
    flags: 4,
    id,
    payload: encodeHeaders([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", path],
      [":authority", address],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
    ]),
  });
  const dataFrame = (id: number, b: Uint8Array, end = false): Frame => ({
    type: 0,
    flags: end ? 1 : 0,
    id,
    payload: b,
  });
  const S0: Frame = { type: 4, flags: 0, id: 0, payload: new Uint8Array(0) };
  const seeds: Frame[][] = [
    [S0, headers(1, ADS_SOTW_PATH), ...sotw.map((r) => dataFrame(1, grpcFrame(r)))],
    [S0, headers(1, ADS_DELTA_PATH), ...delta.map((r) => dataFrame(1, grpcFrame(r)))],
    [
      S0,
      headers(1, ADS_SOTW_PATH),
      headers(3, ADS_DELTA_PATH),
      dataFrame(3, grpcFrame(delta[0]!)),
      dataFrame(1, grpcFrame(sotw[0]!), true),
      { type: 3, flags: 0, id: 3, payload: Uint8Array.of(0, 0, 0, 8) },
    ],
    [S0, headers(1, "/envoy.service.discovery.v3.Unknown/Call"), dataFrame(1, grpcFrame(sotw[1]!))],
  ];
  const pick = <T>(rand: () => number, a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
  const target: LiveTarget = {
    name: "xds",
    next: (rand) => {
      const transport = { kind: "tcp" as const, host: ip(9), port: 15010 };
      if (rand() < 0.5) return { transport, pieces: [h2Input(seeds, rand)] };
      // A well-formed stream carrying mutated messages and length prefixes.
      const d = rand() < 0.5;
      const msgs = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => {
        const m = mutate(pick(rand, d ? delta : sotw), rand, d ? delta : sotw, [], 64 * 1024);
        const len = pick(rand, [
          m.length,
          m.length,
          m.length + 1,
          m.length - 1,
          0x7fffffff,
          0xffffffff,
          0,
        ]);
        return grpcFrame(m, len, pick(rand, [0, 0, 0, 1, 2]));
      });
      const body = rand() < 0.5 ? [msgs.reduce((a, b) => new Uint8Array([...a, ...b]))] : msgs;
      const f: Frame[] = [
        S0,
        headers(1, d ? ADS_DELTA_PATH : ADS_SOTW_PATH),
        ...body.map((b) => dataFrame(1, b)),
      ];
      return { transport, pieces: [h2Input([f], () => 0.99)] };
    },
  };
  const pid = proc.child.pid;
  const exited = { done: false };
  proc.exited.then(() => (exited.done = true));
  return {
    target,
    alive: () => !exited.done,
    rssBytes: () => {
      try {
        const s = Deno.readTextFileSync(`/proc/${pid}/status`);
        return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0) * 1024;
      } catch {
        return 0;
      }
    },
    suspicious: () => {
      const bad = proc.lines.filter((l) => l.msg === UNHANDLED_ERROR_MSG).map((l) =>
        JSON.stringify(l)
      );
      for (const line of proc.stderrText().split("\n")) {
        if (line.trim() && !line.startsWith("{")) bad.push(line);
      }
      return [...new Set(bad)];
    },
    legit: (timeoutMs = 1000) => legitAds(`http://${address}`, sotw[0]!, timeoutMs),
    stop: async () => {
      try {
        await proc.stop();
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  };
}

/** One real SotW ADS stream asking for clusters: ms until the first response message. */
function legitAds(url: string, req: Uint8Array, timeoutMs: number): Promise<number | string> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const s = http2.connect(url);
    s.on("error", (e) => finish(`session error: ${e.message}`));
    const timer = setTimeout(() => finish(`no response within ${timeoutMs} ms`), timeoutMs);
    const finish = (r: number | string) => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const st = s.request({
      ":method": "POST",
      ":path": ADS_SOTW_PATH,
      "content-type": "application/grpc",
      te: "trailers",
    });
    st.on("error", (e) => finish(`stream error: ${e.message}`));
    st.on("data", () => finish(Math.round(performance.now() - t0)));
    st.write(grpcFrame(req));
  });
}
