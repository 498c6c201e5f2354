/**
 * A two-node mesh on loopback for integration tests: node A hosts the "sleep" client workload and
 * captures service "echo" on a VIP; node B hosts the "echo" workload with a TCP echo upstream.
 * Both are real `weft run` processes sharing one CA (files from the test PKI).
 */
import { stringify } from "yaml";
import { join } from "node:path";
import { connect, type Socket } from "node:net";
import { type EchoServer, startEcho } from "./echo_server.ts";
import { LISTENERS, loopbackBlock, startWeft, type WeftProc } from "./weft_proc.ts";
import { createTestPki, type TestPki } from "./test_ca.ts";

export interface Mesh {
  readonly pki: TestPki;
  readonly a: WeftProc;
  readonly b: WeftProc | undefined;
  readonly clientIp: string;
  readonly echoIp: string;
  readonly vip: string;
  readonly echo: EchoServer;
  readonly configA: string;
  readonly configB: string;
  readonly nodeB: Record<string, unknown>;
  /** Rewrite node B's config file (weft applies edits live). */
  writeB(cfg: Record<string, unknown>): Promise<void>;
  /** Connect as the client workload to the echo service VIP. */
  dial(): Promise<Socket>;
  stop(): Promise<void>;
}

export interface MeshOptions {
  readonly policiesB?: unknown[];
  readonly certificates?: Record<string, unknown>;
  readonly timeouts?: Record<string, unknown>;
  readonly limits?: Record<string, unknown>;
  /** A bun binary: run both nodes on Bun instead of Deno. */
  readonly runtime?: string;
  readonly env?: Record<string, string>;
  /** Start node B (default true); false leaves its addresses free for an impostor. */
  readonly startB?: boolean;
  /** A test PKI made beforehand (certificates known before the nodes start); disposed by stop. */
  readonly pki?: TestPki;
}

/** weft.yaml for the two nodes: A hosts "sleep" and captures "echo" on `vip`; B hosts "echo".
 * `common` (ca, listeners, limits…) goes into both. */
export function meshConfigs(p: {
  clientIp: string;
  echoIp: string;
  vip: string;
  echoPort: number;
  common: Record<string, unknown>;
  policiesB?: unknown[];
}): { nodeA: Record<string, unknown>; nodeB: Record<string, unknown> } {
  const nodeA = {
    node: { name: "node-a" },
    ...p.common,
    workloads: [{
      name: "sleep",
      namespace: "default",
      serviceAccount: "sleep",
      address: p.clientIp,
    }],
    services: [{
      name: "echo",
      namespace: "default",
      vips: [p.vip],
      ports: [{ port: 80, targetPort: p.echoPort }],
      endpoints: [{
        workload: "echo",
        namespace: "default",
        serviceAccount: "echo",
        address: p.echoIp,
        node: "node-b",
      }],
    }],
  };
  const nodeB: Record<string, unknown> = {
    node: { name: "node-b" },
    ...p.common,
    workloads: [{
      name: "echo",
      namespace: "default",
      serviceAccount: "echo",
      address: p.echoIp,
      labels: { app: "echo" },
    }],
    authorizationPolicies: p.policiesB ?? [],
  };
  return { nodeA, nodeB };
}

export async function startMesh(opts: MeshOptions = {}): Promise<Mesh> {
  const ip = loopbackBlock();
  const clientIp = ip(2);
  const echoIp = ip(3);
  const vip = ip(100);
  const pki = opts.pki ?? await createTestPki();
  const echo = await startEcho(echoIp);
  const ca = { mode: "files", certFile: pki.rootsPath, keyFile: pki.caKeyPath };
  const common = {
    ca,
    listeners: LISTENERS,
    ...(opts.certificates ? { certificates: opts.certificates } : {}),
    ...(opts.timeouts ? { timeouts: opts.timeouts } : {}),
    ...(opts.limits ? { limits: opts.limits } : {}),
  };
  const { nodeA, nodeB } = meshConfigs({
    clientIp,
    echoIp,
    vip,
    echoPort: echo.port,
    common,
    policiesB: opts.policiesB ?? [],
  });
  const configA = join(pki.dir, "node-a.yaml");
  const configB = join(pki.dir, "node-b.yaml");
  await Deno.writeTextFile(configA, stringify(nodeA));
  await Deno.writeTextFile(configB, stringify(nodeB));
  const env = opts.env ?? {};
  const run = opts.runtime ? { env, runtime: opts.runtime } : { env };
  // Both nodes start together; when one cannot, the other is stopped and the rest released, so a
  // failed start does not leave a process behind for the next test's sanitizers to find.
  const started = await Promise.allSettled([
    startWeft(["run", "--config", configA], run),
    opts.startB === false ? undefined : startWeft(["run", "--config", configB], run),
  ]);
  const failed = started.find((r) => r.status === "rejected");
  if (failed) {
    await Promise.all(started.map((r) => r.status === "fulfilled" ? r.value?.stop() : undefined));
    await echo.close();
    if (!opts.pki) await pki.dispose();
    throw failed.reason;
  }
  const [a, b] = started.map((r) => (r as PromiseFulfilledResult<WeftProc | undefined>).value) as [
    WeftProc,
    WeftProc | undefined,
  ];
  return {
    pki,
    a,
    b,
    clientIp,
    echoIp,
    vip,
    echo,
    configA,
    configB,
    nodeB,
    writeB: (cfg) => Deno.writeTextFile(configB, stringify(cfg)),
    dial: () =>
      new Promise((resolve, reject) => {
        const s = connect({ host: vip, port: 80, localAddress: clientIp });
        s.once("connect", () => resolve(s));
        s.once("error", reject);
      }),
    async stop() {
      await Promise.all([a.stop(), b?.stop()]);
      await echo.close();
      await pki.dispose();
    },
  };
}

/** Write `data`, read back exactly as many bytes (echo), resolve with them. */
export function roundTrip(s: Socket, data: Uint8Array, timeoutMs = 10_000): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let n = 0;
    const t = setTimeout(
      () => reject(new Error(`round trip timed out after ${n}/${data.length} bytes`)),
      timeoutMs,
    );
    const onData = (c: Uint8Array) => {
      chunks.push(c);
      n += c.length;
      if (n >= data.length) {
        clearTimeout(t);
        s.off("data", onData);
        const out = new Uint8Array(n);
        let o = 0;
        for (const c of chunks) out.set(c, o), o += c.length;
        resolve(out);
      }
    };
    s.on("data", onData);
    s.once("close", () => {
      clearTimeout(t);
      if (n < data.length) reject(new Error(`closed after ${n}/${data.length} bytes`));
    });
    s.write(data);
  });
}

/** Resolves when the socket closes (with whether it saw an error), or rejects on timeout. */
export function closed(s: Socket, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (s.destroyed) return resolve();
    const t = setTimeout(() => reject(new Error("socket not closed in time")), timeoutMs);
    s.on("error", () => {});
    s.once("close", () => {
      clearTimeout(t);
      resolve();
    });
  });
}

export async function scrape(proc: WeftProc): Promise<string> {
  const r = await fetch(`http://${proc.ready.metrics}/stats/prometheus`);
  return await r.text();
}

/** Sum of a metric's samples whose label text contains every `parts` entry. */
export function metricSum(text: string, name: string, ...parts: string[]): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) continue;
    if (parts.every((p) => line.includes(p))) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}
