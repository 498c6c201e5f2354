/**
 * weft's embedded control plane: serves ADS (Delta and SotW) from a YAML mesh file, one view per
 * node (node id → node name), watches the file and pushes changes; optionally the Istio CA
 * service. `weft control-plane --config mesh.yaml` calls startControlPlane.
 * May import: src/core/mod.ts, src/tls/mod.ts and src/xds internals.
 */
import * as grpc from "@grpc/grpc-js";
import { watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { errorMessage, logger, WeftError } from "../../core/mod.ts";
import type { CertificateAuthority } from "../../tls/mod.ts";
import {
  ADS_SERVICE,
  CA_SERVICE,
  CHANNEL_OPTIONS,
  serverCredentials,
  type XdsTlsMaterial,
} from "../grpc_transport.ts";
import type { DeltaDiscoveryRequest, DiscoveryRequest } from "../proto.ts";
import { AdsServerStream } from "./ads_server.ts";
import { buildNode, type NodeResources } from "./build.ts";
import { createCertificateHandler } from "./ca_service.ts";
import { type Mesh, parseMesh } from "./mesh.ts";

export { parseMesh } from "./mesh.ts";
export type { Mesh } from "./mesh.ts";

const log = logger("control_plane");

export interface ControlPlaneOptions {
  readonly configPath: string;
  /** "host:port"; port 0 picks one. */
  readonly address: string;
  /** When set, IstioCertificateService/CreateCertificate is served. */
  readonly ca?: CertificateAuthority;
  /** mTLS (client certificates required); plaintext when absent (loopback only). */
  readonly tls?: XdsTlsMaterial;
}

export interface ControlPlane {
  readonly address: string;
  /** Re-read the mesh file now (the watcher does this on change). */
  reload(): Promise<boolean>;
  /** Streams open now. */
  streams(): number;
  close(): Promise<void>;
}

/** weft nodes send their name as metadata NAME; Istio ids are type~ip~pod.ns~domain. */
export function nodeNameOf(id: string, metaName: string | undefined): string {
  if (metaName) return metaName;
  const parts = id.split("~");
  return parts.length === 4 ? parts[2]!.split(".")[0]! : id;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  let mesh: Mesh = parseMesh(await readFile(opts.configPath, "utf8"));
  let cache = new Map<string, NodeResources>();
  const streams = new Set<AdsServerStream>();
  const view = (node: string): NodeResources => {
    let r = cache.get(node);
    if (!r) cache.set(node, r = buildNode(mesh, node));
    return r;
  };

  const server = new grpc.Server(CHANNEL_OPTIONS);
  const handle = (mode: "delta" | "sotw") => (call: grpc.ServerDuplexStream<unknown, unknown>) => {
    let nodeName = "";
    const s = new AdsServerStream(mode, () => view(nodeName), (m) => call.write(m));
    streams.add(s);
    call.on("data", (req: DiscoveryRequest | DeltaDiscoveryRequest) => {
      if (!nodeName) {
        const meta = req.node?.metadata?.["NAME"];
        nodeName = nodeNameOf(req.node?.id ?? "", typeof meta === "string" ? meta : undefined);
      }
      if (mode === "delta") s.onDelta(req as DeltaDiscoveryRequest);
      else s.onSotw(req as DiscoveryRequest);
    });
    const done = (): void => {
      streams.delete(s);
    };
    call.on("end", () => {
      done();
      call.end();
    });
    call.on("error", done);
    call.on("cancelled", done);
  };
  server.addService(ADS_SERVICE, {
    StreamAggregatedResources: handle("sotw"),
    DeltaAggregatedResources: handle("delta"),
  } as unknown as grpc.UntypedServiceImplementation);
  if (opts.ca) {
    server.addService(CA_SERVICE, {
      CreateCertificate: createCertificateHandler(opts.ca, () => mesh),
    } as unknown as grpc.UntypedServiceImplementation);
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      opts.address,
      serverCredentials(opts.tls),
      (err, p) =>
        err
          ? reject(
            new WeftError(
              "control_plane_bind",
              `Cannot bind control plane on ${opts.address}: ${err.message}`,
            ),
          )
          : resolve(p),
    )
  );
  const host = opts.address.slice(0, opts.address.lastIndexOf(":"));

  const reload = async (): Promise<boolean> => {
    try {
      mesh = parseMesh(await readFile(opts.configPath, "utf8"));
    } catch (err) {
      log.error("mesh file rejected, keeping the last good one", { error: errorMessage(err) });
      return false;
    }
    cache = new Map();
    for (const s of streams) s.pushAll();
    log.info("mesh reloaded", { streams: streams.size });
    return true;
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Watch the directory, not the file: editors and deploy tools replace files by rename, which
  // a file watch would stop following. Write atomically (temp file + rename): a reload that
  // reads a half-written file serves whatever valid YAML it got.
  const watcher = watch(dirname(opts.configPath), (_event, name) => {
    if (name !== null && String(name) !== basename(opts.configPath)) return;
    clearTimeout(timer);
    timer = setTimeout(() => void reload(), 20);
  });
  log.info("control plane listening", { address: `${host}:${port}` });
  return {
    address: `${host}:${port}`,
    reload,
    streams: () => streams.size,
    close: () => {
      clearTimeout(timer);
      watcher.close();
      // Cancels open streams: clients see UNAVAILABLE/CANCELLED and reconnect elsewhere.
      server.forceShutdown();
      return Promise.resolve();
    },
  };
}
