/**
 * Interop: @grpc/grpc-js-xds (a third-party SotW ADS client, proxyless gRPC) bootstrapped
 * against weft's control plane resolves `xds:///echo.default.svc.cluster.local:80`, balances
 * across both endpoints, follows a weighted route change and injects a configured fault.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeAtomic } from "./_atomic_write.ts";
import * as grpc from "@grpc/grpc-js";
import { startControlPlane } from "./control_plane/mod.ts";

const PATH = "/weft.test.Echo/Who";
const raw = (b: Buffer): Buffer => b;

async function backend(
  ip: string,
  port: number,
  name: string,
): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService({
    Who: {
      path: PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: raw,
      requestDeserialize: raw,
      responseSerialize: raw,
      responseDeserialize: raw,
    },
  }, { Who: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(name)) });
  const bound = await new Promise<number>((res, rej) =>
    server.bindAsync(
      `${ip}:${port}`,
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? rej(e) : res(p),
    )
  );
  return { server, port: bound };
}

function mesh(port: number, v2: number, fault: string): string {
  return `
workloads:
  - { name: echo-1, address: 127.0.5.1, node: node-a, labels: { app: echo, version: v1 } }
  - { name: echo-2, address: 127.0.5.2, node: node-b, labels: { app: echo, version: v2 } }
services:
  - name: echo
    ports: [{ port: 80, targetPort: ${port}, protocol: GRPC }]
    subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
    http:
      - route:
          - { destination: { subset: v1 }, weight: ${100 - v2} }
          - { destination: { subset: v2 }, weight: ${v2} }
        ${fault}
`;
}

function call(client: grpc.Client): Promise<string> {
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      PATH,
      raw,
      raw,
      Buffer.alloc(0),
      (err, res) => resolve(err ? `error:${grpc.status[err.code]}` : res!.toString()),
    )
  );
}

async function tally(client: grpc.Client, n: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const who = await call(client);
    out[who] = (out[who] ?? 0) + 1;
  }
  return out;
}

Deno.test({
  name: "interop: @grpc/grpc-js-xds resolves, balances, follows weights, injects faults",
  // grpc-js-xds keeps module-level timers (resource watchers) beyond the channel's life.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const a = await backend("127.0.5.1", 0, "v1");
    const b = await backend("127.0.5.2", a.port, "v2");
    const dir = await mkdtemp(join(tmpdir(), "weft-interop-"));
    const path = join(dir, "mesh.yaml");
    await writeAtomic(path, mesh(a.port, 50, ""));
    const cp = await startControlPlane({ configPath: path, address: "127.0.0.1:0" });
    Deno.env.set(
      "GRPC_XDS_BOOTSTRAP_CONFIG",
      JSON.stringify({
        xds_servers: [{
          server_uri: cp.address,
          channel_creds: [{ type: "insecure" }],
          server_features: [],
        }],
        node: { id: "grpc-client", cluster: "test", locality: {}, metadata: {} },
      }),
    );
    const xds = await import("@grpc/grpc-js-xds");
    xds.register();
    const client = new grpc.Client(
      "xds:///echo.default.svc.cluster.local:80",
      grpc.credentials.createInsecure(),
    );
    try {
      const even = await tally(client, 40);
      assert.ok(
        (even["v1"] ?? 0) > 5 && (even["v2"] ?? 0) > 5,
        `balanced: ${JSON.stringify(even)}`,
      );

      await writeAtomic(path, mesh(a.port, 100, ""));
      await cp.reload();
      let shifted: Record<string, number> = {};
      const until1 = Date.now() + 10_000; // bounded: the push reaches the client asynchronously
      while (Date.now() < until1 && shifted["v2"] !== 10) shifted = await tally(client, 10);
      assert.deepEqual(shifted, { v2: 10 }, "weight change followed");

      // The weights flip too: grpc-js-xds 1.14.1 compares route configs with a one-sided deep
      // equality, so a route that only gains a per-filter override is seen as unchanged, and it
      // does not re-apply HCM filters on a Listener-only update.
      await writeAtomic(
        path,
        mesh(a.port, 0, "fault: { abort: { grpcStatus: 14, percentage: { value: 100 } } }"),
      );
      await cp.reload();
      let faulted: Record<string, number> = {};
      const until2 = Date.now() + 10_000;
      while (Date.now() < until2 && faulted["error:UNAVAILABLE"] !== 5) {
        faulted = await tally(client, 5);
      }
      assert.deepEqual(faulted, { "error:UNAVAILABLE": 5 }, "configured fault injected");
    } finally {
      client.close();
      await cp.close();
      a.server.forceShutdown();
      b.server.forceShutdown();
      await rm(dir, { recursive: true });
    }
  },
});
