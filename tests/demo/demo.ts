/**
 * `deno task demo`: two weft nodes on loopback, an echo workload behind node B, two client
 * workloads on node A (one allowed by node B's AuthorizationPolicy, one not). Sends traffic
 * A → HBONE → B, prints a table of what each side saw, stops everything, exits 0 (1 if a row
 * is not as expected).
 */
import { stringify } from "yaml";
import { connect } from "node:net";
import { join } from "node:path";
import { print } from "../../src/core/mod.ts";
import { startEcho } from "../support/echo_server.ts";
import { startWeft, type WeftProc } from "../support/weft_proc.ts";

const NODE_A = { client: "127.0.2.2", intruder: "127.0.2.3", vip: "127.10.2.1" };
const NODE_B = { echo: "127.0.3.2" };
const LISTENERS = {
  admin: "127.0.0.1:0",
  metrics: "127.0.0.1:0",
  readiness: "127.0.0.1:0",
  socks5: "",
  inboundPlaintextPort: 0,
};

interface Row {
  path: string;
  source: string;
  destination: string;
  seenByB: string;
  bytes: string;
  result: string;
  expected: string;
}

function send(from: string, data: string): Promise<{ echoed: number; result: string }> {
  return new Promise((resolve) => {
    const s = connect({ host: NODE_A.vip, port: 80, localAddress: from });
    let echoed = 0;
    const t = setTimeout(() => s.destroy(), 5000);
    s.on("connect", () => s.write(data));
    s.on("data", (c) => {
      echoed += c.length;
      if (echoed >= data.length) s.end();
    });
    s.on("error", () => {});
    s.on("close", () => {
      clearTimeout(t);
      resolve({ echoed, result: echoed >= data.length ? "allowed (echoed)" : "denied (closed)" });
    });
  });
}

function table(rows: Row[]): string {
  const cols = ["path", "source", "destination", "seenByB", "bytes", "result"] as const;
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const line = (vals: string[]) => "| " + vals.map((v, i) => v.padEnd(w[i]!)).join(" | ") + " |";
  return [
    line([...cols]),
    "|" + w.map((n) => "-".repeat(n + 2)).join("|") + "|",
    ...rows.map((r) => line(cols.map((c) => r[c]))),
  ].join("\n");
}

async function main(): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "weft-demo-" });
  const echo = await startEcho(NODE_B.echo, 0);
  const ca = { mode: "auto", stateDir: join(dir, "ca") };
  const nodeA = {
    node: { name: "node-a" },
    ca,
    listeners: LISTENERS,
    workloads: [
      { name: "sleep", namespace: "default", serviceAccount: "sleep", address: NODE_A.client },
      {
        name: "intruder",
        namespace: "other",
        serviceAccount: "intruder",
        address: NODE_A.intruder,
      },
    ],
    services: [{
      name: "echo",
      namespace: "default",
      vips: [NODE_A.vip],
      ports: [{ port: 80, targetPort: echo.port }],
      endpoints: [{
        workload: "echo",
        namespace: "default",
        serviceAccount: "echo",
        address: NODE_B.echo,
        node: "node-b",
      }],
    }],
  };
  const nodeB = {
    node: { name: "node-b" },
    ca,
    listeners: LISTENERS,
    workloads: [{
      name: "echo",
      namespace: "default",
      serviceAccount: "echo",
      address: NODE_B.echo,
    }],
    authorizationPolicies: [{
      name: "allow-sleep",
      namespace: "default",
      action: "ALLOW",
      rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/sleep"] } }] }],
    }],
  };
  await Deno.writeTextFile(join(dir, "a.yaml"), stringify(nodeA));
  await Deno.writeTextFile(join(dir, "b.yaml"), stringify(nodeB));
  print(
    `weft demo: node A (client workloads ${NODE_A.client}, ${NODE_A.intruder}; service echo on ${NODE_A.vip}:80)`,
  );
  print(
    `           node B (echo workload ${NODE_B.echo}:${echo.port}, HBONE ${NODE_B.echo}:15008, policy allow-sleep)\n`,
  );
  const procs: WeftProc[] = [];
  try {
    // Node B first: the first process creates the shared dev CA, the second reuses it.
    procs.push(
      await startWeft(["run", "--config", join(dir, "b.yaml")], { env: { WEFT_LOG: "info" } }),
    );
    procs.push(
      await startWeft(["run", "--config", join(dir, "a.yaml")], { env: { WEFT_LOG: "info" } }),
    );
    const [b] = procs as [WeftProc, WeftProc];
    const rows: Row[] = [];
    const cases = [
      {
        from: NODE_A.client,
        source: "spiffe://cluster.local/ns/default/sa/sleep",
        expected: "allowed (echoed)",
      },
      {
        from: NODE_A.intruder,
        source: "spiffe://cluster.local/ns/other/sa/intruder",
        expected: "denied (closed)",
      },
    ];
    for (const c of cases) {
      const r = await send(c.from, `hello from ${c.from}\n`);
      const seen = await b.waitFor(
        (l) => l.scope === "access" && l.direction === "inbound" && l["src.identity"] === c.source,
        5000,
      )
        .catch(() => undefined);
      rows.push({
        path: `${c.from} → ${NODE_A.vip}:80 → HBONE → ${NODE_B.echo}:15008`,
        source: c.source,
        destination: "spiffe://cluster.local/ns/default/sa/echo",
        seenByB: seen ? `${seen["src.identity"]} (${seen.outcome})` : "—",
        bytes: String(r.echoed),
        result: r.result,
        expected: c.expected,
      });
    }
    print(table(rows));
    const ok = rows.every((r) => r.result === r.expected);
    print(
      `\n${
        ok ? "demo OK" : "demo FAILED"
      }: metrics on node B at http://${b.ready.metrics}/stats/prometheus (stopped now)`,
    );
    return ok ? 0 : 1;
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.exit(await main());
