/**
 * The weft node the live fuzzer attacks: one real `weft run` process (Deno, `--bun`, or the
 * binary with WEFT_BIN) at `nice -n 19`, with every listener a peer can reach — HBONE 15008 and
 * plaintext inbound 15006 on the server workload's IP, SOCKS5, two captured service VIPs (an
 * HTTP/1.1 service and a GRPC service, both through the L7 proxy: outbound routes with a fault
 * rule, an inbound L7 AuthorizationPolicy), admin/metrics/readiness — and the upstream workloads
 * (an HTTP/1.1 echo and an h2c echo) in the driver's process. The L7 AuthorizationPolicy selects
 * the HTTP/1.1 workload only: at L4 (plaintext inbound) a DENY with HTTP fields denies every
 * connection, as ztunnel does, so the plaintext target aims at the h2c workload. Certificates come from the test
 * PKI, so the driver can present a mesh identity on 15008.
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { join } from "node:path";
import { stringify } from "yaml";
import { createTestPki, type PemFiles, type TestPki } from "../../tests/support/test_ca.ts";
import {
  loopbackBlock,
  startWeft,
  weftCommand,
  type WeftProc,
} from "../../tests/support/weft_proc.ts";
import { UNHANDLED_ERROR_MSG } from "../../src/core/mod.ts";

export const WEB_PORT = 18080;
export const GRPC_PORT = 18081;

/** What a campaign watches: a real weft process under attack. */
export interface Subject {
  rssBytes(): number;
  /** Lines on weft's stderr/stdout that are a finding: the guard's unhandled-error record, a
   * stack trace, a panic, anything not JSON. */
  suspicious(): string[];
  /** A legitimate request: ms taken, or an error message. */
  legit(timeoutMs?: number): Promise<number | string>;
  alive(): boolean;
}

export interface FuzzNode extends Subject {
  readonly proc: WeftProc;
  readonly pki: TestPki;
  readonly client: PemFiles;
  readonly ip: (h: number) => string;
  /** Client workload address (source of VIP traffic). */
  readonly clientIp: string;
  /** The HTTP/1.1 server workload (HBONE 15008 and plaintext 15006 listen here). */
  readonly webIp: string;
  readonly grpcIp: string;
  readonly webVip: string;
  readonly grpcVip: string;
  readonly socks5: string;
  readonly configPath: string;
  readonly config: Record<string, unknown>;
  rssBytes(): number;
  /** Lines on weft's stderr/stdout that are a finding: the guard's unhandled-error record, a
   * stack trace, a panic, anything not JSON. */
  suspicious(): string[];
  /** A legitimate request through the VIP (outbound L7 → HBONE → inbound L7 → workload): ms
   * taken, or an error message. */
  legit(timeoutMs?: number): Promise<number | string>;
  alive(): boolean;
  stop(): Promise<void>;
}

function upstreams(webIp: string, grpcIp: string): Promise<() => Promise<void>> {
  const web = http.createServer((req, res) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (c: Uint8Array) => chunks.push(c));
    req.on("error", () => {});
    req.on("end", () => res.end(JSON.stringify({ path: req.url, n: chunks.length })));
  });
  web.on("clientError", (_e, s) => s.destroy());
  const grpc = http2.createServer();
  grpc.on("stream", (raw, h) => {
    const st = raw as http2.ServerHttp2Stream;
    st.on("error", () => {});
    st.on("data", () => {});
    st.on("end", () => {
      if (st.destroyed || st.closed) return;
      st.respond({ ":status": 200, "content-type": String(h["content-type"] ?? "text/plain") }, {
        waitForTrailers: true,
      });
      st.on("wantTrailers", () => st.sendTrailers({ "grpc-status": "0" }));
      st.end(new Uint8Array([0, 0, 0, 0, 0]));
    });
  });
  grpc.on("sessionError", () => {});
  grpc.on("session", (s) => s.on("error", () => {}));
  const listen = (s: net.Server, host: string, port: number) =>
    new Promise<void>((ok, fail) => {
      s.once("error", fail);
      s.listen(port, host, () => ok());
    });
  return Promise.all([listen(web, webIp, WEB_PORT), listen(grpc, grpcIp, GRPC_PORT)]).then(
    () => async () => {
      web.closeAllConnections();
      await Promise.all([
        new Promise((r) => web.close(r)),
        new Promise((r) => grpc.close(r)),
      ]);
    },
  );
}

/** weft.yaml of the node under attack. */
export function fuzzConfig(
  ip: (h: number) => string,
  pki: TestPki,
  configDir: string,
): Record<string, unknown> {
  const wl = (name: string, h: number, port: number) => ({
    name,
    namespace: "default",
    serviceAccount: name,
    address: ip(h),
    ports: [port],
    labels: { app: name },
  });
  const routes = [
    {
      match: [{ headers: { "x-fault": { exact: "1" } } }],
      fault: { abort: { httpStatus: 418, percentage: { value: 100 } } },
      route: [{ destination: { host: "%s" } }],
    },
    { route: [{ destination: { host: "%s" } }] },
  ];
  const svc = (name: string, h: number, vip: number, port: number, protocol: string) => ({
    name,
    namespace: "default",
    vips: [ip(vip)],
    ports: [{ port: 80, targetPort: port, protocol }],
    endpoints: [{ workload: name, namespace: "default", serviceAccount: name, address: ip(h) }],
    http: JSON.parse(JSON.stringify(routes).replaceAll("%s", name)),
  });
  return {
    node: { name: "fuzz-node", defaultSourceWorkload: "client" },
    ca: { mode: "files", certFile: pki.rootsPath, keyFile: pki.caKeyPath },
    listeners: {
      admin: "127.0.0.1:0",
      metrics: "127.0.0.1:0",
      readiness: "127.0.0.1:0",
      socks5: `${ip(1)}:15080`,
      inboundPlaintextPort: 15006,
    },
    timeouts: { drain: "1s" },
    workloads: [
      {
        name: "client",
        namespace: "default",
        serviceAccount: "client",
        address: ip(2),
        labels: { app: "client" },
      },
      wl("web", 3, WEB_PORT),
      wl("grpc", 4, GRPC_PORT),
    ],
    services: [svc("web", 3, 100, WEB_PORT, "HTTP"), svc("grpc", 4, 101, GRPC_PORT, "GRPC")],
    configDir,
  };
}

const AUTHZ = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: default }
spec:
  selector: { matchLabels: { app: web } }
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]
`;

export async function startFuzzNode(opts: { bun?: string | undefined }): Promise<FuzzNode> {
  const ip = loopbackBlock();
  const pki = await createTestPki();
  const client = await pki.good("spiffe://cluster.local/ns/default/sa/client");
  const stopUpstreams = await upstreams(ip(3), ip(4));
  const configDir = join(pki.dir, "istio");
  await Deno.mkdir(configDir);
  await Deno.writeTextFile(join(configDir, "authz.yaml"), AUTHZ);
  const config = fuzzConfig(ip, pki, configDir);
  const configPath = join(pki.dir, "weft.yaml");
  await Deno.writeTextFile(configPath, stringify(config));
  // Every weft under attack runs at the lowest priority: the box is shared with benchmarks.
  const command = (argv: readonly string[]): [string, string[]] => {
    const [prog, args] = weftCommand(argv, opts.bun);
    return ["nice", ["-n", "19", prog, ...args]];
  };
  const proc = await startWeft(["run", "--config", configPath], { command, timeoutMs: 90_000 });
  const pid = proc.child.pid;
  const node: FuzzNode = {
    proc,
    pki,
    client,
    ip,
    clientIp: ip(2),
    webIp: ip(3),
    grpcIp: ip(4),
    webVip: ip(100),
    grpcVip: ip(101),
    socks5: `${ip(1)}:15080`,
    configPath,
    config,
    rssBytes: () => {
      try {
        const s = Deno.readTextFileSync(`/proc/${pid}/status`);
        return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0) * 1024;
      } catch {
        return 0;
      }
    },
    suspicious: () => {
      const bad = proc.lines.filter((l) => l.msg === UNHANDLED_ERROR_MSG).map((l) =>
        JSON.stringify(l)
      );
      for (const line of proc.stderrText().split("\n")) {
        if (!line.trim() || line.startsWith("{")) continue;
        bad.push(line);
      }
      for (const line of proc.stderrText().split("\n")) {
        if (/Unhandled|uncaught|panic|^\s+at /i.test(line) && line.startsWith("{")) {
          // A JSON log record that carries a stack or names an uncaught error.
          if (/"stack"|Uncaught|uncaught/.test(line)) bad.push(line);
        }
      }
      return [...new Set(bad)];
    },
    legit: (timeoutMs = 1000) => legitRequest(ip(100), ip(2), timeoutMs),
    alive: () => !exited.done,
    stop: async () => {
      try {
        await proc.stop();
      } finally {
        await stopUpstreams();
        await pki.dispose();
      }
    },
  };
  const exited = { done: false };
  proc.exited.then(() => (exited.done = true));
  return node;
}

/** GET through the VIP as the client workload; resolves with ms or an error text. */
export function legitRequest(
  vip: string,
  from: string,
  timeoutMs: number,
): Promise<number | string> {
  const t0 = performance.now();
  return new Promise((resolve0) => {
    // A hard bound besides the socket's idle timeout: the check itself must never hang.
    const hard = setTimeout(() => {
      req.destroy();
      resolve(`no answer within ${timeoutMs} ms`);
    }, timeoutMs);
    const resolve = (r: number | string) => {
      clearTimeout(hard);
      resolve0(r);
    };
    const req = http.request({
      host: vip,
      port: 80,
      path: "/legit",
      localAddress: from,
      agent: false,
      headers: { connection: "close" },
      timeout: timeoutMs,
    }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => {
        if (res.statusCode === 200 && body.includes("/legit")) {
          resolve(Math.round(performance.now() - t0));
        } else resolve(`status ${res.statusCode}: ${body.slice(0, 200)}`);
      });
      res.on("error", (e) => resolve(`response error: ${e.message}`));
    });
    req.on("timeout", () => {
      req.destroy();
      resolve(`no answer within ${timeoutMs} ms`);
    });
    req.on("error", (e) => resolve(`request error: ${e.message}`));
    req.end();
  });
}
