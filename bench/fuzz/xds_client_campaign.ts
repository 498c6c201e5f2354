// deno-lint-ignore-file no-console
/**
 * The live fuzzer's xDS client campaign (`--target xds-client`): the driver is a hostile control
 * plane (node:http2, h2c on loopback, SotW ADS) for a real `weft run` node (nice -n 19) named
 * node-a of the test mesh. To each request it answers, at random: the real resources of that type
 * (from the control plane's own buildNode), the same with protobuf bytes of one resource mutated,
 * a whole mutated DiscoveryResponse, a type never subscribed or a garbage type URL, duplicate
 * names, a gRPC length prefix that lies (±1, huge, compressed flag), or the stream reset or ended
 * mid-message. The node must NACK (or end only that stream), keep serving its admin port and its
 * last good state, and log nothing unhandled.
 */
import http2 from "node:http2";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { stringify } from "yaml";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { mutate, prng } from "../../tools/fuzz/engine.ts";
import { DiscoveryRequestSchema, DiscoveryResponseSchema } from "../../src/xds/proto.ts";
import { buildNode } from "../../src/xds/control_plane/build.ts";
import { parseMesh } from "../../src/xds/control_plane/mesh.ts";
import { compactMeshYaml } from "../../src/xds/_test_fixtures.ts";
import { meshManifestsFromYaml } from "../../tests/support/istio_manifests.ts";
import { UNHANDLED_ERROR_MSG } from "../../src/core/mod.ts";
import { createTestPki } from "../../tests/support/test_ca.ts";
import { loopbackBlock, startWeft, weftCommand } from "../../tests/support/weft_proc.ts";

type Rand = () => number;
const int = (rand: Rand, n: number) => Math.floor(rand() * n);
const pick = <T>(rand: Rand, a: readonly T[]): T => a[int(rand, a.length)]!;

function grpc(b: Uint8Array, len = b.length, flag = 0): Buffer {
  const out = Buffer.alloc(5 + b.length);
  out[0] = flag;
  out.writeUInt32BE(len >>> 0, 1);
  out.set(b, 5);
  return out;
}

export async function runXdsClientCampaign(
  opts: { seconds: number; seed: number; bun: string | undefined },
): Promise<number> {
  const rand = prng(opts.seed);
  const ip = loopbackBlock();
  // The test mesh moved onto this run's loopback block (no fixed addresses).
  const block = ip(0).replace(/\.0$/, "");
  const compact = compactMeshYaml(10).replaceAll("127.0.2.", `${block}.`).replaceAll(
    "127.0.3.",
    `${block}.3`,
  ).replaceAll("127.10.0.", `${block}.10`);
  const built = buildNode(parseMesh(meshManifestsFromYaml(compact)), "node-a");
  const byType = new Map([...built].map(([t, m]) => [t, [...m.values()].map((b) => b.any)]));
  const stats = { responses: 0, mutated: 0, nacks: 0, acks: 0, streams: 0, resets: 0 };
  let version = 0;
  const answer = (s: http2.ServerHttp2Stream, req: { typeUrl: string }): void => {
    const typeUrl = req.typeUrl;
    const real = byType.get(typeUrl) ?? [];
    const nonce = `n${++version}`;
    const msg = (init: Record<string, unknown>) =>
      toBinary(DiscoveryResponseSchema, create(DiscoveryResponseSchema, init));
    const base = { typeUrl, versionInfo: `v${version}`, nonce, resources: real };
    stats.responses++;
    const r = rand();
    if (r < 0.3) return void s.write(grpc(msg(base)));
    stats.mutated++;
    if (r < 0.55 && real.length) {
      const i = int(rand, real.length);
      const resources = real.map((a, k) =>
        k === i ? { ...a, value: mutate(a.value, rand, [a.value], [], 64 * 1024) } : a
      );
      return void s.write(grpc(msg({ ...base, resources })));
    }
    if (r < 0.7) {
      const b = msg(base);
      return void s.write(grpc(mutate(b, rand, [b], [], 256 * 1024)));
    }
    if (r < 0.78) {
      const t = pick(rand, [...byType.keys(), "type.googleapis.com/evil.Type", ""]);
      return void s.write(grpc(msg({ ...base, typeUrl: t })));
    }
    if (r < 0.84 && real.length) {
      return void s.write(grpc(msg({ ...base, resources: [real[0]!, real[0]!] })));
    }
    const b = msg(base);
    if (r < 0.92) {
      const len = pick(rand, [b.length + 1, b.length - 1, 0x7fffffff, 0xffffffff, 0]);
      return void s.write(grpc(b, len, pick(rand, [0, 1, 7])));
    }
    stats.resets++;
    s.write(grpc(b).subarray(0, 5 + int(rand, b.length)));
    if (rand() < 0.5) s.close(http2.constants.NGHTTP2_CANCEL);
    else s.end();
  };
  const server = http2.createServer();
  server.on("sessionError", () => {});
  server.on("session", (ss) => ss.on("error", () => {}));
  server.on("stream", (raw) => {
    const s = raw as http2.ServerHttp2Stream;
    stats.streams++;
    s.on("error", () => {});
    s.respond({ ":status": 200, "content-type": "application/grpc" });
    let buf = Buffer.alloc(0);
    s.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
        const len = buf.readUInt32BE(1);
        const req = fromBinary(DiscoveryRequestSchema, buf.subarray(5, 5 + len));
        buf = buf.subarray(5 + len);
        if (req.responseNonce) {
          if (req.errorDetail) stats.nacks++;
          else stats.acks++;
        }
        if (!s.destroyed && !s.closed) answer(s, req);
      }
    });
  });
  const cpHost = ip(9);
  await new Promise<void>((r) => server.listen(15010, cpHost, () => r()));
  const pki = await createTestPki();
  const cfgPath = join(pki.dir, "weft.yaml");
  await Deno.writeTextFile(
    cfgPath,
    stringify({
      node: { name: "node-a" },
      ca: { mode: "files", certFile: pki.rootsPath, keyFile: pki.caKeyPath },
      listeners: {
        admin: "127.0.0.1:0",
        metrics: "127.0.0.1:0",
        readiness: "127.0.0.1:0",
        socks5: "",
      },
      xds: { address: `${cpHost}:15010`, mode: "sotw" },
    }),
  );
  const command = (argv: readonly string[]): [string, string[]] => {
    const [prog, args] = weftCommand(argv, opts.bun);
    return ["nice", ["-n", "19", prog, ...args]];
  };
  const proc = await startWeft(["run", "--config", cfgPath], { command, timeoutMs: 60_000 });
  const rssOf = () => {
    try {
      const st = Deno.readTextFileSync(`/proc/${proc.child.pid}/status`);
      return Number(/VmRSS:\s+(\d+)/.exec(st)?.[1] ?? 0) * 1024;
    } catch {
      return 0;
    }
  };
  const findings: string[] = [];
  const exited = { done: false };
  proc.exited.then(() => (exited.done = true));
  const serving = async (): Promise<string | undefined> => {
    const t0 = performance.now();
    try {
      const r = await fetch(`http://${proc.ready.admin}/config_dump`, {
        signal: AbortSignal.timeout(1000),
      });
      await r.body?.cancel();
      return r.status === 200 ? undefined : `config_dump answered ${r.status}`;
    } catch (e) {
      return `config_dump failed after ${Math.round(performance.now() - t0)} ms: ${e}`;
    }
  };
  const rss0 = rssOf();
  const end = performance.now() + opts.seconds * 1000;
  try {
    while (performance.now() < end && !exited.done) {
      await new Promise((r) => setTimeout(r, 5000));
      const p = await serving();
      if (p) findings.push(p);
      console.log(
        `  xds-client ${stats.responses} responses (${stats.mutated} hostile), ${stats.nacks} NACKs, ` +
          `${stats.acks} ACKs, ${stats.streams} streams, rss ${(rssOf() / 1048576).toFixed(1)} MB`,
      );
    }
  } finally {
    const rss1 = rssOf();
    const crashed = exited.done;
    if (crashed) findings.push("weft exited");
    const stray = proc.lines.filter((l) => l.msg === UNHANDLED_ERROR_MSG).map((l) =>
      JSON.stringify(l)
    );
    for (const line of proc.stderrText().split("\n")) {
      if (line.trim() && !line.startsWith("{")) stray.push(line);
    }
    findings.push(...new Set(stray));
    await proc.stop().catch(() => {});
    for (const ss of [server]) ss.close();
    await pki.dispose();
    console.log(
      `xds-client ${opts.bun ? "bun" : "deno"} ${opts.seconds}s seed ${opts.seed}: ` +
        `${stats.responses} responses (${stats.mutated} hostile), ${stats.nacks} NACKs, ` +
        `${stats.acks} ACKs, ${stats.streams} streams, crashes ${crashed ? 1 : 0}, ` +
        `findings ${findings.length}, rss ${(rss0 / 1048576).toFixed(1)} → ${
          (rss1 / 1048576).toFixed(1)
        } MB`,
    );
    for (const f of findings) console.log(`  FINDING: ${f.slice(0, 600)}`);
  }
  return findings.length;
}
