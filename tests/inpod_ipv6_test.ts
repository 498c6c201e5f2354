/**
 * In-pod capture of dual-stack pods, on real network namespaces and nftables, root only: IPv4 and
 * IPv6 traffic of unmodified pods both captured (one `inet` table), each with its original
 * destination (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST), carried over HBONE between the nodes
 * (an IPv6 `[addr]:port` authority to the server pod's IPv6 15008) and delivered keeping the
 * client's address of that family on Bun; the same on Deno (original destination from conntrack),
 * with the differences its socket API imposes. Skips with the reason where namespaces cannot be
 * made.
 */
import assert from "node:assert/strict";
import { leftoverNamespaces, topologyUnavailable } from "./support/topology.ts";
import { bunPath } from "./support/inpod_mesh.ts";
import { APP_PORT, type DualStackMesh, startDualStackMesh } from "./support/inpod_dual_stack.ts";

function ipv6Unavailable(): string | undefined {
  try {
    return Deno.readTextFileSync("/proc/sys/net/ipv6/conf/all/disable_ipv6").trim() === "0"
      ? undefined
      : "IPv6 is disabled on this machine";
  } catch {
    return "no IPv6 in this kernel";
  }
}

const why = topologyUnavailable() ?? ipv6Unavailable() ??
  (bunPath() ? undefined : "needs bun (deno task setup)");
// deno-lint-ignore no-console
if (why) console.warn(`inpod_ipv6_test: skipped: ${why}`);

async function run(m: DualStackMesh, ns: string, args: string[]): Promise<string> {
  return (await m.topo.run(ns, args)).stdout;
}

async function listeners(m: DualStackMesh, ns: string): Promise<string[]> {
  const out = await run(m, ns, ["ss", "-ltnH"]);
  return out.split("\n").filter((l) => l.trim()).map((l) => l.trim().split(/\s+/)[3]!);
}

async function poolKeys(m: DualStackMesh, node: number): Promise<string[]> {
  const dump = await run(m, m.topo.nodes[node - 1]!.ns, [
    "curl",
    "-s",
    "http://127.0.0.1:15000/config_dump",
  ]);
  return (JSON.parse(dump || "{}").proxy?.pool ?? []).map((p: { key: string }) => p.key);
}

/** Open connections on a node, from its admin endpoint. */
async function openConnections(m: DualStackMesh, node: number): Promise<number> {
  const dump = await run(m, m.topo.nodes[node - 1]!.ns, [
    "curl",
    "-s",
    "http://127.0.0.1:15000/config_dump",
  ]);
  return (JSON.parse(dump || "{}").connections ?? []).filter((c: { state: string }) =>
    c.state === "open"
  ).length;
}

async function until(cond: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function refused(m: DualStackMesh, node: number, reason: string): Promise<number> {
  const text = await run(m, m.topo.nodes[node - 1]!.ns, [
    "curl",
    "-s",
    "http://127.0.0.1:15020/metrics",
  ]);
  return text.split("\n").filter((l) =>
    l.startsWith("weft_l4_refused_total") && l.includes(`reason="${reason}"`)
  ).reduce((n, l) => n + Number(l.split(" ").pop()), 0);
}

/** On Bun: 15001/15006 per family, deliveries keep the client's address (IP_TRANSPARENT),
 * passthrough leaves from the pod. On Deno (no socket descriptor, see src/core/netns.ts): one
 * dual-stack listener, deliveries come from the pod's own address, passthrough from the node. */
async function dualStack(t: Deno.TestContext, runtime: "bun" | "deno"): Promise<void> {
  const m = await startDualStackMesh(runtime);
  const id = m.topo.id;
  const bun = runtime === "bun";
  try {
    const client = m.pod("client");
    const server = m.pod("server");
    const outsider = m.pod("outsider");
    const [a1, a2] = m.agents as [typeof m.agents[0], typeof m.agents[0]];
    // What the server's app sees as the client of a delivery from its pod.
    const seen = (family: 4 | 6): string =>
      bun ? (family === 4 ? client.ip : client.ip6) : (family === 4 ? server.ip : server.ip6);

    await t.step("ADD with both addresses: one inet table, listeners for each family", async () => {
      for (const n of [1, 2]) {
        const text = await run(m, m.topo.nodes[n - 1]!.ns, [
          "curl",
          "-s",
          "http://127.0.0.1:15020/metrics",
        ]);
        assert.match(text, new RegExp(`weft_build\\{[^}]*runtime="${runtime} `), "agent runtime");
      }
      for (const p of [client, server]) {
        const r = await m.cni(p, "ADD");
        assert.equal(r.code, 0, r.stdout);
        assert.match(await run(m, p.ns, ["nft", "list", "tables"]), /table inet weft_inpod/);
        assert.match(await run(m, p.ns, ["ip", "-6", "rule", "list"]), /lookup 133/);
        assert.match(await run(m, p.ns, ["ip", "-4", "rule", "list"]), /lookup 133/);
        const ls = await listeners(m, p.ns);
        const capture = bun
          ? ["0.0.0.0:15001", "[::]:15001", "0.0.0.0:15006", "[::]:15006"]
          : ["*:15001", "*:15006"];
        for (const l of capture) assert.ok(ls.includes(l), `${l} in ${ls}`);
        assert.ok(ls.includes(`${p.ip}:15008`), `${p.ip}:15008 in ${ls}`);
        assert.ok(ls.includes(`[${p.ip6}]:15008`), `[${p.ip6}]:15008 in ${ls}`);
      }
      assert.equal((await m.cni(client, "CHECK")).code, 0);
    });

    await t.step("IPv6 to the server pod: HBONE over IPv6 from the client pod", async () => {
      const r = await m.curl(client, `http://[${server.ip6}]:${APP_PORT}/`);
      assert.equal(r.code, 0, r.body);
      assert.equal(r.body.trim(), `server saw ${seen(6)}`);
      const out = await a1.waitFor((l) =>
        l.msg === "connection complete" && l.direction === "outbound" &&
        l["dst.addr"] === `[${server.ip6}]:${APP_PORT}`
      );
      assert.equal(out["dst.hbone_addr"], `[${server.ip6}]:15008`);
      assert.equal(out["src.workload"], "client-v6");
      assert.match(String(out["src.addr"]), new RegExp(`^\\[${client.ip6}\\]:\\d+$`));
      const inb = await a2.waitFor((l) =>
        l.msg === "connection complete" && l.direction === "inbound" &&
        l["dst.addr"] === `[${server.ip6}]:${APP_PORT}`
      );
      assert.equal(inb["src.identity"], "spiffe://cluster.local/ns/default/sa/client");
      assert.equal(inb.outcome, "ok");
      // Dialled from inside the client pod: its IPv6 address is the tunnel's source.
      assert.match(String(inb["src.addr"]), new RegExp(`^\\[${client.ip6}\\]:\\d+$`));
    });

    await t.step("IPv4 from the same pod still captured, its own family end to end", async () => {
      const r = await m.curl(client, `http://${server.ip}:${APP_PORT}/`);
      assert.equal(r.code, 0, r.body);
      assert.equal(r.body.trim(), `server saw ${seen(4)}`);
      const out = await a1.waitFor((l) =>
        l.msg === "connection complete" && l.direction === "outbound" &&
        l["dst.addr"] === `${server.ip}:${APP_PORT}`
      );
      assert.equal(out["dst.hbone_addr"], `${server.ip}:15008`);
      assert.equal(out["src.workload"], "client");
      // The client's plain IPv4 address (Deno's dual-stack listener reports it v4-mapped).
      assert.match(
        String(out["src.addr"]),
        new RegExp(`^${client.ip.replaceAll(".", "\\.")}:\\d+$`),
      );
      const inb = await a2.waitFor((l) =>
        l.msg === "connection complete" && l.direction === "inbound" &&
        l["dst.addr"] === `${server.ip}:${APP_PORT}`
      );
      assert.equal(String(inb["src.addr"]).split(":")[0], client.ip);
    });

    await t.step(
      "service VIPs of each family: the original destination names the service",
      async () => {
        const v6 = await m.curl(client, `http://[${m.vip6}]/`);
        assert.equal(v6.code, 0, v6.body);
        assert.equal(v6.body.trim(), `server saw ${seen(6)}`);
        await a1.waitFor((l) =>
          l.msg === "connection complete" && l["dst.service"] === "web6.default.svc.cluster.local"
        );
        const v4 = await m.curl(client, `http://${m.vip}/`);
        assert.equal(v4.code, 0, v4.body);
        assert.equal(v4.body.trim(), `server saw ${seen(4)}`);
        await a1.waitFor((l) =>
          l.msg === "connection complete" && l["dst.service"] === "web.default.svc.cluster.local"
        );
      },
    );

    await t.step("IPv6 passthrough outside the mesh", async () => {
      const r = await m.curl(client, `http://[${outsider.ip6}]:${APP_PORT}/`);
      assert.equal(r.code, 0, r.body);
      // Bun: from the pod, with its address; Deno: from the node (an unmarked dial from the
      // pod would be captured again).
      assert.equal(r.body.trim(), `outsider saw ${bun ? client.ip6 : m.wire6[0]}`);
      await a1.waitFor((l) =>
        l.msg === "connection complete" && l["dst.addr"] === `[${outsider.ip6}]:${APP_PORT}` &&
        l["dst.hbone_addr"] === undefined
      );
    });

    await t.step("plaintext IPv6 to a PERMISSIVE pod: captured inbound, delivered", async () => {
      const r = await m.curl(outsider, `http://[${client.ip6}]:${APP_PORT}/`);
      assert.equal(r.code, 0, r.body);
      assert.equal(r.body.trim(), `client saw ${bun ? outsider.ip6 : client.ip6}`);
      const inb = await a1.waitFor((l) =>
        l.msg === "connection complete" && l.direction === "inbound" &&
        l["dst.addr"] === `[${client.ip6}]:${APP_PORT}`
      );
      assert.match(String(inb["src.addr"]), new RegExp(`^\\[${outsider.ip6}\\]:\\d+$`));
      assert.equal(inb["dst.workload"], "client-v6");
    });

    await t.step("agent restart re-enrolls the pod with both addresses", async () => {
      const b1 = await m.restartAgent(1);
      assert.equal((await b1.waitFor((l) => l.msg === "pod channel ready")).pods, 1);
      const ls = await listeners(m, client.ns);
      assert.ok(ls.includes(`[${client.ip6}]:15008`) && ls.includes(`${client.ip}:15008`), `${ls}`);
      const r = await m.curl(client, `http://[${server.ip6}]:${APP_PORT}/`);
      assert.equal(r.code, 0, r.body);
      assert.equal(r.body.trim(), `server saw ${seen(6)}`);
      const pool = await poolKeys(m, 1);
      assert.ok(pool.some((k) => k.includes(`|${client.ip6}|`)), `${pool}`);
    });

    await t.step("plaintext IPv6 to a STRICT pod is captured inbound and refused", async () => {
      const before = await refused(m, 2, "strict_mtls");
      const r = await m.curl(outsider, `http://[${server.ip6}]:${APP_PORT}/`);
      assert.notEqual(r.code, 0, r.body);
      assert.equal(await refused(m, 2, "strict_mtls"), before + 1);
    });

    await t.step("DEL removes the table, both policy routes and every listener", async () => {
      // A captured IPv4 connection the client holds open for 15 s across the DEL: closed by it
      // (on Deno it came through the dual-stack listener). The margin
      // covers a slow `weft cni` start on a loaded machine.
      const holder = m.topo.run(client.ns, [
        "sh",
        "-c",
        // The sleep is stopped once socat is done, so the step does not wait for it.
        `t0=$(date +%s%N); p=$(mktemp); ` +
        `(printf 'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'; sleep 15 & echo $! > $p; wait) | ` +
        `(socat -t0.2 - TCP:${m.vip}:80; echo "held_ms $(( ($(date +%s%N) - t0) / 1000000 ))"; ` +
        `kill $(cat $p) 2>/dev/null; rm -f $p)`,
      ], { timeoutMs: 30_000 });
      await until(async () => (await openConnections(m, 1)) > 0);
      assert.equal((await m.cni(client, "DEL")).code, 0);
      const held = await holder;
      assert.match(held.stdout, /server saw/);
      const heldMs = Number(/held_ms (\d+)/.exec(held.stdout)?.[1]);
      assert.ok(heldMs < 12_000, `the pod's connection was closed by DEL (held ${heldMs} ms)`);
      assert.doesNotMatch(await run(m, client.ns, ["nft", "list", "tables"]), /weft_inpod/);
      assert.doesNotMatch(await run(m, client.ns, ["ip", "-6", "rule", "list"]), /lookup 133/);
      assert.doesNotMatch(await run(m, client.ns, ["ip", "-4", "rule", "list"]), /lookup 133/);
      const ls = await listeners(m, client.ns);
      assert.ok(!ls.some((l) => /:1500[168]$/.test(l)), `${ls}`);
      // Its pooled HBONE connections (by either source address) are retired.
      const pool = await poolKeys(m, 1);
      assert.ok(!pool.some((k) => k.includes(`|${client.ip6}|`) || k.includes(`|${client.ip}|`)));
      // Not captured any more: plaintext IPv6 straight to the STRICT server is refused there.
      assert.notEqual((await m.curl(client, `http://[${server.ip6}]:${APP_PORT}/`)).code, 0);
    });
  } finally {
    await m.close();
  }
  assert.deepEqual(await leftoverNamespaces(id), []);
}

Deno.test({
  name: "inpod IPv6 on Bun: dual-stack pods, both families captured, HBONE over IPv6",
  ignore: why !== undefined,
  sanitizeOps: true,
  sanitizeResources: true,
  fn: (t) => dualStack(t, "bun"),
});

Deno.test({
  name: "inpod on Deno: dual-stack pods captured, conntrack original destination, HBONE",
  ignore: why !== undefined,
  sanitizeOps: true,
  sanitizeResources: true,
  fn: (t) => dualStack(t, "deno"),
});
