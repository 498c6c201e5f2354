/**
 * The L4 path on Bun's native sockets (service VIP listener on node A, dial to the workload on
 * node B) against hostile peers: a client reset mid-stream, a workload reset mid-stream, a
 * half-close from the workload's side, and a client that stops reading while its workload keeps
 * sending (backpressure through both native sides and the HBONE windows: both nodes' RSS bounded,
 * another connection served meanwhile). Skipped without bun.
 */
import { connect, type Socket } from "node:net";
import { assert, assertEquals } from "./support/assert.ts";
import { closed, metricSum, roundTrip, scrape, startMesh } from "./support/mesh.ts";
import { bunPath } from "./support/weft_proc.ts";
import { within } from "./support/within.ts";

const BUN = bunPath();

async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const until = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > until) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return Number(m?.[1] ?? 0) >> 10;
}

/** The workload-side socket of the newest connection (the echo's sockets, in accept order). */
const newest = (set: Set<Socket>): Socket => [...set].at(-1)!;

Deno.test({
  name: "bun native L4 against hostile peers: resets both ways, a workload half-close, a " +
    "client that stops reading (RSS bounded, others served)",
  ignore: BUN === undefined,
  fn: async () => {
    const m = await startMesh({ runtime: BUN! });
    const small = new Uint8Array(64 * 1024).fill(7);
    try {
      // A client reset mid-stream: the workload's connection closes.
      const c1 = await m.dial();
      c1.on("error", () => {});
      await roundTrip(c1, small);
      c1.write(new Uint8Array(1 << 20));
      c1.resetAndDestroy();
      await waitFor(
        "the workload connection closed after a client reset",
        () => m.echo.sockets.size === 0,
      );

      // A workload reset mid-stream: the client's connection closes.
      const c2 = await m.dial();
      c2.on("error", () => {});
      await roundTrip(c2, small);
      newest(m.echo.sockets).resetAndDestroy();
      await closed(c2);

      // A workload half-close: its FIN reaches the client, whose direction stays open.
      const c3 = await new Promise<Socket>((resolve, reject) => {
        const c = connect({ host: m.vip, port: 80, localAddress: m.clientIp, allowHalfOpen: true });
        c.once("connect", () => resolve(c));
        c.once("error", reject);
      });
      await roundTrip(c3, small);
      const w3 = newest(m.echo.sockets);
      w3.unpipe(w3);
      let afterFin = 0;
      w3.on("data", (b: Uint8Array) => void (afterFin += b.length));
      w3.resume(); // unpipe left it paused
      const workloadEnd = new Promise<void>((r) => w3.once("end", () => r()));
      const clientEnd = new Promise<void>((r) => c3.once("end", () => r()));
      w3.end();
      await within(10_000, "the workload's FIN at the client", clientEnd);
      c3.end(small); // the client's direction is still open after the workload's FIN
      await within(10_000, "the client's FIN at the workload", workloadEnd);
      assertEquals(afterFin, small.length);
      await closed(c3);

      // A client that stops reading while it sends 64 MiB to the echo: writes stall (nothing
      // is buffered without bound on either node) and another connection is served meanwhile.
      const pids = [m.a.child.pid, m.b!.child.pid];
      const rss0 = pids.map(rssMiB);
      const c4 = await m.dial();
      c4.on("error", () => {});
      c4.pause();
      const piece = new Uint8Array(256 * 1024).fill(9);
      let written = 0;
      for (let i = 0; i < 256; i++) {
        written += piece.length;
        if (!c4.write(piece)) {
          const drained = await Promise.race([
            new Promise<boolean>((r) => c4.once("drain", () => r(true))),
            new Promise<boolean>((r) => setTimeout(() => r(false), 1_500)),
          ]);
          if (!drained) break; // stalled: backpressure reached the client
        }
      }
      assert(
        written < 64 << 20,
        `all ${written >> 20} MiB went through a client that reads nothing`,
      );
      const c5 = await m.dial();
      const big = new Uint8Array(4 << 20).fill(5);
      assertEquals((await roundTrip(c5, big, 20_000)).length, big.length);
      c5.end();
      await closed(c5);
      const rss1 = pids.map(rssMiB);
      // deno-lint-ignore no-console
      console.log(
        `stalled after ${written >> 20} MiB; RSS A ${rss0[0]} → ${rss1[0]} MiB, B ${rss0[1]} → ${
          rss1[1]
        } MiB`,
      );
      for (let i = 0; i < 2; i++) assert(rss1[i]! - rss0[i]! < 64, `RSS grew ${rss0} → ${rss1}`);
      c4.destroy();
      await waitFor("every workload connection closed", () => m.echo.sockets.size === 0);
      // Every connection of this test ended on both nodes (none left half-open by a reset).
      for (const [node, dir] of [[m.a, "outbound"], [m.b!, "inbound"]] as const) {
        let active = -1;
        for (let i = 0; i < 100 && active !== 0; i++) {
          if (i) await new Promise((r) => setTimeout(r, 100));
          active = metricSum(
            await scrape(node),
            "weft_l4_active_connections",
            `direction="${dir}"`,
          );
        }
        assertEquals(active, 0, `${dir} connections left active`);
      }
    } finally {
      await m.stop();
    }
  },
});
