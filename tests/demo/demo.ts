/**
 * `deno task demo`: the embedded control plane serves a mesh file to two weft nodes on loopback
 * (workloads, services, policies and their certificates come over xDS). Node A hosts two client
 * workloads, node B two versions of an HTTP echo. The demo
 *   1. sends one request from each client: one allowed, one denied by an AuthorizationPolicy;
 *   2. sends 400 requests through the L7 chain: a 90/10 split with injected delays and aborts;
 *   3. edits the mesh file (50/50, no faults) and shows the pushed change taking effect live.
 * It prints tables, stops everything it started and exits 0 (1 if a row is off expectations).
 */
import { request } from "node:http";
import { join } from "node:path";
import { print } from "../../src/core/mod.ts";
import { startHttpWorkload } from "../support/http_workload.ts";
import type { WeftProc } from "../support/weft_proc.ts";
import { startXdsMesh, type XdsMesh } from "../support/xds_nodes.ts";
import { type Row, table } from "./table.ts";

const A = { sleep: "127.0.2.2", intruder: "127.0.2.3", vip: "127.10.2.1" };
const B = { v1: "127.0.3.2", v2: "127.0.3.3" };
const PORT = 18080;

function mesh(weights: [number, number], faults: boolean): Record<string, unknown> {
  return {
    trustDomain: "cluster.local",
    workloads: [
      {
        name: "sleep",
        namespace: "default",
        serviceAccount: "sleep",
        address: A.sleep,
        node: "node-a",
      },
      {
        name: "intruder",
        namespace: "other",
        serviceAccount: "intruder",
        address: A.intruder,
        node: "node-a",
      },
      {
        name: "echo-v1",
        namespace: "default",
        serviceAccount: "echo",
        address: B.v1,
        node: "node-b",
        labels: { app: "echo", version: "v1" },
      },
      {
        name: "echo-v2",
        namespace: "default",
        serviceAccount: "echo",
        address: B.v2,
        node: "node-b",
        labels: { app: "echo", version: "v2" },
      },
    ],
    services: [{
      name: "echo",
      namespace: "default",
      vips: [A.vip],
      ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
      selector: { app: "echo" },
      subsets: [{ name: "v1", labels: { version: "v1" } }, {
        name: "v2",
        labels: { version: "v2" },
      }],
      http: [{
        route: [{ destination: { subset: "v1" }, weight: weights[0] }, {
          destination: { subset: "v2" },
          weight: weights[1],
        }],
        ...(faults
          ? {
            fault: {
              delay: { fixedDelay: "300ms", percentage: { value: 10 } },
              abort: { httpStatus: 503, percentage: { value: 10 } },
            },
          }
          : {}),
      }],
    }],
    authorizationPolicies: [{
      name: "allow-default-ns",
      namespace: "default",
      action: "ALLOW",
      rules: [{ from: [{ source: { namespaces: ["default"] } }] }],
    }],
  };
}

interface Res {
  status: number;
  version: string;
  ms: number;
}

function get(from: string): Promise<Res> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = request(
      { host: A.vip, port: 80, path: "/hello", localAddress: from, agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => body += c);
        res.on("end", () => {
          let version = "-";
          try {
            version = JSON.parse(body).version;
          } catch { /* a local reply */ }
          resolve({ status: res.statusCode ?? 0, version, ms: performance.now() - t0 });
        });
      },
    );
    req.setTimeout(5000, () => req.destroy());
    req.on("error", (e) => {
      if (Deno.env.get("WEFT_DEMO_DEBUG")) print(`request error: ${e.message}`);
      resolve({ status: 0, version: "-", ms: performance.now() - t0 });
    });
    req.end();
  });
}

async function burst(
  n: number,
): Promise<{ v1: number; v2: number; aborted: number; delayed: number; other: number }> {
  const out = { v1: 0, v2: 0, aborted: 0, delayed: 0, other: 0 };
  for (let i = 0; i < n; i += 20) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(20, n - i) }, () => get(A.sleep)),
    );
    for (const r of batch) {
      if (r.ms >= 280) out.delayed++;
      if (r.status === 503) out.aborted++;
      else if (r.status === 200 && (r.version === "v1" || r.version === "v2")) out[r.version]++;
      else out.other++;
    }
  }
  return out;
}

/** Delays injected on a node, summed: by route faults (the VirtualService's, applied with the
 * route) and by fault filters (`delays_injected`). */
async function delaysInjected(p: WeftProc): Promise<number> {
  const text = await (await fetch(`http://${p.ready.metrics}/metrics`)).text();
  return [
    ...text.matchAll(/^weft_filter_counter_total\{[^}]*name="delays_injected"[^}]*\} (\d+)/gm),
    ...text.matchAll(/^weft_http_faults_injected_total\{kind="delay"\} (\d+)/gm),
  ]
    .reduce((sum, m) => sum + Number(m[1]), 0);
}

const pct = (k: number, n: number): string => `${(100 * k / n).toFixed(1)} %`;
const within = (k: number, n: number, p: number, tol: number): boolean =>
  Math.abs(100 * k / n - p) <= tol;

async function main(): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "weft-demo-" });
  const meshPath = join(dir, "mesh.yaml");
  const v1 = await startHttpWorkload(B.v1, PORT, "v1");
  const v2 = await startHttpWorkload(B.v2, PORT, "v2");
  let x: XdsMesh | undefined;
  let ok = true;
  try {
    x = await startXdsMesh(dir, mesh([90, 10], true), ["node-a", "node-b"], ["node-a"]);
    const { address } = x;
    const [a, b] = x.nodes as [WeftProc, WeftProc];
    await x.waitReady(a);
    await x.waitReady(b);
    print(`weft demo — control plane ${address} serving ${meshPath}`);
    print(
      `  node A: sleep ${A.sleep} (ns default), intruder ${A.intruder} (ns other); service echo on ${A.vip}:80`,
    );
    print(
      `  node B: echo-v1 ${B.v1}:${PORT}, echo-v2 ${B.v2}:${PORT}; policy allow-default-ns (ALLOW from namespace default)\n`,
    );

    const rows: Row[] = [];
    for (
      const [who, ip, expect] of [["sleep (default)", A.sleep, "allowed"], [
        "intruder (other)",
        A.intruder,
        "denied",
      ]] as const
    ) {
      let r = await get(ip);
      for (let i = 0; i < 5 && r.status === 503 && expect === "allowed"; i++) r = await get(ip); // an injected abort
      const seen = await b.waitFor(
        (l) =>
          l.scope === "access" && typeof l["src.identity"] === "string" &&
          String(l["src.identity"]).includes(who.split(" ")[0]!),
        3000,
      ).catch(() => undefined);
      const result = r.status === 200 ? "allowed" : "denied";
      // An allowed request is a clean connection on B too (node A ends its upstream stream with
      // END_STREAM; a reset would be logged as an error).
      ok &&= result === expect && (expect !== "allowed" || seen?.outcome === "ok");
      rows.push({
        path: `${ip} → ${A.vip}:80 → HBONE → node B`,
        "identity seen by B": seen ? String(seen["src.identity"]) : "—",
        "B's verdict": seen ? String(seen.outcome) : "—",
        "client got": r.status
          ? `HTTP ${r.status}${r.version !== "-" ? ` (${r.version})` : ""}`
          : "connection closed",
        result: result + (result === expect ? "" : `  ✗ expected ${expect}`),
      });
    }
    print("1. Identity and L4 authorization (HBONE mTLS, AuthorizationPolicy on node B)");
    print(table(rows) + "\n");

    const n = 400;
    // Delays are counted by the fault filter itself (Envoy's `delays_injected`): a latency
    // threshold alone also counts requests that were slow because the box was busy.
    const injected0 = await delaysInjected(a);
    const s1 = await burst(n);
    const injected = await delaysInjected(a) - injected0;
    const served1 = s1.v1 + s1.v2;
    const checks1 = [
      within(s1.v1, served1, 90, 6),
      within(s1.aborted, n, 10, 5),
      within(injected, n, 10, 5) && s1.delayed >= injected,
    ];
    ok &&= checks1.every(Boolean);
    print(
      `2. L7 through wasm plugins on node A: ${n} requests, VirtualService 90/10 + fault (delay 300ms 10 %, abort 503 10 %)`,
    );
    print(
      table([
        {
          measure: "routed to v1 (of served)",
          count: String(s1.v1),
          share: pct(s1.v1, served1),
          expected: "90 % ± 6",
          ok: checks1[0] ? "✓" : "✗",
        },
        {
          measure: "routed to v2 (of served)",
          count: String(s1.v2),
          share: pct(s1.v2, served1),
          expected: "10 % ± 6",
          ok: checks1[0] ? "✓" : "✗",
        },
        {
          measure: "aborted (503 fault filter abort)",
          count: String(s1.aborted),
          share: pct(s1.aborted, n),
          expected: "10 % ± 5",
          ok: checks1[1] ? "✓" : "✗",
        },
        {
          measure: `delayed 300 ms (delays_injected; ${s1.delayed} took ≥ 280 ms)`,
          count: String(injected),
          share: pct(injected, n),
          expected: "10 % ± 5",
          ok: checks1[2] ? "✓" : "✗",
        },
      ]) + "\n",
    );

    const applied = a.lines.filter((l) => l.msg === "snapshot applied").length;
    await x.writeMesh(mesh([50, 50], false));
    await a.waitFor(
      (l) =>
        l.msg === "snapshot applied" &&
        a.lines.filter((x) => x.msg === "snapshot applied").length > applied,
      15_000,
    );
    const s2 = await burst(n);
    const served2 = s2.v1 + s2.v2;
    const checks2 = [within(s2.v1, served2, 50, 8), s2.aborted === 0];
    ok &&= checks2.every(Boolean);
    print("3. Live change: mesh.yaml edited to 50/50 without faults; the control plane pushes it");
    print(
      table([
        {
          measure: "routed to v1",
          count: String(s2.v1),
          share: pct(s2.v1, served2),
          expected: "50 % ± 8",
          ok: checks2[0] ? "✓" : "✗",
        },
        {
          measure: "routed to v2",
          count: String(s2.v2),
          share: pct(s2.v2, served2),
          expected: "50 % ± 8",
          ok: checks2[0] ? "✓" : "✗",
        },
        {
          measure: "aborted",
          count: String(s2.aborted),
          share: pct(s2.aborted, n),
          expected: "0",
          ok: checks2[1] ? "✓" : "✗",
        },
      ]) + "\n",
    );
    print(
      ok
        ? "demo OK (everything it started is stopped now)"
        : "demo FAILED: a row is off expectations",
    );
    return ok ? 0 : 1;
  } finally {
    await x?.stop();
    await v1.close();
    await v2.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.exit(await main());
