/**
 * CORS on a route (Istio VirtualService `corsPolicy`, Gateway API HTTPRoute `CORS`) through real
 * weft processes on Deno and on Bun, as Envoy's cors filter behaves: an allowed preflight is
 * answered by weft (200 and the policy's headers; the workload sees nothing), an actual request
 * goes to the workload and its response gets allow-origin/credentials/expose, a disallowed origin
 * is untouched, a disallowed preflight is forwarded (FORWARD, the default) or answered without
 * allow-origin (IGNORE), a request without Origin is untouched; HTTP/1.1 and h2c. Config from
 * weft.yaml `services[].http` (FORWARD), an Istio VirtualService in `resources` (IGNORE) and an
 * HTTPRoute in `resources` (origin "*", IGNORE as istiod converts it). The same policy through
 * the embedded control plane (RDS typed_per_filter_config CorsPolicy) and an xDS node.
 */
import { echoNodeConfig } from "./support/echo_node.ts";
import { request } from "node:http";
import { stringify } from "yaml";
import { join } from "node:path";
import { assertEquals } from "./support/assert.ts";
import { bunPath, loopbackBlock, startWeft, type WeftProc } from "./support/weft_proc.ts";
import { type HttpWorkload, startHttpWorkload } from "./support/http_workload.ts";
import { startXdsMesh, type XdsMesh } from "./support/xds_nodes.ts";

const PORT = 18080;

interface Reply {
  status: number;
  headers: Record<string, unknown>;
  body: string;
}

function call(host: string, from: string, method: string, headers: Record<string, string>) {
  return new Promise<Reply>((resolve, reject) => {
    const req = request(
      { host, port: 80, path: "/cors", method, localAddress: from, agent: false, headers },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => body += c);
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

async function callH2(
  host: string,
  from: string,
  method: string,
  headers: Record<string, string>,
): Promise<Reply> {
  const { default: http2 } = await import("node:http2");
  const { h2Call, closeSession } = await import("./support/h2c_client.ts");
  const { connect } = await import("node:net");
  const s = http2.connect(`http://${host}:80`, {
    createConnection: () => connect({ host, port: 80, localAddress: from }),
  });
  try {
    const r = await h2Call(s, "/cors", { method, headers });
    return { status: r.status, headers: r.headers as Reply["headers"], body: r.body };
  } finally {
    await closeSession(s);
  }
}

const OK = "https://app.example";
const EVIL = "https://evil.example";
const PREFLIGHT = {
  "access-control-request-method": "PUT",
  "access-control-request-headers": "x-a",
};

/** The route of `echo` (weft.yaml services[].http and the xDS mesh): FORWARD by default. */
const ECHO_CORS = {
  // Nested repeats, as operators write them: RE2 (Envoy) matches in linear time; a backtracking
  // engine takes minutes on a 40-character hostile Origin.
  allowOrigins: [{ exact: OK }, { regex: "https://([a-z0-9]+)+\\.allowed\\.example" }],
  allowMethods: ["GET", "POST", "PUT"],
  allowHeaders: ["x-a", "x-b"],
  exposeHeaders: ["x-e"],
  maxAge: "60s",
  allowCredentials: true,
};

const cors = (r: Reply) =>
  Object.keys(r.headers).filter((k) => k.startsWith("access-control-")).sort();

/** The requests on the echo route: preflights answered without the workload, actual requests
 * decorated, the rest untouched. */
async function checkEcho(vip: string, from: string, w: HttpWorkload, h2: boolean): Promise<void> {
  const send = h2 ? callH2 : call;
  const before = w.hits();
  const pre = await send(vip, from, "OPTIONS", { origin: OK, ...PREFLIGHT });
  assertEquals(pre.status, 200);
  assertEquals(pre.body, "");
  assertEquals(pre.headers["access-control-allow-origin"], OK);
  assertEquals(pre.headers["access-control-allow-credentials"], "true");
  assertEquals(pre.headers["access-control-allow-methods"], "GET,POST,PUT");
  assertEquals(pre.headers["access-control-allow-headers"], "x-a,x-b");
  assertEquals(pre.headers["access-control-max-age"], "60");
  assertEquals(pre.headers["access-control-expose-headers"], undefined);
  const regexOrigin = await send(vip, from, "OPTIONS", {
    origin: "https://b.allowed.example",
    ...PREFLIGHT,
  });
  assertEquals(regexOrigin.headers["access-control-allow-origin"], "https://b.allowed.example");
  assertEquals(w.hits(), before, "preflights are answered by weft, never forwarded");

  const actual = await send(vip, from, "GET", { origin: OK });
  assertEquals(actual.status, 200);
  assertEquals(JSON.parse(actual.body).method, "GET", "the actual request reached the workload");
  assertEquals(actual.headers["access-control-allow-origin"], OK);
  assertEquals(actual.headers["access-control-allow-credentials"], "true");
  assertEquals(actual.headers["access-control-expose-headers"], "x-e");
  assertEquals(actual.headers["access-control-allow-methods"], undefined);

  const evil = await send(vip, from, "GET", { origin: EVIL });
  assertEquals(evil.status, 200);
  assertEquals(cors(evil), [], "a disallowed origin is untouched");
  const none = await send(vip, from, "GET", {});
  assertEquals(cors(none), [], "no Origin: untouched");
  // FORWARD (the default): a disallowed preflight goes to the workload as it is.
  const fwd = await send(vip, from, "OPTIONS", { origin: EVIL, ...PREFLIGHT });
  assertEquals(fwd.status, 200);
  assertEquals(JSON.parse(fwd.body).method, "OPTIONS", "forwarded to the workload");
  assertEquals(cors(fwd), []);
  assertEquals(w.hits(), before + 4);
  // A hostile Origin against the nested-repeat regex: answered (not allowed), and the node
  // keeps serving meanwhile (a backtracking engine would hold its event loop for minutes).
  const hostile = `https://${"a".repeat(48)}!`;
  const [slow, ok] = await Promise.all([
    within(20_000, send(vip, from, "GET", { origin: hostile })),
    within(20_000, send(vip, from, "GET", { origin: OK })),
  ]);
  assertEquals([slow.status, cors(slow)], [200, []]);
  assertEquals(ok.headers["access-control-allow-origin"], OK);
}

/** `p`, or a rejection after `ms` (a node that stops answering fails the test, not hangs it). */
function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(t));
}

/** `vs` (VirtualService, IGNORE) and `gw` (HTTPRoute, origin "*"). */
async function checkResources(ip: (n: number) => string, w: HttpWorkload): Promise<void> {
  const from = ip(2);
  const before = w.hits();
  const ignored = await call(ip(101), from, "OPTIONS", { origin: EVIL, ...PREFLIGHT });
  assertEquals(ignored.status, 200);
  assertEquals(ignored.body, "");
  assertEquals(cors(ignored), ["access-control-allow-methods"], "IGNORE: no allow-origin");
  assertEquals(ignored.headers["access-control-allow-methods"], "PUT", '"*" echoes the method');
  const allowedVs = await call(ip(101), from, "GET", { origin: OK });
  assertEquals(allowedVs.headers["access-control-allow-origin"], OK);
  const gwPre = await call(ip(102), from, "OPTIONS", {
    origin: "http://any.host:8080",
    ...PREFLIGHT,
  });
  assertEquals(gwPre.status, 200);
  assertEquals(gwPre.headers["access-control-allow-origin"], "http://any.host:8080");
  assertEquals(gwPre.headers["access-control-max-age"], "5", "the CRD's default maxAge");
  const gwBad = await call(ip(102), from, "OPTIONS", { origin: "null", ...PREFLIGHT });
  assertEquals(gwBad.status, 200);
  assertEquals(gwBad.headers["access-control-allow-origin"], undefined, "not an origin: IGNORE");
  const gwGet = await call(ip(102), from, "GET", { origin: "https://x.example" });
  assertEquals(gwGet.headers["access-control-allow-origin"], "https://x.example");
  assertEquals(w.hits(), before + 2, "only the actual requests reached the workload");
}

/** weft's own replies on CORS routes, as Envoy's cors filter (after fault, before the router)
 * decorates them: the router's 503 (connect failure, missing cluster) and 504 (timeout) get the
 * headers, a fault abort (made before the filter saw the request) and a disallowed origin none. */
async function checkLocalReplies(ip: (n: number) => string, h2: boolean): Promise<void> {
  const send = h2 ? callH2 : call;
  const from = ip(2);
  const decorated = (r: Reply, status: number, what: string) => {
    assertEquals(r.status, status, what);
    assertEquals(r.headers["access-control-allow-origin"], OK, what);
    assertEquals(r.headers["access-control-allow-credentials"], "true", what);
    assertEquals(r.headers["access-control-expose-headers"], "x-e", what);
    assertEquals(r.headers["access-control-allow-methods"], undefined, what);
  };
  decorated(await send(ip(103), from, "GET", { origin: OK }), 503, "connect failure");
  decorated(await send(ip(104), from, "GET", { origin: OK }), 504, "route timeout");
  decorated(await send(ip(106), from, "GET", { origin: OK }), 503, "cluster not found");
  const abort = await send(ip(105), from, "GET", { origin: OK });
  assertEquals([abort.status, cors(abort)], [503, []], "a fault abort comes before cors");
  const evil = await send(ip(103), from, "GET", { origin: EVIL });
  assertEquals([evil.status, cors(evil)], [503, []], "a disallowed origin: untouched");
  const none = await send(ip(104), from, "GET", {});
  assertEquals([none.status, cors(none)], [504, []], "no Origin: untouched");
}

async function run(runtime: string | undefined): Promise<void> {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-route-cors-" });
  const w = await startHttpWorkload(ip(3), PORT, "echo");
  const svc = (name: string, vip: string) => ({
    name,
    namespace: "default",
    vips: [vip],
    ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
    endpoints: [{ address: ip(3), tunnel: "NONE" }],
  });
  const cfg = echoNodeConfig(dir, ip, PORT, {
    endpoints: [{ address: ip(3), tunnel: "NONE" }],
    http: [{ corsPolicy: ECHO_CORS, route: [{ destination: { host: "echo" } }] }],
  });
  // Local replies: nothing listens on ip(4); ip(5) accepts and never answers.
  const hold = Deno.listen({ hostname: ip(5), port: PORT });
  const held: Deno.Conn[] = [];
  const holding = (async () => {
    for await (const c of hold) held.push(c);
  })();
  const local = (name: string, n: number, http: Record<string, unknown>) => ({
    ...svc(name, ip(100 + n)),
    endpoints: [{ address: ip(n === 4 ? 5 : 4), tunnel: "NONE" }],
    http: [{ corsPolicy: ECHO_CORS, route: [{ destination: { host: name } }], ...http }],
  });
  (cfg.services as unknown[]).push(
    svc("vs", ip(101)),
    svc("gw", ip(102)),
    local("down", 3, {}),
    local("slow", 4, { timeout: "0.3s" }),
    local("faulty", 5, { fault: { abort: { httpStatus: 503, percentage: { value: 100 } } } }),
    local("lost", 6, { route: [{ destination: { host: "nowhere" } }] }),
  );
  cfg.resources = [
    {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name: "vs", namespace: "default" },
      spec: {
        hosts: ["vs"],
        http: [{
          corsPolicy: {
            allowOrigin: [OK],
            allowMethods: ["*"],
            unmatchedPreflights: "IGNORE",
          },
          route: [{ destination: { host: "vs" } }],
        }],
      },
    },
    {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "HTTPRoute",
      metadata: { name: "gw", namespace: "default" },
      spec: {
        parentRefs: [{ group: "", kind: "Service", name: "gw", port: 80 }],
        rules: [{
          filters: [{ type: "CORS", cors: { allowOrigins: ["*"], allowMethods: ["GET"] } }],
          backendRefs: [{ name: "gw", port: 80 }],
        }],
      },
    },
  ];
  let weft: WeftProc | undefined;
  try {
    await Deno.writeTextFile(join(dir, "a.yaml"), stringify(cfg));
    weft = await startWeft(["run", "--config", join(dir, "a.yaml")], {
      timeoutMs: 120_000,
      ...(runtime ? { runtime } : {}),
    });
    await checkEcho(ip(100), ip(2), w, false);
    await checkEcho(ip(100), ip(2), w, true);
    await checkResources(ip, w);
    await checkLocalReplies(ip, false);
    await checkLocalReplies(ip, true);
  } catch (e) {
    await weft?.stop("SIGKILL"); // a node whose event loop is held never handles SIGTERM
    weft = undefined;
    throw e;
  } finally {
    await weft?.stop();
    hold.close();
    await holding.catch(() => {});
    for (const c of held) c.close();
    await w.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const bun = bunPath();
Deno.test("route CORS (Deno, weft.yaml): preflights local, actual decorated, FORWARD/IGNORE", () =>
  run(undefined));
Deno.test({
  name: "route CORS (Bun, weft.yaml): preflights local, actual decorated, FORWARD/IGNORE",
  ignore: !bun,
  fn: () => run(bun),
});

Deno.test({
  name: "route CORS (xds): the control plane's per-route CorsPolicy, read by a node",
  fn: async () => {
    const ip = loopbackBlock();
    const dir = await Deno.makeTempDir({ prefix: "weft-route-cors-xds-" });
    const w = await startHttpWorkload(ip(3), PORT, "echo");
    const mesh = {
      workloads: [
        { name: "sleep", serviceAccount: "sleep", address: ip(2), node: "node-a" },
        {
          name: "echo",
          serviceAccount: "echo",
          address: ip(3),
          node: "node-b",
          labels: { app: "echo" },
        },
      ],
      services: [{
        name: "echo",
        vips: [ip(100)],
        ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
        http: [{ corsPolicy: ECHO_CORS, route: [{ destination: { host: "echo" } }] }],
      }],
    };
    let x: XdsMesh | undefined;
    try {
      x = await startXdsMesh(dir, mesh, ["node-a", "node-b"], ["node-a"]);
      const [a, b] = x.nodes as [WeftProc, WeftProc];
      await x.waitReady(a);
      await x.waitReady(b);
      await checkEcho(ip(100), ip(2), w, false);
      await checkEcho(ip(100), ip(2), w, true);
    } finally {
      await x?.stop();
      await w.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
