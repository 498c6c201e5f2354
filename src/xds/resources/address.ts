/**
 * Istio `Address` (ztunnel's workload API): a Workload (key: uid) or a Service
 * (key: namespace/hostname). weft takes the workloads hosted on its own node as local
 * workloads; services reach it through LDS/CDS, so Address services are accepted and unused.
 */
import type { Any } from "@bufbuild/protobuf/wkt";
import type { GatewayAddress, ServicePort, Workload } from "../../core/mod.ts";
import { spiffeId } from "../../core/mod.ts";
import { decodeIstioAddress, TYPE_NAMES, unpackAs } from "../node_proto.ts";
import { ADDRESS } from "../type_urls.ts";
import type { GatewayAddress as PbGateway } from "../gen/istio/workload/workload_pb.ts";
import { checkPort, type Decoded, invalid, type ResourceType } from "./resource_type.ts";
import { pooled, pooledMap } from "../string_pool.ts";

export type AddressValue =
  | {
    readonly kind: "workload";
    readonly node: string;
    /** Identity still needs the node's trust domain when the resource omits it. */
    readonly trustDomain: string | undefined;
    readonly workload: Omit<Workload, "identity">;
    /** `ns/name` keys of selector policies (WORKLOAD_SELECTOR scope). */
    readonly policies: readonly string[];
    /** `namespace/hostname` of the services it backs. */
    readonly services: readonly string[];
    readonly hbone: boolean;
    readonly healthy: boolean;
    readonly capacity: number;
    /** `network` (4); "" = unset. */
    readonly network: string;
    /** `network_gateway` (19): how a node on another network reaches it (double HBONE). */
    readonly networkGateway: GatewayAddress | undefined;
  }
  | {
    readonly kind: "service";
    readonly name: string;
    readonly namespace: string;
    readonly hostname: string;
    readonly vips: readonly string[];
    readonly ports: readonly ServicePort[];
    /** `subject_alt_names`: identities its endpoints may present besides their own (hbone.md §4). */
    readonly subjectAltNames: readonly string[];
  };

const APP_PROTOCOLS: Record<number, ServicePort["protocol"]> = { 1: "HTTP", 2: "HTTP2", 3: "GRPC" };

export function ipToString(b: Uint8Array): string {
  if (b.length === 4) return b.join(".");
  if (b.length === 16) {
    const parts: string[] = [];
    for (let i = 0; i < 16; i += 2) parts.push(((b[i]! << 8) | b[i + 1]!).toString(16));
    return parts.join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
  }
  throw invalid("address", `IP must be 4 or 16 bytes, got ${b.length}`);
}

export function identityOf(v: AddressValue & { kind: "workload" }, td: string): string {
  return spiffeId(v.trustDomain ?? td, v.workload.namespace, v.workload.serviceAccount);
}

export const addressType: ResourceType<AddressValue> = {
  typeUrl: ADDRESS,
  decode(any: Any): Decoded<AddressValue> {
    const a = unpackAs(any, TYPE_NAMES.address, decodeIstioAddress);
    if (a.type.case === "service") {
      const s = a.type.value;
      if (!s.hostname || !s.namespace) {
        throw invalid("service address", "namespace and hostname are required");
      }
      const ports = s.ports.map((p) => {
        checkPort(`service ${s.hostname}`, p.servicePort);
        const protocol = APP_PROTOCOLS[p.appProtocol] ?? "TCP";
        return Object.freeze({
          port: p.servicePort,
          targetPort: p.targetPort || p.servicePort,
          protocol,
          name: `${protocol.toLowerCase()}-${p.servicePort}`,
        });
      });
      return {
        name: `${s.namespace}/${s.hostname}`,
        value: {
          kind: "service",
          name: s.name || s.hostname.split(".")[0]!,
          namespace: s.namespace,
          hostname: s.hostname,
          vips: s.addresses.map((n) => ipToString(n.address)),
          ports,
          subjectAltNames: Object.freeze(s.subjectAltNames.filter((x) => x !== "")),
        },
      };
    }
    if (a.type.case !== "workload") throw invalid("address", "neither workload nor service");
    const w = a.type.value;
    const what = `workload ${w.uid || w.name}`;
    if (!w.uid) throw invalid(what, "uid is empty");
    if (!w.name || !w.namespace) throw invalid(what, "name and namespace are required");
    const networkGateway = gatewayOf(what, w.networkGateway);
    const first = w.addresses[0];
    // istiod sends a workload of another network without addresses: only its gateway reaches it.
    if (!first && !networkGateway) throw invalid(what, "no address");
    const ports = new Set<number>();
    for (const pl of Object.values(w.services)) {
      for (const p of pl.ports) ports.add(p.targetPort || p.servicePort);
    }
    const labels: Record<string, string> = {};
    if (w.canonicalName) labels["app"] = w.canonicalName;
    if (w.canonicalRevision) labels["version"] = w.canonicalRevision;
    for (const p of w.authorizationPolicies) labels[policyLabel(p)] = "true";
    return {
      name: w.uid,
      value: {
        kind: "workload",
        node: pooled(w.node),
        trustDomain: w.trustDomain ? pooled(w.trustDomain) : undefined,
        policies: [...w.authorizationPolicies],
        services: Object.keys(w.services),
        hbone: w.tunnelProtocol === 1,
        healthy: w.status === 0,
        capacity: w.capacity ?? 1,
        network: pooled(w.network),
        networkGateway,
        workload: {
          name: w.name,
          namespace: pooled(w.namespace),
          serviceAccount: pooled(w.serviceAccount || "default"),
          address: first ? ipToString(first) : "",
          ports: [...ports].sort((x, y) => x - y),
          labels: pooledMap(labels),
          mtlsMode: "PERMISSIVE",
          ...(w.applicationTunnel?.protocol === 1 // ApplicationTunnel.Protocol.PROXY
            ? {
              applicationTunnel: { protocol: "PROXY", port: w.applicationTunnel.port || undefined },
            }
            : {}),
        },
      },
    };
  },
  deps: () => [],
};

function gatewayOf(what: string, g: PbGateway | undefined): GatewayAddress | undefined {
  const d = g?.destination;
  if (!g || !d?.case) return undefined;
  const hboneMtlsPort = g.hboneMtlsPort || 15008;
  checkPort(`${what} network_gateway`, hboneMtlsPort);
  if (d.case === "address") {
    return Object.freeze({
      destination: Object.freeze({
        kind: "address" as const,
        network: pooled(d.value.network),
        ip: ipToString(d.value.address),
      }),
      hboneMtlsPort,
    });
  }
  if (!d.value.hostname) throw invalid(what, "network_gateway hostname is empty");
  return Object.freeze({
    destination: Object.freeze({
      kind: "hostname" as const,
      namespace: pooled(d.value.namespace),
      hostname: pooled(d.value.hostname),
    }),
    hboneMtlsPort,
  });
}

/** Selector policies are bound by name on the workload; weft expresses that as a label the
 * translated policy selects on. */
export function policyLabel(key: string): string {
  return `policy.weft.io/${key.replace("/", ".")}`;
}
