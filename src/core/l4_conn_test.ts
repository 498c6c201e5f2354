import assert from "node:assert/strict";
import * as net from "node:net";
import { ConnTable } from "./l4_conn.ts";
import { emptyInfo } from "./l4_telemetry.ts";

Deno.test("L4Conn.serve: a handler reads the socket itself; one record with the socket's byte counts", async () => {
  const table = new ConnTable(() => ({ maxConnections: 10, idleMs: 0 }));
  const finished: [number, number][] = [];
  const served = new Promise<void>((resolve) => {
    const server = net.createServer({ pauseOnConnect: true }, (sock) => {
      const conn = table.create(emptyInfo("outbound", "127.0.0.1:1", "127.0.0.1:2"), sock)!;
      conn.serve((down) =>
        new Promise<void>((done) => {
          // An echo in place of the HTTP proxy: reads and writes the downstream directly.
          down.on("data", (c: Uint8Array) => down.write(c));
          down.on("end", () => down.end(() => done()));
        })
      );
      table.waitEmpty(5000).then(() => {
        finished.push([conn.bytesRecv, conn.bytesSent]);
        server.close(() => resolve());
      });
    });
    server.listen(0, "127.0.0.1", () => {
      const c = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1", () => {
        c.end("x".repeat(5000));
      });
      c.on("data", () => {});
    });
  });
  await served;
  assert.deepEqual(finished, [[5000, 5000]]);
  assert.equal(table.size, 0);
  table.closeAll("drained"); // stops the idle sweep
});
