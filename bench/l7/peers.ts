// deno-lint-ignore-file no-console
/**
 * What the L7 benches (l7_vs_nginx.ts, l7_ab.ts) share: a free loopback port, one wrk run, and
 * the nginx pair every proxy is measured against — an nginx upstream answering "ok" and an nginx
 * reverse proxy (1 worker, keep-alive pool of 64) in front of it. Loopback only.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import net from "node:net";

export function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => r(p));
    });
  });
}

export interface Wrk {
  rps: number;
  p50: string;
  p99: string;
}

/** wrk -t2 -c32 for `seconds` against `url`; non-2xx answers or socket errors are printed. */
export async function wrk(url: string, seconds: string): Promise<Wrk> {
  const out = await new Deno.Command("wrk", {
    args: ["-t2", "-c32", `-d${seconds}s`, "--latency", url],
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(text)?.[0];
  if (errors) console.error(`  wrk ${url}: ${errors}`);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0),
    p50: /^\s+50%\s+(\S+)/m.exec(text)?.[1] ?? "?",
    p99: /^\s+99%\s+(\S+)/m.exec(text)?.[1] ?? "?",
  };
}

export interface NginxPair {
  /** The nginx upstream every proxy forwards to. */
  readonly upPort: number;
  /** The nginx reverse proxy in front of it. */
  readonly proxyPort: number;
  stop(): Promise<void>;
}

/** Starts the nginx upstream and reverse proxy (one process) in a fresh temp dir; resolves once
 * the reverse proxy answers. */
export async function startNginxPair(prefix: string): Promise<NginxPair> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const [upPort, proxyPort] = [await freePort(), await freePort()];
  writeFileSync(
    join(dir, "nginx.conf"),
    `
worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  upstream up { server 127.0.0.1:${upPort}; keepalive 64; }
  server { listen 127.0.0.1:${upPort}; location / { return 200 "ok\\n"; } }
  server { listen 127.0.0.1:${proxyPort};
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}`,
  );
  const nginx = new Deno.Command("nginx", {
    args: ["-c", join(dir, "nginx.conf"), "-p", dir],
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 50; i++) { // wait for nginx's listener
    const ok = await fetch(`http://127.0.0.1:${proxyPort}/`).then((r) => r.text()).then(
      () => true,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    upPort,
    proxyPort,
    async stop() {
      nginx.kill("SIGTERM");
      await nginx.status;
    },
  };
}

/** The first stdout line of bench/l7/l7_proxy_server.ts that names its port (on Bun a log line
 * about jco's worker may come first); `what` names the proxy if it exits before. */
export async function proxyReadyLine(child: Deno.ChildProcess, what: string): Promise<string> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  while (!/"port":\d+.*\n/.test(line)) {
    const r = await reader.read();
    if (r.done) throw new Error(`${what} exited: ${line}`);
    line += r.value;
  }
  reader.cancel().catch(() => {});
  return line;
}
