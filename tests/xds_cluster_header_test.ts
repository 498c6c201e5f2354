/**
 * Envoy RouteAction `cluster_header` and WeightedCluster `cluster_header` /
 * `random_value_specifier.header_name` on xDS nodes, real processes: an ADS server sends the
 * routes weft's control plane builds for a two-subset service, with its RouteConfiguration
 * rewritten to take the cluster from a request header; the nodes route by it (a missing or
 * unknown cluster answers 503 `cluster_not_found` as Envoy's router, NC), and pick a weighted
 * cluster from the header's number (value % total weight), on Deno and Bun.
 */
import { request } from "node:http";
import { join } from "node:path";
import { stringify } from "yaml";
import { create, fromBinary } from "@bufbuild/protobuf";
import { type Any, anyPack } from "@bufbuild/protobuf/wkt";
import { assertEquals } from "./support/assert.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { meshManifests } from "./support/istio_manifests.ts";
import { startStaticAds, type StaticAds } from "./support/static_ads.ts";
import {
  bunPath,
  LISTENERS,
  loopbackBlock,
  startWeft,
  type WeftProc,
} from "./support/weft_proc.ts";
import { readyStatus } from "./support/xds_nodes.ts";
import { RouteConfigurationSchema } from "../src/xds/proto.ts";
import { RouteSchema } from "../src/xds/gen/envoy/config/route/v3/route_components_pb.ts";
import { buildNode } from "../src/xds/control_plane/build.ts";
import { parseMesh } from "../src/xds/control_plane/mesh.ts";
import { ROUTE } from "../src/xds/type_urls.ts";

const PORT = 18080;
const HOST = "echo.default.svc.cluster.local";
const V1 = `outbound|80|v1|${HOST}`;
const V2 = `outbound|80|v2|${HOST}`;

function mesh(ip: (n: number) => string) {
  return {
    workloads: [
      { name: "sleep", serviceAccount: "sleep", address: ip(2), node: "node-a" },
      ...[["v1", 3], ["v2", 4]].map(([v, n]) => ({
        name: `echo-${v}`,
        serviceAccount: "echo",
        address: ip(n as number),
        node: "node-b",
        labels: { app: "echo", version: v as string },
      })),
    ],
    services: [{
      name: "echo",
      vips: [ip(100)],
      ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
      subsets: [{ name: "v1", labels: { version: "v1" } }, {
        name: "v2",
        labels: { version: "v2" },
      }],
      // Both subset clusters in CDS; the route is replaced below.
      http: [{ route: [{ destination: { host: "echo", subset: "v1" } }] }, {
        route: [{ destination: { host: "echo", subset: "v2" } }],
      }],
    }],
  };
}

/** The echo route table: /h by `x-cluster`, /w split 1:1 between v1 and `x-cluster` drawn from
 * `x-rand`, anything else to v1. */
const ROUTES = [
  {
    match: { pathSpecifier: { case: "prefix", value: "/h" } },
    action: {
      case: "route",
      value: { clusterSpecifier: { case: "clusterHeader", value: "X-Cluster" } },
    },
  },
  {
    match: { pathSpecifier: { case: "prefix", value: "/w" } },
    action: {
      case: "route",
      value: {
        clusterSpecifier: {
          case: "weightedClusters",
          value: {
            clusters: [{ name: V1, weight: 1 }, { clusterHeader: "x-cluster", weight: 1 }],
            randomValueSpecifier: { case: "headerName", value: "x-rand" },
          },
        },
      },
    },
  },
  {
    match: { pathSpecifier: { case: "prefix", value: "/" } },
    action: {
      case: "route",
      value: { clusterSpecifier: { case: "cluster", value: V1 } },
    },
  },
];

function resources(ip: (n: number) => string): Map<string, Map<string, Any>> {
  const built = buildNode(parseMesh(meshManifests(mesh(ip))), "node-a");
  const out = new Map<string, Map<string, Any>>();
  for (const [type, m] of built) out.set(type, new Map([...m].map(([n, b]) => [n, b.any])));
  let replaced = 0;
  for (const [name, any] of out.get(ROUTE) ?? []) {
    const rc = fromBinary(RouteConfigurationSchema, any.value);
    for (const vh of rc.virtualHosts) {
      if (!vh.domains.includes(HOST)) continue;
      vh.routes = ROUTES.map((r) => create(RouteSchema, r as never));
      replaced++;
    }
    out.get(ROUTE)!.set(name, anyPack(RouteConfigurationSchema, rc));
  }
  if (replaced === 0) throw new Error("no echo virtual host in the built routes");
  return out;
}

function get(ip: (n: number) => string, path: string, headers: Record<string, string>) {
  return new Promise<{ status: number; version: string; details: string }>((resolve, reject) => {
    const req = request(
      { host: ip(100), port: 80, path, headers, localAddress: ip(2), agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => body += c);
        res.on("end", () => {
          const version = res.statusCode === 200 ? JSON.parse(body).version : "";
          resolve({ status: res.statusCode ?? 0, version, details: body });
        });
      },
    );
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
    req.end();
  });
}

async function run(runtime: string | undefined): Promise<void> {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-xds-cluster-header-" });
  const v1 = await startHttpWorkload(ip(3), PORT, "v1");
  const v2 = await startHttpWorkload(ip(4), PORT, "v2");
  let ads: StaticAds | undefined;
  const nodes: WeftProc[] = [];
  try {
    ads = await startStaticAds(resources(ip));
    for (const name of ["node-a", "node-b"]) {
      const cfg = {
        node: { name },
        ca: { mode: "auto", stateDir: join(dir, "ca") },
        listeners: { ...LISTENERS, captureServiceVips: name === "node-a" },
        xds: { address: ads.address, mode: "sotw" },
      };
      await Deno.writeTextFile(join(dir, `${name}.yaml`), stringify(cfg));
      nodes.push(
        await startWeft(["run", "--config", join(dir, `${name}.yaml`)], {
          timeoutMs: 120_000,
          ...(runtime ? { runtime } : {}),
        }),
      );
    }
    for (const n of nodes) {
      const deadline = Date.now() + 20_000;
      while ((await readyStatus(n)) !== 200 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    let r = await get(ip, "/x", {}).catch(() => ({ status: 0, version: "", details: "" }));
    for (let i = 0; r.status !== 200 && i < 100; i++) {
      await new Promise((res) => setTimeout(res, 100));
      r = await get(ip, "/x", {}).catch(() => ({ status: 0, version: "", details: "" }));
    }
    assertEquals([r.status, r.version], [200, "v1"]);
    assertEquals(ads.nacks, []);
    // cluster_header: the named cluster; a missing header, an unknown subset or another shape
    // of name is a missing cluster (503, no body: Envoy's router, NC).
    for (const [c, want] of [[V2, "v2"], [V1, "v1"], [V2, "v2"]]) {
      assertEquals((await get(ip, "/h", { "x-cluster": c! })).version, want, c);
    }
    for (const h of [{}, { "x-cluster": `outbound|80|v9|${HOST}` }, { "x-cluster": HOST }]) {
      assertEquals(await get(ip, "/h", h), { status: 503, version: "", details: "" });
    }
    // Weighted: value % 2 → [0,1) v1, [1,2) the header's cluster; no value: a random draw.
    const w = (rand: string | undefined, c = V2) =>
      get(ip, "/w", { "x-cluster": c, ...(rand === undefined ? {} : { "x-rand": rand }) });
    for (const [v, want] of [["0", "v1"], ["1", "v2"], ["12", "v1"], ["7", "v2"]]) {
      assertEquals((await w(v)).version, want, v);
    }
    assertEquals((await w("3", `outbound|80|nope|${HOST}`)).status, 503);
    const seen = new Set<string>();
    for (let i = 0; i < 40 && seen.size < 2; i++) seen.add((await w(undefined)).version);
    assertEquals([...seen].sort(), ["v1", "v2"], "without x-rand both are drawn");
    assertEquals(ads.nacks, []);
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await ads?.close();
    await v1.close();
    await v2.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("xds: route cluster_header and weighted clusters' header choices (Deno node)", () =>
  run(undefined));

Deno.test({
  name: "xds: route cluster_header and weighted clusters' header choices (Bun node)",
  ignore: bunPath() === undefined,
  fn: () => run(bunPath()),
});
