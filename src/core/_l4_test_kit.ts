/**
 * Test kit for the L4 data path: snapshots for a two-node mesh on private loopback addresses, an
 * echo upstream, and small socket helpers. Test-only; the data path never imports it.
 */
import * as net from "node:net";
import type { AuthorizationPolicy, Service, Snapshot, Workload } from "./snapshot.ts";
import { NodeProxy } from "./proxy.ts";
import { createTestCa, TestIdentityProvider } from "./test_identity.ts";

export const TD = "cluster.local";

export function workload(name: string, address: string, ports: number[] = []): Workload {
  return {
    name,
    namespace: "default",
    serviceAccount: name,
    identity: `spiffe://${TD}/ns/default/sa/${name}`,
    address,
    ports,
    labels: { app: name },
    mtlsMode: "PERMISSIVE",
  };
}

export function baseSnapshot(over: Partial<Snapshot> & Pick<Snapshot, "workloads">): Snapshot {
  return {
    version: "1",
    node: { name: "node", hbonePort: 15008, trustDomain: TD, network: "" },
    rootNamespace: "istio-system",
    services: [],
    policies: [],
    outboundTrafficPolicy: "ALLOW_ANY",
    timeouts: { connectMs: 2000, idleMs: 0, drainMs: 1000 },
    limits: { maxConnections: 1000, poolMaxStreamsPerConnection: 100, poolIdleMs: 60_000 },
    ...over,
  };
}

export interface Echo {
  readonly port: number;
  readonly server: net.Server;
  close(): Promise<void>;
}

/** TCP echo with half-close: echoes bytes, ends when the client ends. */
export async function startEcho(host: string): Promise<Echo> {
  const socks = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    socks.add(s);
    s.on("error", () => {});
    s.on("close", () => socks.delete(s));
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return {
    port: (server.address() as net.AddressInfo).port,
    server,
    close: () => {
      for (const s of socks) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

export function denyAll(name = "deny-client"): AuthorizationPolicy {
  return {
    name,
    namespace: "default",
    selector: undefined,
    action: "DENY",
    dryRun: false,
    rules: [{ from: [{ source: { principals: [`${TD}/ns/default/sa/client`] } }] }],
  };
}

/** A two-node mesh: node A hosts "client", node B hosts "server" behind service "echo". */
export interface Mesh {
  readonly ids: TestIdentityProvider;
  readonly a: NodeProxy;
  readonly b: NodeProxy;
  readonly echo: Echo;
  readonly vip: string;
  readonly socks: string;
  readonly clientIp: string;
  readonly serverIp: string;
  snapA(over?: Partial<Snapshot>): Snapshot;
  snapB(over?: Partial<Snapshot>): Snapshot;
  close(): Promise<void>;
}

/** `octet` keeps parallel test files on distinct loopback addresses (127.77.<octet>.x). */
export async function startMesh(
  octet: number,
  overA: Partial<Snapshot> = {},
  overB: Partial<Snapshot> = {},
): Promise<Mesh> {
  const clientIp = `127.77.${octet}.2`;
  const serverIp = `127.77.${octet}.3`;
  const vip = `127.77.${octet}.100`;
  const socks = `127.77.${octet}.1:15080`;
  const ids = new TestIdentityProvider(await createTestCa());
  const echo = await startEcho(serverIp);
  const server = workload("server", serverIp, [echo.port]);
  const svc: Service = {
    name: "echo",
    namespace: "default",
    hostname: "echo.default.svc.cluster.local",
    vips: [vip],
    ports: [{ port: 80, targetPort: echo.port, protocol: "TCP", name: "tcp" }],
    endpoints: [{
      workload: "server",
      namespace: "default",
      address: serverIp,
      hboneAddress: `${serverIp}:15008`,
      node: "b",
      identity: server.identity,
      labels: {},
      weight: 1,
    }],
    subsets: [],
    outboundFilters: [],
    inboundFilters: [],
  };
  const snapA = (over: Partial<Snapshot> = {}): Snapshot =>
    baseSnapshot({
      workloads: [workload("client", clientIp)],
      services: [svc],
      capture: { socks5: socks },
      ...overA,
      ...over,
    });
  const snapB = (over: Partial<Snapshot> = {}): Snapshot =>
    baseSnapshot({
      workloads: [server],
      services: [svc],
      capture: { socks5: "", serviceVips: false },
      ...overB,
      ...over,
    });
  const a = new NodeProxy({ snapshot: snapA(), identity: ids });
  const b = new NodeProxy({ snapshot: snapB(), identity: ids });
  await a.start();
  await b.start();
  return {
    ids,
    a,
    b,
    echo,
    vip,
    socks,
    clientIp,
    serverIp,
    snapA,
    snapB,
    close: async () => {
      await a.close();
      await b.close();
      await echo.close();
    },
  };
}

/** Connect from `localAddress` (the bind-address source identification). */
export function dial(host: string, port: number, localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({
      host,
      port,
      allowHalfOpen: true,
      ...(localAddress ? { localAddress } : {}),
    });
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

/** Write `data`, half-close, and collect everything until the peer ends or closes. */
export function roundTrip(s: net.Socket, data: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    s.on("data", (c: Uint8Array) => chunks.push(c));
    s.on("error", reject);
    s.on("close", () => {
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let o = 0;
      for (const c of chunks) {
        out.set(c, o);
        o += c.length;
      }
      resolve(out);
    });
    s.end(data);
    s.resume();
  });
}

/** Resolves when the socket closes (with whether it saw a clean end). */
export function closed(s: net.Socket): Promise<{ ended: boolean }> {
  let ended = false;
  s.on("end", () => {
    ended = true;
    s.end();
  });
  s.on("error", () => {});
  s.resume();
  return new Promise((r) => s.once("close", () => r({ ended })));
}
