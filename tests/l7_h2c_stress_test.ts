/**
 * h2c stress through an L7 service (weft's HttpProxy with a filter chain), on Deno and on Bun:
 * h2load with thousands of streams, an h2load run killed mid-flight (connections torn with
 * streams open), and a HEADERS+RST_STREAM flood. The process must stay alive, keep answering,
 * and its RSS stay bounded. Skips without h2load (nghttp2-client). Bounded: ~20k requests.
 */
import { Buffer } from "node:buffer";
import * as net from "node:net";
import { encodeHeaders } from "../src/core/h2/hpack.ts";
import {
  ErrorCode,
  headersFrames,
  PREFACE,
  rstStreamFrame,
  settingsFrame,
} from "../src/core/h2/frames.ts";
import { assert } from "./support/assert.ts";
import { ROOT } from "./support/weft_proc.ts";

const HAVE_H2LOAD = new Deno.Command("sh", { args: ["-c", "command -v h2load"] }).outputSync()
  .success;
const BUN = ["bun", `${ROOT}/.weft/tools/node_modules/.bin/bun`].find((b) =>
  new Deno.Command("sh", { args: ["-c", `command -v ${b}`] }).outputSync().success
);
/**
 * Memory bounds for one L7 process: growth after the warm-up load (the killed run and the reset
 * flood open well over 100 000 more streams, so leaked per-stream state would exceed it) and an
 * absolute ceiling. The warm level itself depends on the runtime and the box (Deno 200–255 MB).
 */
const MAX_GROWTH_MB = 120;
const MAX_RSS_MB = 400;

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return Number(m?.[1] ?? 0) / 1024;
}

async function startNode(
  runtime: "deno" | string,
): Promise<{ url: string; child: Deno.ChildProcess }> {
  const script = `${ROOT}/tests/support/l7_h2c_node.ts`;
  const child = new Deno.Command(runtime === "deno" ? Deno.execPath() : runtime, {
    args: runtime === "deno" ? ["run", "-A", script] : [script],
    stdout: "piped",
    stderr: "null",
    env: { WEFT_LOG: "warn" },
  }).spawn();
  const reader = child.stdout.getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const r = await reader.read();
    if (r.done) throw new Error("L7 node exited before ready");
    buf += new TextDecoder().decode(r.value);
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return { url: JSON.parse(buf.split("\n")[0]!).ready, child };
}

async function h2load(url: string, args: string[], killAfterMs?: number): Promise<string> {
  const child = new Deno.Command("h2load", {
    args: [...args, url],
    stdout: "piped",
    stderr: "null",
  })
    .spawn();
  const timer = killAfterMs ? setTimeout(() => child.kill("SIGKILL"), killAfterMs) : undefined;
  const out = await child.output();
  clearTimeout(timer);
  return new TextDecoder().decode(out.stdout);
}

/** Plain h2c: open `n` streams, reset each at once, in batches. */
async function resetFlood(port: number, n: number): Promise<void> {
  const sock = net.connect(port, "127.0.0.1");
  sock.on("error", () => {});
  await new Promise((r) => sock.once("connect", r));
  const closed = new Promise<void>((r) => sock.once("close", () => r()));
  sock.on("data", () => {});
  sock.write(PREFACE);
  sock.write(settingsFrame(new Map()));
  const block = encodeHeaders([[":method", "GET"], [":scheme", "http"], [":authority", "x"], [
    ":path",
    "/",
  ]]);
  for (let id = 1; id < 2 * n; id += 100) {
    const batch: Uint8Array[] = [];
    for (let i = id; i < id + 100; i += 2) {
      batch.push(headersFrames(i, block, true, 16384), rstStreamFrame(i, ErrorCode.CANCEL));
    }
    if (!sock.write(Buffer.concat(batch))) {
      await Promise.race([new Promise((r) => sock.once("drain", r)), closed]);
    }
    if (sock.destroyed) break;
  }
  sock.destroy();
  await closed;
}

for (const runtime of ["deno", BUN ?? ""]) {
  Deno.test({
    name: `h2c stress through an L7 service on ${
      runtime || "bun"
    }: alive, answering, memory bounded`,
    ignore: !HAVE_H2LOAD || !runtime,
    async fn() {
      const { url, child } = await startNode(runtime);
      try {
        const pid = child.pid;
        const port = Number(new URL(url).port);
        const first = await h2load(url, ["-n", "20000", "-c", "16", "-m", "64"]);
        assert(/20000 succeeded/.test(first) || /requests: 20000 total/.test(first), first);
        const warm = rssMb(pid);
        await h2load(url, ["-n", "200000", "-c", "32", "-m", "100"], 1500); // killed mid-flight
        await resetFlood(port, 5000);
        const exited = await Promise.race([child.status, new Promise((r) => setTimeout(r, 50))]);
        assert(!exited, "the L7 node must survive the load");
        const after = await h2load(url, ["-n", "200", "-c", "2", "-m", "10"]);
        assert(/200 succeeded/.test(after), `still answering after the load:\n${after}`);
        const rss = rssMb(pid);
        assert(
          rss < MAX_RSS_MB && rss - warm < MAX_GROWTH_MB,
          `RSS ${rss.toFixed(1)} MB after the load, ${warm.toFixed(1)} MB after the warm-up ` +
            `(bounds: ${MAX_RSS_MB} MB, growth ${MAX_GROWTH_MB} MB)`,
        );
        // deno-lint-ignore no-console -- the figures are the point of a stress test
        console.error(
          `h2c stress on ${runtime}: RSS warm ${warm.toFixed(1)}, after ${rss.toFixed(1)} MB; ${
            /finished in [^\n]*/.exec(first)?.[0]
          }`,
        );
      } finally {
        child.kill("SIGKILL");
        await child.status;
      }
    },
  });
}
