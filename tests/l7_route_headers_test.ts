/**
 * Istio VirtualService `headers` through real weft processes (weft.yaml on Deno and on Bun,
 * HTTP/1.1 and h2c clients): route-level `set` replaces, `add` appends, `remove` deletes, on the
 * request the upstream receives and on the response the client gets; destination-level
 * operations follow the split's pick (v1 or v2), applied before the route's so the route wins on
 * a conflict (Envoy's `most_specific_header_mutations_wins` default, l7-semantics S6). The same
 * through the embedded control plane (RDS Route and ClusterWeight header fields) and an xDS node.
 */
import { echoNodeConfig } from "./support/echo_node.ts";
import { callVip } from "./support/vip_call.ts";
import { assertEquals } from "./support/assert.ts";
import { loopbackBlock, onDenoAndBun, withWeftYaml } from "./support/weft_proc.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { onNodeB, sleepOnNodeA, withTwoXdsNodes } from "./support/xds_nodes.ts";

const PORT = 18080;
const N = 40;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** What the upstream received and who it was. */
  seen: { version: string; headers: Record<string, string> };
}

const SENT = { "x-set": "client", "x-add": "first", "x-gone": "bye", "x-shared": "client" };

async function call(host: string, from: string): Promise<Reply> {
  const r = await callVip(host, "/split", from, { headers: SENT });
  return { status: r.status, headers: r.headers, seen: JSON.parse(r.body) };
}

async function callH2(host: string, from: string): Promise<Reply> {
  const { default: http2 } = await import("node:http2");
  const { h2Call, closeSession } = await import("./support/h2c_client.ts");
  const { connect } = await import("node:net");
  const s = http2.connect(`http://${host}:80`, {
    createConnection: () => connect({ host, port: 80, localAddress: from }),
  });
  try {
    const r = await h2Call(s, "/split", { method: "GET", headers: SENT });
    return {
      status: r.status,
      headers: r.headers as Reply["headers"],
      seen: JSON.parse(r.body),
    };
  } finally {
    await closeSession(s);
  }
}

const ROUTES = [{
  // The route's response operations finalize weft's own replies too (Envoy's router does).
  match: [{ uri: { exact: "/moved" } }],
  redirect: { uri: "/new" },
  headers: { response: { set: { "x-route": "moved" } } },
}, {
  match: [{ uri: { exact: "/teapot" } }],
  directResponse: { status: 418, body: { string: "short and stout" } },
  headers: { response: { set: { "x-route": "teapot" } } },
}, {
  match: [{ uri: { prefix: "/split" } }],
  headers: {
    request: {
      set: { "x-set": "route", "x-shared": "route" },
      add: { "x-add": "more", "x-pct": "100%%" },
      remove: ["x-gone"],
    },
    response: { set: { "x-route": "yes", "x-shared": "route" }, remove: ["content-type"] },
  },
  route: ["v1", "v2"].map((v) => ({
    destination: { host: "echo", subset: v },
    weight: 50,
    headers: {
      request: { set: { "x-dest": v, "x-shared": v } },
      response: { add: { "x-dest": v }, set: { "x-shared": v } },
    },
  })),
}];

/** Every answer carries the operations of the route and of the destination that served it. */
function checkReply(r: Reply): void {
  assertEquals(r.status, 200);
  const v = r.seen.version;
  const h = r.seen.headers;
  assertEquals(h["x-set"], "route", "set replaces");
  assertEquals(h["x-add"], "first, more", "add appends");
  assertEquals(h["x-gone"], undefined, "remove deletes");
  assertEquals(h["x-pct"], "100%", "%% is a literal %, as Envoy");
  assertEquals(h["x-dest"], v, "the picked destination's ops");
  assertEquals(h["x-shared"], "route", "route-level applies after the destination's");
  assertEquals(r.headers["content-type"], undefined, "response remove");
  assertEquals(r.headers["x-route"], "yes");
  assertEquals(r.headers["x-dest"], v);
  assertEquals(r.headers["x-shared"], "route");
}

async function callPath(host: string, from: string, path: string) {
  const r = await callVip(host, path, from);
  return { status: r.status, headers: r.headers };
}

async function checkAll(vip: string, from: string): Promise<void> {
  const moved = await callPath(vip, from, "/moved");
  assertEquals([moved.status, moved.headers["x-route"]], [301, "moved"]);
  const teapot = await callPath(vip, from, "/teapot");
  assertEquals([teapot.status, teapot.headers["x-route"]], [418, "teapot"]);
  const seen = new Set<string>();
  for (let i = 0; i < N; i++) {
    const r = await call(vip, from);
    checkReply(r);
    seen.add(r.seen.version);
  }
  assertEquals([...seen].sort(), ["v1", "v2"], "both destinations picked");
  checkReply(await callH2(vip, from));
}

async function run(runtime: string | undefined): Promise<void> {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-route-headers-" });
  const v1 = await startHttpWorkload(ip(3), PORT, "v1");
  const v2 = await startHttpWorkload(ip(4), PORT, "v2");
  const cfg = echoNodeConfig(dir, ip, PORT, {
    endpoints: [
      { address: ip(3), tunnel: "NONE", labels: { version: "v1" } },
      { address: ip(4), tunnel: "NONE", labels: { version: "v2" } },
    ],
    subsets: [{ name: "v1", labels: { version: "v1" } }, {
      name: "v2",
      labels: { version: "v2" },
    }],
    http: ROUTES,
  });
  try {
    await withWeftYaml(dir, cfg, runtime, () => checkAll(ip(100), ip(2)));
  } finally {
    await v1.close();
    await v2.close();
    await Deno.remove(dir, { recursive: true });
  }
}

for (
  const t of onDenoAndBun(
    (rt) =>
      `VirtualService headers (${rt}, weft.yaml): route and destination ops, HTTP/1.1 and h2c`,
    run,
  )
) Deno.test(t);

Deno.test("VirtualService headers (xds): the control plane's RDS header fields, read by a node", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-route-headers-xds-" });
  const v1 = await startHttpWorkload(ip(3), PORT, "v1");
  const v2 = await startHttpWorkload(ip(4), PORT, "v2");
  const mesh = {
    workloads: [
      sleepOnNodeA(ip),
      onNodeB("echo-v1", ip(3), { app: "echo", version: "v1" }),
      onNodeB("echo-v2", ip(4), { app: "echo", version: "v2" }),
    ],
    services: [{
      name: "echo",
      vips: [ip(100)],
      ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
      subsets: [{ name: "v1", labels: { version: "v1" } }, {
        name: "v2",
        labels: { version: "v2" },
      }],
      http: ROUTES,
    }],
  };
  try {
    await withTwoXdsNodes(dir, mesh, () => checkAll(ip(100), ip(2)));
  } finally {
    await v1.close();
    await v2.close();
    await Deno.remove(dir, { recursive: true });
  }
});
