/**
 * Two real weft nodes for L7 probes: a client at ip(2) → node A (outbound L7) → HBONE mTLS →
 * node B (inbound chain from Istio YAML in a config dir) → an HTTP workload at ip(3) that echoes
 * what it got. Each extra service is another VIP on A in front of the same workload.
 */
import { connect } from "node:net";
import { stringify } from "yaml";
import { join } from "node:path";
import { startHttpWorkload } from "./http_workload.ts";
import { LISTENERS, loopbackBlock, NO_TOOLS_PATH, startWeft, type WeftProc } from "./weft_proc.ts";

const PORT = 18080;

export interface TwoNodes {
  /** Node B (the inbound side). */
  readonly b: WeftProc;
  /** One raw HTTP/1.1 request (head text without Host, then `body`) to service `i`'s VIP from
   * the client. */
  send(req: string, service?: number, body?: string): Promise<RawResult>;
}

export interface RawResult {
  status: number;
  body: string;
  text: string;
}

export async function withTwoNodes(
  opts: {
    runtime?: string | undefined;
    /** Istio YAML for node B's config dir. */
    istio?: string;
    /** Extra fields per service (`plugins`, ...): one service per entry, named echo, echo1, ... */
    services?: readonly Record<string, unknown>[];
  },
  fn: (t: TwoNodes) => Promise<void>,
): Promise<void> {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-2n-" });
  const echo = await startHttpWorkload(ip(3), PORT, "v1");
  const ca = { mode: "auto", stateDir: join(dir, "ca") };
  const workload = {
    name: "echo",
    namespace: "default",
    serviceAccount: "echo",
    address: ip(3),
    labels: { app: "echo" },
  };
  const services = (opts.services ?? [{}]).map((extra, i) => ({
    name: i === 0 ? "echo" : `echo${i}`,
    namespace: "default",
    ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
    endpoints: [{
      workload: "echo",
      namespace: "default",
      serviceAccount: "echo",
      address: ip(3),
      labels: { app: "echo" },
    }],
    ...extra,
  }));
  await Deno.mkdir(join(dir, "istio"));
  await Deno.writeTextFile(join(dir, "istio", "istio.yaml"), opts.istio ?? "");
  const nodeB = {
    node: { name: "node-b" },
    ca,
    listeners: { ...LISTENERS, captureServiceVips: false },
    workloads: [workload],
    services,
    configDir: join(dir, "istio"),
  };
  const nodeA = {
    node: { name: "node-a", defaultSourceWorkload: "sleep" },
    ca,
    listeners: LISTENERS,
    workloads: [{ name: "sleep", namespace: "default", serviceAccount: "sleep", address: ip(2) }],
    services: services.map((s, i) => {
      const { plugins: _, ...rest } = s as Record<string, unknown>;
      return { ...rest, vips: [ip(100 + i)] };
    }),
  };
  await Deno.writeTextFile(join(dir, "a.yaml"), stringify(nodeA));
  await Deno.writeTextFile(join(dir, "b.yaml"), stringify(nodeB));
  const procs: WeftProc[] = [];
  try {
    const o = {
      env: { PATH: NO_TOOLS_PATH },
      timeoutMs: 60_000,
      ...(opts.runtime ? { runtime: opts.runtime } : {}),
    };
    const b = await startWeft(["run", "--config", join(dir, "b.yaml")], o);
    procs.push(b);
    procs.push(await startWeft(["run", "--config", join(dir, "a.yaml")], o));
    await fn({
      b,
      send: (req, i = 0, body = "") =>
        rawOnce(
          ip(100 + i),
          80,
          `${req}\r\nHost: echo\r\nConnection: close\r\n\r\n${body}`,
          ip(2),
        ),
    });
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** One request on its own connection; the whole response up to the close (5 s at most). */
async function rawOnce(
  host: string,
  port: number,
  req: string,
  localAddress: string,
): Promise<RawResult> {
  const s = connect({ host, port, localAddress });
  s.on("error", () => {});
  await new Promise((r) => s.once("connect", r));
  let text = "";
  s.on("data", (c: Uint8Array) => (text += new TextDecoder().decode(c)));
  const done = new Promise<void>((r) => s.once("close", () => r()));
  s.write(req);
  let t: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([done, new Promise((r) => (t = setTimeout(r, 5000)))]);
  clearTimeout(t);
  s.destroy();
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  const at = text.indexOf("\r\n\r\n");
  let body = at < 0 ? "" : text.slice(at + 4);
  if (/\r\ntransfer-encoding: *chunked/i.test(text.slice(0, at))) body = dechunk(body);
  return { status, body, text };
}

function dechunk(s: string): string {
  let out = "";
  for (let at = 0;;) {
    const nl = s.indexOf("\r\n", at);
    const n = parseInt(s.slice(at, nl), 16);
    if (!(n > 0)) return out;
    out += s.slice(nl + 2, nl + 2 + n);
    at = nl + 2 + n + 2;
  }
}
