/**
 * The L4 path on Bun's native sockets (the shipped runtime): node A's service VIP listener and
 * node B's dial to the workload are `Bun.listen`/`Bun.connect` sockets (src/core/plain_tcp.ts,
 * native_socket.ts) on both ends of the HBONE tunnel. Parallel bulk transfers (backpressure
 * through both native sides and the HTTP/2 windows), a client half-close (FIN through END_STREAM
 * to the workload and back), and the telemetry of each connection: byte counts in the access
 * records and istio_tcp_* series, and weft_l4_active_connections back to 0. Skipped without bun.
 */
import { connect, type Socket } from "node:net";
import { assert, assertEquals } from "./support/assert.ts";
import { closed, metricSum, roundTrip, scrape, startMesh } from "./support/mesh.ts";
import { bunPath } from "./support/weft_proc.ts";

const BUN = bunPath();

/** Resolves with everything the socket sent until its end (the peer's FIN). */
function readToEnd(s: Socket, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    const t = setTimeout(() => reject(new Error(`no end after ${n} bytes`)), timeoutMs);
    s.on("data", (c: Uint8Array) => void (n += c.length));
    s.once("end", () => {
      clearTimeout(t);
      resolve(n);
    });
    s.once("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

Deno.test({
  name: "bun native L4: parallel bulk echoes, half-close and per-connection telemetry",
  ignore: BUN === undefined,
  fn: async () => {
    const m = await startMesh({ runtime: BUN! });
    try {
      // 4 connections × 4 MiB at once: more than every buffer on the path holds.
      const bulk = new Uint8Array(4 << 20).map((_, i) => (i * 31) & 0xff);
      const socks = await Promise.all([0, 1, 2, 3].map(() => m.dial()));
      const echoed = await Promise.all(socks.map((s) => roundTrip(s, bulk, 30_000)));
      for (const e of echoed) assertEquals(e.length, bulk.length);
      for (const e of echoed) assert(e.every((b, i) => b === bulk[i]), "echo differs");
      for (const s of socks) s.end();
      await Promise.all(socks.map((s) => closed(s)));

      // Half-close: the client's FIN reaches the workload after its bytes; the echo's answer
      // and its own FIN come back on the still-open direction.
      const h = await new Promise<Socket>((resolve, reject) => {
        const c = connect({ host: m.vip, port: 80, localAddress: m.clientIp, allowHalfOpen: true });
        c.once("connect", () => resolve(c));
        c.once("error", reject);
      });
      const small = new TextEncoder().encode("half-close through native sockets\n".repeat(50));
      const got = readToEnd(h);
      h.end(small);
      assertEquals(await got, small.length);
      await closed(h);

      // Five connections recorded on each node, each with its own byte counts.
      const ins: Record<string, unknown>[] = [];
      for (let i = 0; i < 5; i++) {
        ins.push(
          await m.b!.waitFor((l) =>
            l.scope === "access" && l.direction === "inbound" && !ins.includes(l)
          ),
        );
      }
      const sizes = ins.map((r) => r.bytes_recv).sort((x, y) => Number(x) - Number(y));
      assertEquals(sizes, [small.length, ...Array(4).fill(bulk.length)]);
      for (const r of ins) assertEquals(r.bytes_sent, r.bytes_recv);
      const total = 4 * bulk.length + small.length;
      const a = await scrape(m.a);
      assertEquals(metricSum(a, "istio_tcp_connections_opened_total", 'reporter="source"'), 5);
      assertEquals(metricSum(a, "istio_tcp_connections_closed_total", 'reporter="source"'), 5);
      assertEquals(metricSum(a, "istio_tcp_received_bytes_total", 'reporter="source"'), total);
      assertEquals(metricSum(a, "istio_tcp_sent_bytes_total", 'reporter="source"'), total);
      assertEquals(metricSum(a, "weft_l4_active_connections", 'direction="outbound"'), 0);
      const b = await scrape(m.b!);
      assertEquals(metricSum(b, "istio_tcp_received_bytes_total", 'reporter="destination"'), total);
      assertEquals(metricSum(b, "weft_l4_active_connections", 'direction="inbound"'), 0);
    } finally {
      await m.stop();
    }
  },
});
