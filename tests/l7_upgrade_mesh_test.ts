/**
 * A WebSocket across two weft nodes: client → node A (outbound L7) → HBONE (mTLS, HTTP/2
 * CONNECT) → node B (inbound L7, an Istio AuthorizationPolicy) → a raw WebSocket workload
 * (tests/support/ws_raw.ts). The upgrade request passes both filter chains, a denied path gets
 * 403 without an upgrade, frames are echoed both ways after the 101, and the tunnelled bytes are
 * counted in the connection's L4 record.
 */
import { Buffer } from "node:buffer";
import { assert, assertEquals } from "./support/assert.ts";
import { loopbackBlock, onDenoAndBun } from "./support/weft_proc.ts";
import {
  DENY_ADMIN_YAML,
  nodeAConfig,
  nodeBConfig,
  withNodesAB,
  writeIstio,
} from "./support/two_nodes.ts";
import { metricSum, scrape } from "./support/mesh.ts";
import { connect, field, rawUpstream, wsAccept, wsFrame } from "./support/ws_raw.ts";

const PORT = 18080;
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";

async function webSocketAcrossNodes(runtime: string | undefined): Promise<void> {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-ws-" });
  const up = await rawUpstream(ip(3), PORT);
  const service = {
    name: "ws",
    namespace: "default",
    ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
    endpoints: [{ workload: "ws", namespace: "default", serviceAccount: "ws", address: ip(3) }],
  };
  const nodeB = nodeBConfig(dir, [
    { name: "ws", namespace: "default", serviceAccount: "ws", address: ip(3) },
  ], [service]);
  await writeIstio(dir, {
    "deny.yaml": DENY_ADMIN_YAML,
  });
  const nodeA = nodeAConfig(dir, ip, [{ ...service, vips: [ip(100)] }]);
  try {
    await withNodesAB(dir, nodeA, nodeB, { timeoutMs: 60_000, runtime }, async (a) => {
      const req = (path: string) =>
        `GET ${path} HTTP/1.1\r\nHost: ws\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n\r\n`;
      // Denied on node B: 403, nothing reaches the workload.
      const d = await connect(80, ip(100));
      d.sock.write(req("/admin/ws"));
      const denied = (await d.response())!;
      assert(denied[0].startsWith("HTTP/1.1 403 "), denied[0]);
      assertEquals(up.heads.length, 0);
      d.sock.destroy();
      // Allowed: 101, then frames both ways, then the close handshake and FIN.
      const c = await connect(80, ip(100));
      try {
        c.sock.write(req("/ws/chat"));
        const head = await c.head();
        assert(head?.startsWith("HTTP/1.1 101 "), head);
        assertEquals(field(head!, "sec-websocket-accept"), wsAccept(KEY));
        assertEquals(field(up.heads[0]!, "upgrade"), "websocket");
        const big = Buffer.alloc(100_000, 0x62);
        c.sock.write(wsFrame(1, Buffer.from("hello"), true));
        c.sock.write(wsFrame(2, big, true));
        assertEquals(await c.frame(), [1, Buffer.from("echo:hello")]);
        const f = await c.frame();
        assert(f?.[0] === 2 && f[1].equals(big), "the 100 000-byte frame came back whole");
        c.sock.write(wsFrame(8, Buffer.from([0x03, 0xe8]), true));
        assertEquals(await c.frame(), [8, Buffer.from([0x03, 0xe8])]);
        await c.until(() => (c.ended ? true : undefined));
      } finally {
        c.sock.destroy();
      }
      // The tunnelled bytes are in node A's L4 record of the connection (once it is closed).
      let received = 0;
      for (let i = 0; i < 50 && received < 100_000; i++) {
        received = metricSum(await scrape(a), "istio_tcp_received_bytes_total");
        if (received < 100_000) await new Promise((r) => setTimeout(r, 100));
      }
      assert(received >= 100_000, `node A counted ${received} bytes received`);
    });
  } finally {
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
}

for (
  const t of onDenoAndBun(
    (rt) =>
      `l7 (${rt} nodes): a WebSocket across two weft nodes over HBONE, with authorization on the way`,
    webSocketAcrossNodes,
  )
) Deno.test(t);
