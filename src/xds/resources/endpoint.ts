/**
 * EDS: ClusterLoadAssignment → endpoints. weft reads each endpoint's node, HBONE address and
 * identity from `metadata.filter_metadata["weft"]` ({workload, namespace, node, hbone,
 * identity, labels, network, networkGateway}); an endpoint without `hbone` is outside the mesh
 * (plaintext).
 */
import type { Any } from "@bufbuild/protobuf/wkt";
import type { ClusterLoadAssignment } from "../node_proto.ts";
import type { GatewayAddress } from "../../core/mod.ts";
import { decodeClusterLoadAssignment, TYPE_NAMES, unpackAs } from "../node_proto.ts";
import { ENDPOINT } from "../type_urls.ts";
import {
  checkPort,
  type Decoded,
  invalid,
  type ResourceType,
  str,
  strMap,
  weftMeta,
} from "./resource_type.ts";
import { pooled, pooledOrUndefined } from "../string_pool.ts";

export interface EndpointValue {
  readonly address: string;
  readonly port: number;
  readonly workload: string;
  readonly namespace: string;
  readonly hboneAddress: string | undefined;
  readonly node: string | undefined;
  readonly identity: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly weight: number;
  /** Its Istio network and that network's east-west gateway (double HBONE). */
  readonly network?: string;
  readonly networkGateway?: GatewayAddress;
}

export interface AssignmentValue {
  readonly cluster: string;
  readonly endpoints: readonly EndpointValue[];
}

const IP = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+)$/;
const UNHEALTHY = new Set([2, 3, 4]); // UNHEALTHY, DRAINING, TIMEOUT

export function assignmentValue(cla: ClusterLoadAssignment, what: string): AssignmentValue {
  const endpoints: EndpointValue[] = [];
  for (const loc of cla.endpoints) {
    for (const lb of loc.lbEndpoints) {
      if (lb.hostIdentifier.case !== "endpoint") {
        throw invalid(what, "named endpoints are not supported");
      }
      if (UNHEALTHY.has(lb.healthStatus)) continue;
      const a = lb.hostIdentifier.value.address?.address;
      if (a?.case !== "socketAddress") throw invalid(what, "endpoint needs a socket address");
      const ip = a.value.address;
      if (!IP.test(ip)) throw invalid(what, `endpoint address ${ip} is not an IP`);
      const port = a.value.portSpecifier.case === "portValue" ? a.value.portSpecifier.value : 0;
      checkPort(what, port);
      const md = weftMeta(lb.metadata);
      const hbone = str(md["hbone"]);
      if (hbone !== undefined && !/^(\[[0-9a-fA-F:]+\]|[\d.]+):\d+$/.test(hbone)) {
        throw invalid(what, `endpoint ${ip} hbone address ${hbone} is not ip:port`);
      }
      // Shared by many endpoints: one instance each per response (string_pool.ts).
      const identity = pooledOrUndefined(str(md["identity"]));
      if (identity !== undefined && !identity.startsWith("spiffe://")) {
        throw invalid(what, `endpoint ${ip} identity ${identity} is not a spiffe:// id`);
      }
      endpoints.push({
        address: ip,
        port,
        workload: str(md["workload"]) ?? ip,
        namespace: pooled(str(md["namespace"]) ?? ""),
        hboneAddress: hbone,
        node: pooledOrUndefined(str(md["node"])),
        identity,
        labels: strMap(md["labels"]),
        weight: (lb.loadBalancingWeight ?? 1) * (loc.loadBalancingWeight ?? 1),
        ...networkOf(md, `${what}: endpoint ${ip}`),
      });
    }
  }
  return { cluster: cla.clusterName, endpoints };
}

/** `network` and `networkGateway` ({network, ip, port} or {namespace, hostname, port}) from
 * weft's endpoint metadata (src/xds/control_plane/build_wire.ts writes them). */
function networkOf(
  md: Record<string, unknown>,
  what: string,
): { network?: string; networkGateway?: GatewayAddress } {
  const network = pooledOrUndefined(str(md["network"]));
  const raw = md["networkGateway"];
  if (raw === undefined) return network ? { network } : {};
  const g = strMap(raw);
  const port = Number(g.port ?? "15008");
  checkPort(`${what} network gateway`, port);
  let destination: GatewayAddress["destination"];
  if (g.ip !== undefined) {
    if (!IP.test(g.ip)) throw invalid(what, `network gateway ${g.ip} is not an IP`);
    destination = { kind: "address", network: pooled(g.network ?? ""), ip: g.ip };
  } else if (g.hostname) {
    destination = { kind: "hostname", namespace: pooled(g.namespace ?? ""), hostname: g.hostname };
  } else throw invalid(what, "network gateway needs ip or hostname");
  return {
    ...(network ? { network } : {}),
    networkGateway: Object.freeze({ destination: Object.freeze(destination), hboneMtlsPort: port }),
  };
}

export const endpointType: ResourceType<AssignmentValue> = {
  typeUrl: ENDPOINT,
  decode(any: Any): Decoded<AssignmentValue> {
    const cla = unpackAs(any, TYPE_NAMES.endpoint, decodeClusterLoadAssignment);
    if (!cla.clusterName) throw invalid("cluster load assignment", "cluster_name is empty");
    return {
      name: cla.clusterName,
      value: assignmentValue(cla, `cluster load assignment ${cla.clusterName}`),
    };
  },
  deps: () => [],
};
