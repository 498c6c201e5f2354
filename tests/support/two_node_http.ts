/**
 * Two real weft nodes for L7 probes: a client at ip(2) → node A (outbound L7) → HBONE mTLS →
 * node B (inbound chain from Istio YAML in a config dir) → an HTTP workload at ip(3) that echoes
 * what it got. Each extra service is another VIP on A in front of the same workload.
 */
import { connect } from "node:net";
import { startHttpWorkload } from "./http_workload.ts";
import { loopbackBlock, NO_TOOLS_PATH, type WeftProc } from "./weft_proc.ts";
import { nodeAConfig, nodeBConfig, withNodesAB, writeIstio } from "./two_nodes.ts";

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
  await writeIstio(dir, { "istio.yaml": opts.istio ?? "" });
  const nodeB = nodeBConfig(dir, [workload], services);
  const nodeA = nodeAConfig(
    dir,
    ip,
    services.map((s, i) => {
      const { plugins: _, ...rest } = s as Record<string, unknown>;
      return { ...rest, vips: [ip(100 + i)] };
    }),
  );
  try {
    const o = { env: { PATH: NO_TOOLS_PATH }, timeoutMs: 60_000, runtime: opts.runtime };
    await withNodesAB(dir, nodeA, nodeB, o, (_a, b) =>
      fn({
        b,
        send: (req, i = 0, body = "") =>
          rawOnce(
            ip(100 + i),
            80,
            `${req}\r\nHost: echo\r\nConnection: close\r\n\r\n${body}`,
            ip(2),
          ),
      }));
  } finally {
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
