/**
 * Helpers for bench/l4.ts: certificates (openssl), peer configs (stunnel4, haproxy, nginx), weft
 * node configs, child processes and /proc RSS readings. Bench-only.
 */
import * as net from "node:net";
import process from "node:process";
import type { Service, Snapshot, Workload } from "../src/core/snapshot.ts";

/** Loopback block of the bench addresses: WEFT_BENCH_NET=127.81 lets two people on one box run
 * L4 benches at once (default 127.79). */
export const NET = process.env.WEFT_BENCH_NET ?? "127.79";
export const IP = {
  client: `${NET}.0.2`,
  server: `${NET}.0.3`,
  vip: `${NET}.0.100`,
  stunnelC: `${NET}.0.10`,
  stunnelS: `${NET}.0.11`,
  haproxyC: `${NET}.0.20`,
  haproxyS: `${NET}.0.21`,
} as const;
export const PORT = {
  iperf: 5201,
  http: 8080,
  echo: 9000,
  tunnelIn: 7000,
  tunnelOut: 7001,
} as const;

async function sh(cmd: string, args: string[], cwd: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** A P-256 CA and two SPIFFE leaves (client, server) with openssl, in `dir`. */
export async function makeCerts(dir: string): Promise<void> {
  await sh(
    "openssl",
    ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.ec"],
    dir,
  );
  await sh("openssl", ["pkcs8", "-topk8", "-nocrypt", "-in", "ca.ec", "-out", "ca.key"], dir);
  await sh("openssl", [
    "req",
    "-x509",
    "-new",
    "-key",
    "ca.key",
    "-sha256",
    "-days",
    "2",
    "-subj",
    "/O=weft-bench",
    "-addext",
    "basicConstraints=critical,CA:true",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-out",
    "ca.pem",
  ], dir);
  for (const name of ["client", "server"]) {
    await sh("openssl", [
      "ecparam",
      "-name",
      "prime256v1",
      "-genkey",
      "-noout",
      "-out",
      `${name}.ec`,
    ], dir);
    await sh(
      "openssl",
      ["pkcs8", "-topk8", "-nocrypt", "-in", `${name}.ec`, "-out", `${name}.key`],
      dir,
    );
    await sh("openssl", [
      "req",
      "-new",
      "-key",
      `${name}.key`,
      "-subj",
      `/O=${name}`,
      "-out",
      `${name}.csr`,
    ], dir);
    Deno.writeTextFileSync(
      `${dir}/${name}.ext`,
      `subjectAltName=critical,URI:spiffe://cluster.local/ns/default/sa/${name}\n` +
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n",
    );
    await sh("openssl", [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "1",
      "-sha256",
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.pem`,
    ], dir);
    Deno.writeTextFileSync(
      `${dir}/${name}.bundle.pem`,
      Deno.readTextFileSync(`${dir}/${name}.pem`) + Deno.readTextFileSync(`${dir}/${name}.key`),
    );
  }
}

export function stunnelConf(dir: string, side: "client" | "server", upstream: string): string {
  const accept = side === "client"
    ? `${IP.stunnelC}:${PORT.tunnelIn}`
    : `${IP.stunnelS}:${PORT.tunnelOut}`;
  const connect = side === "client" ? `${IP.stunnelS}:${PORT.tunnelOut}` : upstream;
  return [
    "foreground = yes",
    `pid =`,
    "debug = 5",
    `[${side}]`,
    `client = ${side === "client" ? "yes" : "no"}`,
    `accept = ${accept}`,
    `connect = ${connect}`,
    `cert = ${dir}/${side}.pem`,
    `key = ${dir}/${side}.key`,
    `CAfile = ${dir}/ca.pem`,
    "verifyChain = yes",
    "sslVersionMin = TLSv1.3",
    "",
  ].join("\n");
}

export function haproxyConf(dir: string, upstream: string): string {
  return `global
  maxconn 9000
  log stdout format raw local0 err
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend c
  bind ${IP.haproxyC}:${PORT.tunnelIn}
  default_backend c_out
backend c_out
  server s ${IP.haproxyS}:${PORT.tunnelOut} ssl crt ${dir}/client.bundle.pem ca-file ${dir}/ca.pem verify required ssl-min-ver TLSv1.3 alpn h2
frontend s
  bind ${IP.haproxyS}:${PORT.tunnelOut} ssl crt ${dir}/server.bundle.pem ca-file ${dir}/ca.pem verify required ssl-min-ver TLSv1.3
  default_backend s_out
backend s_out
  server u ${upstream}
`;
}

export function nginxConf(dir: string): string {
  return `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/nb; proxy_temp_path ${dir}/np; fastcgi_temp_path ${dir}/nf;
  uwsgi_temp_path ${dir}/nu; scgi_temp_path ${dir}/ns;
  keepalive_requests 1000000;
  server { listen ${IP.server}:${PORT.http}; location / { return 200 "ok\\n"; } }
}
`;
}

/** weft.yaml for node A (client side, VIP capture) or node B (server side). */
export function weftConfig(dir: string, side: "a" | "b"): string {
  const ip = side === "a" ? IP.client : IP.server;
  const common = `node:
  name: bench-${side}
  trustDomain: cluster.local
  hbonePort: 15008
${side === "a" ? "  defaultSourceWorkload: client\n" : ""}ca:
  mode: files
  certFile: ${dir}/ca.pem
  keyFile: ${dir}/ca.key
listeners:
  admin: ${ip}:15000
  metrics: ${ip}:15020
  readiness: ${ip}:15021
  socks5: ""
timeouts: { connect: 10s, idle: 1h, drain: 1s }
limits: { maxConnections: 100000, poolMaxStreamsPerConnection: 100 }
`;
  if (side === "b") {
    return common + `workloads:
  - { name: server, namespace: default, serviceAccount: server, address: ${IP.server}, ports: [${PORT.iperf}, ${PORT.http}, ${PORT.echo}] }
`;
  }
  const svc = (name: string, port: number, target: number): string =>
    `  - name: ${name}
    namespace: default
    vips: [${IP.vip}]
    ports: [{ port: ${port}, targetPort: ${target} }]
    endpoints:
      - { workload: server, namespace: default, serviceAccount: server, address: ${IP.server}, hboneAddress: "${IP.server}:15008" }
`;
  return common + `workloads:
  - { name: client, namespace: default, serviceAccount: client, address: ${IP.client} }
services:
${svc("iperf", PORT.iperf, PORT.iperf)}${svc("http", 80, PORT.http)}${
    svc("echo", PORT.echo, PORT.echo)
  }`;
}

export interface Proc {
  readonly pid: number;
  readonly child: Deno.ChildProcess;
  stop(): Promise<void>;
}

/** Spawn; when `readyText` is given, resolve once a stdout/stderr line contains it. */
export async function spawn(
  cmd: string,
  args: string[],
  opts: {
    readyText?: string;
    env?: Record<string, string>;
    cwd?: string;
    /** Every chunk of stdout/stderr as text (e.g. to count JSC's logGC lines). */
    onText?: (text: string) => void;
  } = {},
): Promise<Proc> {
  const child = new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  }).spawn();
  let seen: () => void = () => {};
  const ready = new Promise<void>((r) => seen = r);
  let tail = "";
  const watch = async (s: ReadableStream<Uint8Array>): Promise<void> => {
    const dec = new TextDecoder();
    for await (const chunk of s) {
      if (!opts.readyText && !opts.onText) continue;
      const text = dec.decode(chunk, { stream: true });
      opts.onText?.(text);
      if (!opts.readyText) continue;
      // Checked before trimming: a chunk may carry the ready line and more than the 4 KiB kept.
      if ((tail + text).includes(opts.readyText)) seen();
      tail = (tail + text).slice(-4096);
    }
  };
  void watch(child.stdout);
  void watch(child.stderr);
  if (opts.readyText) {
    const exited = child.status.then((s) => {
      throw new Error(`${cmd} exited (${s.code}) before ready: ${tail}`);
    });
    await Promise.race([ready, exited]);
  }
  return {
    pid: child.pid,
    child,
    stop: async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      // A process that ignores SIGTERM (or drains too long) must not outlive the bench.
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 3000);
      await child.status;
      clearTimeout(timer);
    },
  };
}

/** Resolve when host:port accepts a TCP connection (bounded). */
export async function waitPort(host: string, port: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect({ host, port }, () => {
        s.destroy();
        r(true);
      });
      s.on("error", () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${host}:${port} never accepted connections`);
}

/** VmRSS and VmHWM (peak) of a process, in MB. */
export function rssMb(pid: number): { rss: number; peak: number } {
  const s = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

export async function iperf(
  host: string,
  port: number,
  seconds: number,
  bind?: string,
): Promise<number> {
  const args = [
    "-c",
    host,
    "-p",
    String(port),
    "-t",
    String(seconds),
    "-J",
    ...(bind ? ["-B", bind] : []),
  ];
  const text = await sh("iperf3", args, "/tmp").catch((e) => String(e));
  const out = JSON.parse(text.slice(text.indexOf("{")));
  if (out.error) throw new Error(`iperf3 ${host}:${port}: ${out.error}`);
  return out.end.sum_received.bits_per_second / 1e9;
}

export interface WrkResult {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
}

function ms(v: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(v);
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "s" ? n * 1000 : n;
}

export async function wrk(url: string, seconds: number): Promise<WrkResult> {
  const out = await sh("wrk", ["-t2", "-c32", `-d${seconds}s`, "--latency", url], "/tmp");
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const p50 = ms(/\s50%\s+(\S+)/.exec(out)?.[1] ?? "");
  const p99 = ms(/\s99%\s+(\S+)/.exec(out)?.[1] ?? "");
  return { rps, p50, p99 };
}

const ident = (sa: string): string => `spiffe://cluster.local/ns/default/sa/${sa}`;

/** The same two-node layout as weftConfig, as a core Snapshot (for bench/l4_node.ts). */
export function benchSnapshot(side: "a" | "b"): Snapshot {
  const wl = (name: string, address: string, ports: number[]): Workload => ({
    name,
    namespace: "default",
    serviceAccount: name,
    identity: ident(name),
    address,
    ports,
    labels: {},
    mtlsMode: "PERMISSIVE",
  });
  const svc = (name: string, port: number, target: number): Service => ({
    name,
    namespace: "default",
    hostname: `${name}.default.svc.cluster.local`,
    vips: [IP.vip],
    ports: [{ port, targetPort: target, protocol: "TCP", name: "tcp" }],
    endpoints: [{
      workload: "server",
      namespace: "default",
      address: IP.server,
      hboneAddress: `${IP.server}:15008`,
      node: "b",
      identity: ident("server"),
      labels: {},
      weight: 1,
    }],
    subsets: [],
    outboundFilters: [],
    inboundFilters: [],
  });
  return {
    version: "1",
    node: { name: `bench-${side}`, hbonePort: 15008, trustDomain: "cluster.local", network: "" },
    rootNamespace: "istio-system",
    workloads: side === "a"
      ? [wl("client", IP.client, [])]
      : [wl("server", IP.server, [PORT.iperf, PORT.http, PORT.echo])],
    services: side === "a"
      ? [
        svc("iperf", PORT.iperf, PORT.iperf),
        svc("http", 80, PORT.http),
        svc("echo", PORT.echo, PORT.echo),
      ]
      : [],
    policies: [],
    outboundTrafficPolicy: "ALLOW_ANY",
    timeouts: { connectMs: 10_000, idleMs: 3_600_000, drainMs: 1000 },
    limits: { maxConnections: 100_000, poolMaxStreamsPerConnection: 100, poolIdleMs: 300_000 },
    capture: { socks5: "", defaultSourceWorkload: side === "a" ? "client" : undefined },
  };
}
