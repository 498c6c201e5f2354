/**
 * weft's embedded control plane: serves ADS (Delta and SotW) from Kubernetes-style manifests
 * (files and directories, multi-document YAML), one view per node (node id → node name), watches
 * them and pushes changes; optionally the Istio CA service. A bad edit, or a mesh some resource
 * of which cannot be encoded, is logged with every problem and the last good mesh keeps serving.
 * `weft control-plane --config-dir DIR` calls startControlPlane.
 * May import: src/core/mod.ts, src/tls/mod.ts and src/xds internals.
 */
import * as grpc from "@grpc/grpc-js";
import { errorMessage, logger, WeftError } from "../../core/mod.ts";
import type { CertificateAuthority } from "../../tls/mod.ts";
import {
  ADS_SERVICE,
  CA_SERVICE,
  CHANNEL_OPTIONS,
  serverCredentials,
  skipDestroyedStreams,
} from "./grpc_server.ts";
import type { XdsTlsMaterial } from "../grpc_transport.ts";
import type { DeltaDiscoveryRequest, DiscoveryRequest } from "../proto.ts";
import type { DocumentCache } from "../../istio/mod.ts";
import { AdsServerStream } from "./ads_server.ts";
import { buildNode, type NodeResources } from "./build.ts";
import { createCertificateHandler } from "./ca_service.ts";
import {
  accountOf,
  authRefusals,
  CallerAuthenticator,
  callerNodeOf,
  isRefusal,
  type SaTokenOptions,
} from "./sa_token.ts";
import { type Mesh, parseMeshSources } from "./mesh.ts";
import { ServingCertificate } from "./serving_cert.ts";
import { readSources, type TextCache, watchSources } from "./sources.ts";

export { parseMesh, parseMeshSources } from "./mesh.ts";
/** AuthorizationPolicies → istiod-shaped Envoy RBAC filter configs (proto3 JSON). */
export { rbacFilters as envoyRbacFilters } from "./build_rbac.ts";
export type { Mesh } from "./mesh.ts";
export { readSources } from "./sources.ts";
export type { JwtVerifier, SaTokenOptions } from "./sa_token.ts";
export { ServingCertificate, type ServingCertificateOptions } from "./serving_cert.ts";

const log = logger("control_plane");

export interface ControlPlaneOptions {
  /** Manifest files and/or directories, read together as one mesh. */
  readonly configPaths?: readonly string[];
  /** One file or directory (same as configPaths: [configPath]). */
  readonly configPath?: string;
  /** "host:port"; port 0 picks one. */
  readonly address: string;
  /** When set, IstioCertificateService/CreateCertificate is served. */
  readonly ca?: CertificateAuthority;
  /** TLS with this certificate, or one that rotates (ServingCertificate, which the caller
   * closes); plaintext when absent (loopback only). */
  readonly tls?: XdsTlsMaterial | ServingCertificate;
  /** With `tls`: "mtls" (default) requires client certificates; "token" is istiod's shape:
   * server TLS only, every ADS stream and CSR authenticated by a node token (MeshConfig
   * `spec.nodeTokens`); "jwt" is the same with Kubernetes service-account tokens too
   * (`serviceAccountTokens`, sa_token.ts), node tokens still accepted. */
  readonly clientAuth?: "mtls" | "token" | "jwt";
  /** How service-account JWTs are verified: required with clientAuth "jwt". */
  readonly serviceAccountTokens?: SaTokenOptions;
}

export interface ControlPlane {
  readonly address: string;
  /** Re-read the manifests now (the watcher does this on change); false = rejected. */
  reload(): Promise<boolean>;
  /** Streams open now. */
  streams(): number;
  /** The node each open stream serves (from its token when nodes authenticate by token). */
  streamNodes(): string[];
  close(): Promise<void>;
}

/** weft nodes send their name as metadata NAME; Istio ids are type~ip~pod.ns~domain. */
export function nodeNameOf(id: string, metaName: string | undefined): string {
  if (metaName) return metaName;
  const parts = id.split("~");
  return parts.length === 4 ? parts[2]!.split(".")[0]! : id;
}

/** What a reload reuses from the previous one: parsed files by text, resources by content. */
export interface MeshLoader {
  readonly files: DocumentCache;
  /** Texts of files unchanged on disk are not read again. */
  readonly texts: TextCache;
  built: NodeResources | undefined;
}

export function newMeshLoader(): MeshLoader {
  return { files: new Map(), texts: new Map(), built: undefined };
}

/** Reads, validates and encodes a mesh: a problem anywhere throws with every message. */
export async function loadMesh(
  paths: readonly string[],
  loader: MeshLoader = newMeshLoader(),
): Promise<Mesh> {
  const mesh = parseMeshSources(await readSources(paths, loader.texts), loader.files);
  // Encode the mesh-wide resources now: a value protobuf cannot take fails here, before any
  // client sees it, not inside a stream handler. Unchanged resources are reused.
  loader.built = buildNode(mesh, "", loader.built);
  return mesh;
}

function logLoaded(mesh: Mesh, paths: readonly string[]): void {
  log.info("mesh loaded", {
    paths,
    workloads: mesh.workloads.length,
    services: mesh.services.length,
    policies: mesh.authorizationPolicies.length,
    objects: mesh.counts,
  });
  for (const w of mesh.warnings) log.warn("mesh warning", { warning: w });
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const paths = opts.configPaths ?? (opts.configPath ? [opts.configPath] : []);
  if (paths.length === 0) {
    throw new WeftError("control_plane_config", "Cannot start the control plane: no manifests");
  }
  const loader = newMeshLoader();
  let mesh: Mesh = await loadMesh(paths, loader);
  logLoaded(mesh, paths);
  let cache = new Map<string, NodeResources>();
  const lastGood = new Map<string, NodeResources>();
  const streams = new Map<AdsServerStream, () => string>();
  const view = (node: string): NodeResources => {
    let r = cache.get(node);
    if (r) return r;
    try {
      r = buildNode(mesh, node);
    } catch (err) {
      log.error("cannot encode resources for node, serving its last good version", {
        node,
        error: errorMessage(err),
      });
      r = lastGood.get(node) ?? new Map();
    }
    cache.set(node, r);
    lastGood.set(node, r);
    return r;
  };

  const server = new grpc.Server(CHANNEL_OPTIONS);
  if (opts.clientAuth === "jwt" && !opts.serviceAccountTokens) {
    throw new WeftError(
      "control_plane_config",
      "Cannot start the control plane: client authentication jwt needs the service-account " +
        "issuer and its keys",
    );
  }
  const byToken = opts.tls !== undefined &&
    (opts.clientAuth === "token" || opts.clientAuth === "jwt");
  const auth = new CallerAuthenticator(
    opts.clientAuth === "jwt" ? opts.serviceAccountTokens : undefined,
  );
  const handle = (mode: "delta" | "sotw") => (call: grpc.ServerDuplexStream<unknown, unknown>) => {
    let nodeName = "";
    if (byToken) {
      // The token names the node: its claimed name (node.id, metadata NAME) is not trusted.
      const m = mesh;
      const caller = auth.authenticate(call.metadata, m.nodeTokens);
      const node = isRefusal(caller)
        ? caller
        : callerNodeOf(caller, auth, accountOf(m.nodeAgentIdentity));
      if (typeof node !== "string") {
        authRefusals.inc({ service: "ads", reason: node.reason });
        log.warn("ads stream refused", {
          peer: call.getPeer(),
          reason: node.reason,
          details: node.details,
        });
        call.emit("error", { code: node.code, details: node.details });
        return;
      }
      nodeName = node;
    }
    const s = new AdsServerStream(mode, () => view(nodeName), (m) => call.write(m));
    streams.set(s, () => nodeName);
    let first = true;
    call.on("data", (req: DiscoveryRequest | DeltaDiscoveryRequest) => {
      // Identity comes from the stream's first message only (xds.md §10).
      if (first && !nodeName) {
        const meta = req.node?.metadata?.["NAME"];
        nodeName = nodeNameOf(req.node?.id ?? "", typeof meta === "string" ? meta : undefined);
      }
      first = false;
      try {
        if (mode === "delta") s.onDelta(req as DeltaDiscoveryRequest);
        else s.onSotw(req as DiscoveryRequest);
      } catch (err) {
        // A broken invariant in one stream must not end the control plane: log, close it.
        log.error("ads stream failed", { node: nodeName, error: errorMessage(err) });
        call.destroy();
      }
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
      CreateCertificate: createCertificateHandler(opts.ca, () => mesh, auth),
    } as unknown as grpc.UntypedServiceImplementation);
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      opts.address,
      opts.tls instanceof ServingCertificate
        ? opts.tls.credentials(!byToken)
        : serverCredentials(opts.tls, !byToken),
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
  skipDestroyedStreams(server);
  const host = opts.address.slice(0, opts.address.lastIndexOf(":"));

  const reload = async (): Promise<boolean> => {
    try {
      const last = loader.built;
      try {
        mesh = await loadMesh(paths, loader);
      } catch (err) {
        loader.built = last;
        throw err;
      }
    } catch (err) {
      log.error("manifests rejected, keeping the last good mesh", { error: errorMessage(err) });
      return false;
    }
    logLoaded(mesh, paths);
    cache = new Map();
    for (const s of streams.keys()) {
      try {
        s.pushAll();
      } catch (err) {
        log.error("push failed", { error: errorMessage(err) });
      }
    }
    log.info("mesh reloaded", { streams: streams.size });
    return true;
  };
  // One reload at a time: two interleaved reads could finish out of order and leave the older
  // files serving. A change seen during a reload runs one more after it.
  let inFlight: Promise<unknown> | undefined;
  let again = false;
  const trigger = (): void => {
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = (async () => {
      do {
        again = false;
        await reload();
      } while (again);
    })().catch((err) => log.error("reload failed", { error: errorMessage(err) }))
      .finally(() => inFlight = undefined);
  };
  const unwatch = await watchSources(paths, trigger);
  log.info("control plane listening", { address: `${host}:${port}` });
  return {
    address: `${host}:${port}`,
    reload,
    streams: () => streams.size,
    streamNodes: () => [...streams.values()].map((node) => node()),
    close: async () => {
      unwatch();
      again = false;
      await inFlight; // a reload reading files now finishes before the caller removes them
      // Cancels open streams: clients see UNAVAILABLE/CANCELLED and reconnect elsewhere.
      server.forceShutdown();
    },
  };
}
