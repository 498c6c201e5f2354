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

/** Istio manifests: two Pods, a Service, subsets, a VirtualService with an optional first route
 * that only requests with `x-user: jason` take (bookinfo's ratings-test-abort shape). */
function mesh(port: number, v2: number, fault: string): string {
  return `
apiVersion: v1
kind: Pod
metadata: { name: echo-1, namespace: default, labels: { app: echo, version: v1 } }
spec: { nodeName: node-a }
status: { podIP: 127.0.5.1 }
---
apiVersion: v1
kind: Pod
metadata: { name: echo-2, namespace: default, labels: { app: echo, version: v2 } }
spec: { nodeName: node-b }
status: { podIP: 127.0.5.2 }
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec:
  selector: { app: echo }
  ports: [{ name: grpc, port: 80, targetPort: ${port} }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: default }
spec:
  host: echo
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: default }
spec:
  hosts: [echo]
  http:
${
    fault
      ? `    - match: [{ headers: { x-user: { exact: jason } } }]
      route: [{ destination: { host: echo, subset: v1 } }]
      ${fault}
`
      : ""
  }    - route:
        - { destination: { host: echo, subset: v1 }, weight: ${100 - v2} }
        - { destination: { host: echo, subset: v2 }, weight: ${v2} }
`;
}

function call(client: grpc.Client, user = ""): Promise<string> {
  const md = new grpc.Metadata();
  if (user) md.set("x-user", user);
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      PATH,
      raw,
      raw,
      Buffer.alloc(0),
      md,
      (err, res) => resolve(err ? `error:${grpc.status[err.code]}` : res!.toString()),
    )
  );
}

async function tally(
  client: grpc.Client,
  n: number,
  user = "",
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const who = await call(client, user);
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

      // A header-matched route with its own fault (Istio's string gRPC status), as
      // typed_per_filter_config on that route: only matching requests fail.
      await writeAtomic(
        path,
        mesh(
          a.port,
          0,
          'fault: { abort: { grpcStatus: "UNAVAILABLE", percentage: { value: 100 } } }',
        ),
      );
      await cp.reload();
      let faulted: Record<string, number> = {};
      const until2 = Date.now() + 10_000;
      while (Date.now() < until2 && faulted["error:UNAVAILABLE"] !== 5) {
        faulted = await tally(client, 5, "jason");
      }
      assert.deepEqual(faulted, { "error:UNAVAILABLE": 5 }, "fault on the matching route");
      assert.deepEqual(await tally(client, 10), { v1: 10 }, "other requests untouched");
    } finally {
      client.close();
      await cp.close();
      a.server.forceShutdown();
      b.server.forceShutdown();
      await rm(dir, { recursive: true });
    }
  },
});
